using MicroExpr.Nn;
using MicroExpr.Tensors;

namespace MicroExpr.Models;

/// <summary>Turns per-frame features [B, T, C] into one clip feature [B, OutFeatures].</summary>
public abstract class TemporalAggregator : Module
{
    public abstract int OutFeatures { get; }
    public abstract Tensor Forward(Tensor frames);
}

/// <summary>SLSTT's Mean variant: the average of the frame features.</summary>
public sealed class MeanAggregator(int features) : TemporalAggregator
{
    public override int OutFeatures { get; } = features;
    public override Tensor Forward(Tensor frames) => frames.Mean([1]);
}

/// <summary>
/// The weights every recurrent aggregator has, per layer k, in PyTorch's naming: weight_ih_l{k} [G·H, in],
/// weight_hh_l{k} [G·H, H], bias_ih_l{k}, bias_hh_l{k} [G·H], with G gates; initialised uniformly in ±1/√H. And the
/// loop they share (<see cref="Forward"/>): per layer the input projection of all frames as one GEMM, then one cell step
/// per frame from a zero initial state; a layer's hidden states are the next layer's input, and the last layer's last
/// hidden state is the clip feature. A subclass writes the projection and the cell (<see cref="Project"/>, <see cref="Step"/>).
/// </summary>
public abstract class RecurrentAggregator : TemporalAggregator
{
    protected readonly Tensor[] wIh, wHh, bIh, bHh;
    readonly int gates;

    protected RecurrentAggregator(int inFeatures, int hidden, int layers, int gates, Rng rng)
    {
        Hidden = hidden;
        this.gates = gates;
        wIh = new Tensor[layers];
        wHh = new Tensor[layers];
        bIh = new Tensor[layers];
        bHh = new Tensor[layers];
        float bound = 1f / MathF.Sqrt(hidden);
        for (int l = 0; l < layers; l++)
        {
            int input = l == 0 ? inFeatures : hidden;
            wIh[l] = Parameter($"weight_ih_l{l}", Tensor.RandU([gates * hidden, input], rng, -bound, bound));
            wHh[l] = Parameter($"weight_hh_l{l}", Tensor.RandU([gates * hidden, hidden], rng, -bound, bound));
            bIh[l] = Parameter($"bias_ih_l{l}", Tensor.RandU([gates * hidden], rng, -bound, bound));
            bHh[l] = Parameter($"bias_hh_l{l}", Tensor.RandU([gates * hidden], rng, -bound, bound));
        }
    }

    public int Hidden { get; }
    public int Layers => wIh.Length;
    public override int OutFeatures => Hidden;

    /// <summary>[B, T, C] → the last layer's last hidden state [B, H].</summary>
    public sealed override Tensor Forward(Tensor frames)
    {
        int b = frames.Shape[0], t = frames.Shape[1];
        var input = frames;
        Tensor? h = null;
        for (int l = 0; l < Layers; l++)
        {
            var xProj = Project(input, l);                                               // [B, T, G·H]
            h = null;
            Tensor? cell = null;
            var outputs = new Tensor[t];
            for (int s = 0; s < t; s++)
                outputs[s] = h = Step(l, xProj.Slice(1, s, 1).Reshape(b, gates * Hidden), h, ref cell);
            if (l < Layers - 1) input = Tensor.Stack(1, outputs);
        }
        return h!;
    }

    /// <summary>The input part of every frame's gate pre-activations, input [B, T, in] → [B, T, G·H], biases included.</summary>
    protected abstract Tensor Project(Tensor input, int layer);

    /// <summary>
    /// One frame: gx the frame's row of <see cref="Project"/> [B, G·H], h the previous hidden state [B, H] (null at the
    /// first frame: the zero state), cell a state the cell keeps besides h (LSTM's c; null at the first frame) → the new h.
    /// </summary>
    protected abstract Tensor Step(int layer, Tensor gx, Tensor? h, ref Tensor? cell);
}

/// <summary>
/// LSTM over the frames (PyTorch naming and gate order i, f, g, o: weight_ih_l{k} [4H, in],
/// weight_hh_l{k} [4H, H], bias_ih_l{k}, bias_hh_l{k}); zero initial state; the last layer's last
/// hidden state is the clip feature. The input projection of all frames is one GEMM per layer.
/// </summary>
public sealed class LstmAggregator(int inFeatures, int hidden, int layers, Rng rng)
    : RecurrentAggregator(inFeatures, hidden, layers, 4, rng)
{
    // Both biases add to every gate, so they join the input projection.
    protected override Tensor Project(Tensor input, int l) => Tensor.MatMul(input, wIh[l], false, true) + (bIh[l] + bHh[l]);

    protected override Tensor Step(int l, Tensor gates, Tensor? h, ref Tensor? c)
    {
        int hsz = Hidden;
        if (h != null) gates = gates + Tensor.MatMul(h, wHh[l], false, true);
        var i = gates.Slice(1, 0, hsz).Sigmoid();
        var f = gates.Slice(1, hsz, hsz).Sigmoid();
        var g = gates.Slice(1, 2 * hsz, hsz).Tanh();
        var o = gates.Slice(1, 3 * hsz, hsz).Sigmoid();
        c = c is null ? i * g : f * c + i * g;
        return o * c.Tanh();
    }
}

/// <summary>
/// GRU over the frames (PyTorch naming, gate order r, z, n): n = tanh(W_in x + b_in + r∘(W_hn h + b_hn)),
/// h' = (1 − z)∘n + z∘h; zero initial state; last hidden state of the last layer.
/// </summary>
public sealed class GruAggregator(int inFeatures, int hidden, int layers, Rng rng)
    : RecurrentAggregator(inFeatures, hidden, layers, 3, rng)
{
    // b_hn sits inside r∘(W_hn h + b_hn), so the hidden bias stays with the hidden projection.
    protected override Tensor Project(Tensor input, int l) => Tensor.MatMul(input, wIh[l], false, true) + bIh[l];

    protected override Tensor Step(int l, Tensor gx, Tensor? h, ref Tensor? cell)
    {
        int b = gx.Shape[0], hsz = Hidden;
        Tensor gh = h is null ? bHh[l].BroadcastTo(b, 3 * hsz) : Tensor.MatMul(h, wHh[l], false, true) + bHh[l];
        var r = (gx.Slice(1, 0, hsz) + gh.Slice(1, 0, hsz)).Sigmoid();
        var z = (gx.Slice(1, hsz, hsz) + gh.Slice(1, hsz, hsz)).Sigmoid();
        var n = (gx.Slice(1, 2 * hsz, hsz) + r * gh.Slice(1, 2 * hsz, hsz)).Tanh();
        // h' = (1 − z)·n + z·h = n + z·(h − n); with h = 0 at the first step, h' = n − z·n.
        return h is null ? n - z * n : n + z * (h - n);
    }
}

/// <summary>
/// Temporal transformer: a class token over the frame features with a learned position embedding
/// (up to <c>maxFrames</c> + 1 positions), pre-norm blocks, final LayerNorm; the class token is the clip feature.
/// </summary>
public sealed class TemporalTransformer : TemporalAggregator
{
    public TemporalTransformer(int width, int depth, int heads, int mlpHidden, int maxFrames, Rng rng)
    {
        Width = width;
        MaxFrames = maxFrames;
        ClsToken = Parameter("cls_token", Tensor.TruncNormal([1, 1, width], rng, 0.02f, -0.04f, 0.04f));
        PosEmbed = Parameter("pos_embed", Tensor.TruncNormal([1, maxFrames + 1, width], rng, 0.02f, -0.04f, 0.04f));
        Blocks = new TransformerBlock[depth];
        for (int i = 0; i < depth; i++) Blocks[i] = Child($"blocks.{i}", new TransformerBlock(width, heads, mlpHidden, rng, initStd: 0.02f));
        Norm = Child("norm", new LayerNorm(width));
    }

    public int Width { get; }
    public int MaxFrames { get; }
    public Tensor ClsToken { get; }
    public Tensor PosEmbed { get; }
    public TransformerBlock[] Blocks { get; }
    public LayerNorm Norm { get; }
    public override int OutFeatures => Width;

    public override Tensor Forward(Tensor frames)
    {
        int b = frames.Shape[0], t = frames.Shape[1];
        if (t > MaxFrames) throw new ShapeException($"temporal transformer: {t} frames, but position embeddings exist for {MaxFrames}");
        var x = Tensor.Concat(1, ClsToken.BroadcastTo(b, 1, Width), frames) + PosEmbed.Slice(1, 0, t + 1);
        foreach (var block in Blocks) x = block.Forward(x);
        return Norm.Forward(x).Slice(1, 0, 1).Reshape(b, Width);
    }

    /// <summary>Every block's attention over one clip's frame features [1, T, C]: [H, T + 1, T + 1] per block, the class token at 0.</summary>
    public AttentionMaps Attention(Tensor frames)
    {
        int t = frames.Shape[1];
        if (frames.Rank != 3 || frames.Shape[0] != 1 || t > MaxFrames) throw new ShapeException($"temporal transformer: attention maps take [1, T ≤ {MaxFrames}, {Width}], got {ShapeUtil.Format(frames.Shape)}");
        var x = Tensor.Concat(1, ClsToken.BroadcastTo(1, 1, Width), frames) + PosEmbed.Slice(1, 0, t + 1);
        return AttentionMaps.OfBlocks(Blocks, x);
    }
}
