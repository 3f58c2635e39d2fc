using MicroExpr.Tensors;

namespace MicroExpr.Nn;

/// <summary>y = x·Wᵀ + b with W [out, in] (PyTorch layout), over the last axis of x.</summary>
public sealed class Linear : Module
{
    public Linear(int inFeatures, int outFeatures, Rng rng, bool bias = true, float? initStd = null)
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        // Default: PyTorch's kaiming-uniform bound 1/√in for both weight and bias; ViT code passes initStd (trunc-normal 0.02).
        float bound = 1f / MathF.Sqrt(inFeatures);
        Weight = Parameter("weight", initStd is float std
            ? Tensor.TruncNormal([outFeatures, inFeatures], rng, std, -2 * std, 2 * std)
            : Tensor.RandU([outFeatures, inFeatures], rng, -bound, bound));
        if (bias) Bias = Parameter("bias", initStd is null ? Tensor.RandU([outFeatures], rng, -bound, bound) : Tensor.Zeros(outFeatures));
    }

    public int InFeatures { get; }
    public int OutFeatures { get; }
    public Tensor Weight { get; }
    public Tensor? Bias { get; }

    public Tensor Forward(Tensor x)
    {
        if (x.Shape[^1] != InFeatures)
            throw new ShapeException($"linear: input {ShapeUtil.Format(x.Shape)} has {x.Shape[^1]} features; the layer takes {InFeatures}");
        return Tensor.Linear(x, Weight, Bias);
    }

    /// <summary>residual + x·Wᵀ + b, the residual folded into the GEMM (no separate add).</summary>
    public Tensor Forward(Tensor x, Tensor residual)
    {
        if (x.Shape[^1] != InFeatures)
            throw new ShapeException($"linear: input {ShapeUtil.Format(x.Shape)} has {x.Shape[^1]} features; the layer takes {InFeatures}");
        return Tensor.Linear(x, Weight, Bias, residual);
    }
}

/// <summary>LayerNorm over the last axis with learned weight (gamma) and bias (beta) of size C.</summary>
public sealed class LayerNorm : Module
{
    public LayerNorm(int c, float eps = 1e-5f)
    {
        Eps = eps;
        Weight = Parameter("weight", Tensor.Ones(c));
        Bias = Parameter("bias", Tensor.Zeros(c));
    }

    public float Eps { get; }
    public Tensor Weight { get; }
    public Tensor Bias { get; }

    public Tensor Forward(Tensor x) => Tensor.LayerNorm(x, Weight, Bias, Eps);
}

/// <summary>
/// Multi-head self-attention (timm's ViT layout): qkv = Linear(C, 3C) → [B, N, 3, H, D] → fused attention per head,
/// read straight out of qkv and written as [B, N, H, D] = [B, N, C] (<see cref="Tensor.SelfAttention"/>, no copies)
/// → proj = Linear(C, C).
/// </summary>
public sealed class MultiHeadSelfAttention : Module
{
    /// <param name="acrossFirstAxis">
    /// Attend along the first axis of x [L, M, C] (M sequences of L tokens, <see cref="Tensor.SelfAttentionAcross"/>; STT's
    /// temporal attention on time-major tokens) instead of along the token axis N of x [..., N, C].
    /// </param>
    public MultiHeadSelfAttention(int dim, int heads, Rng rng, float? initStd = null, bool acrossFirstAxis = false)
    {
        if (dim % heads != 0) throw new ArgumentException($"attention: width {dim} is not divisible by {heads} heads");
        Heads = heads;
        AcrossFirstAxis = acrossFirstAxis;
        HeadDim = dim / heads;
        Qkv = Child("qkv", new Linear(dim, 3 * dim, rng, true, initStd));
        Proj = Child("proj", new Linear(dim, dim, rng, true, initStd));
    }

    public int Heads { get; }
    public int HeadDim { get; }
    public bool AcrossFirstAxis { get; }
    public Linear Qkv { get; }
    public Linear Proj { get; }

    /// <summary>
    /// x [B, N, C] → [B, N, C]; with a residual r [B, N, C]: r + attn(x), the add folded into proj. The qkv projection
    /// [B, N, 3·C] is what the attention keeps for backward (in place of separate q, k, v copies of the same size),
    /// and its gradient comes back as one tensor.
    /// </summary>
    public Tensor Forward(Tensor x, Tensor? residual = null)
    {
        var qkv = Qkv.Forward(x);
        var o = AcrossFirstAxis ? Tensor.SelfAttentionAcross(qkv, Heads) : Tensor.SelfAttention(qkv, Heads); // [B, N, C], heads side by side
        return residual is null ? Proj.Forward(o) : Proj.Forward(o, residual);
    }
}

/// <summary>MLP of a transformer block: fc1 → exact GELU → fc2.</summary>
public sealed class Mlp : Module
{
    public Mlp(int dim, int hidden, Rng rng, float? initStd = null)
    {
        Fc1 = Child("fc1", new Linear(dim, hidden, rng, true, initStd));
        Fc2 = Child("fc2", new Linear(hidden, dim, rng, true, initStd));
    }

    public Linear Fc1 { get; }
    public Linear Fc2 { get; }

    /// <summary>fc2(GELU(fc1(x))), with GELU and fc2 fused so that only fc1's output is kept for backward.</summary>
    public Tensor Forward(Tensor x) => Tensor.GeluLinear(Fc1.Forward(x), Fc2.Weight, Fc2.Bias);

    /// <summary>
    /// residual + fc2(GELU(fc1(x))), the add folded into fc2. Training keeps fc1's pre-activation for the backward
    /// (GELU fused into fc2 and recomputed there); inference (no tape) needs only the activation, so GELU is applied
    /// to fc1's GEMM tiles as they are finished and fc2 is a plain Linear.
    /// </summary>
    public Tensor Forward(Tensor x, Tensor residual) => Tensors.Autograd.GradMode.Enabled
        ? Tensor.GeluLinear(Fc1.Forward(x), Fc2.Weight, Fc2.Bias, residual)
        : Fc2.Forward(Tensor.LinearGelu(x, Fc1.Weight, Fc1.Bias), residual);
}

/// <summary>
/// A block of a network, x → y, whose intermediates are freed as soon as it returns when no tape records (inference), so
/// inference holds one block's activations at a time instead of the whole network's; with the tape they belong to the
/// graph and are left alone. A block writes <see cref="ForwardCore"/>; <see cref="Forward"/> is the scope around it.
/// <para>Choice: a base class rather than a helper taking a delegate: the training path then calls the block's body
/// directly, with no delegate allocated per call (a steady training loop allocates nothing after its first step).</para>
/// </summary>
public abstract class ScopedBlock : Module
{
    /// <summary>x → the block's output; without the tape every other tensor made inside is freed on return.</summary>
    public Tensor Forward(Tensor x)
    {
        if (Tensors.Autograd.GradMode.Enabled) return ForwardCore(x);
        using var scope = new TensorScope();
        return scope.Return(ForwardCore(x));
    }

    /// <summary>The block's computation.</summary>
    protected abstract Tensor ForwardCore(Tensor x);
}

/// <summary>
/// Pre-norm transformer block: h = x + attn(norm1(x)), then h + mlp(norm2(h)); x [B, N, C] → [B, N, C]. Without the
/// tape (inference) its intermediates are freed as soon as it returns (<see cref="ScopedBlock"/>).
/// <para>Optional regularisation (both 0 by default, and then the block runs exactly as before): in training,
/// h = x + DropPath(Dropout(attn(norm1(x)))) and y = h + DropPath(Dropout(mlp(norm2(h)))). Dropout sits on the two branch
/// outputs, timm's proj_drop and the MLP's drop after fc2; choice: not also on the MLP's hidden activation (timm's first
/// drop), which would split the fused GELU·fc2 (<see cref="Tensor.GeluLinear"/>) into two passes; rejected: attention-weight
/// dropout (timm's attn_drop, 0 in ViT's recipes), which the fused attention kernel has no mask for. DropPath drops a whole
/// branch per sample of axis 0 (for a ViT over frames: per frame). In evaluation both are identity and the fused path runs.</para>
/// </summary>
public sealed class TransformerBlock : ScopedBlock
{
    public TransformerBlock(int dim, int heads, int mlpHidden, Rng rng, float eps = 1e-5f, float? initStd = null, float dropout = 0f, float dropPath = 0f)
    {
        if (!(dropout >= 0f && dropout < 1f)) throw new ArgumentOutOfRangeException(nameof(dropout), dropout, "dropout probability must be in [0, 1)");
        if (!(dropPath >= 0f && dropPath < 1f)) throw new ArgumentOutOfRangeException(nameof(dropPath), dropPath, "drop path probability must be in [0, 1)");
        Norm1 = Child("norm1", new LayerNorm(dim, eps));
        Attn = Child("attn", new MultiHeadSelfAttention(dim, heads, rng, initStd));
        Norm2 = Child("norm2", new LayerNorm(dim, eps));
        Mlp = Child("mlp", new Mlp(dim, mlpHidden, rng, initStd));
        // The noise modules hold no parameters and draw nothing from rng, so a block without them is the block of before.
        if (dropout > 0f)
        {
            AttnDrop = Child("attn_drop", new Dropout(dropout));
            MlpDrop = Child("mlp_drop", new Dropout(dropout));
        }
        if (dropPath > 0f)
        {
            AttnPath = Child("attn_path", new DropPath(dropPath, new Rng(0)));
            MlpPath = Child("mlp_path", new DropPath(dropPath, new Rng(0)));
        }
    }

    public LayerNorm Norm1 { get; }
    public MultiHeadSelfAttention Attn { get; }
    public LayerNorm Norm2 { get; }
    public Mlp Mlp { get; }
    public Dropout? AttnDrop { get; }
    public Dropout? MlpDrop { get; }
    public DropPath? AttnPath { get; }
    public DropPath? MlpPath { get; }

    /// <summary>The block's random parts (dropout and drop-path modules; none when both rates are 0), to reseed.</summary>
    public IEnumerable<ISeededNoise> Noise => new ISeededNoise?[] { AttnDrop, MlpDrop, AttnPath, MlpPath }.OfType<ISeededNoise>();

    // The residual adds are folded into proj and fc2 (their GEMMs start from the residual stream), so no branch
    // output is ever materialised apart from the stream itself. With dropout or drop-path in training the branch is
    // materialised (it is masked before the add).
    protected override Tensor ForwardCore(Tensor x)
    {
        if (!Training || (AttnDrop is null && AttnPath is null))
        {
            var h = Attn.Forward(Norm1.Forward(x), residual: x);
            return Mlp.Forward(Norm2.Forward(h), residual: h);
        }
        var h2 = x + Regularise(Attn.Forward(Norm1.Forward(x)), AttnDrop, AttnPath);
        return h2 + Regularise(Mlp.Forward(Norm2.Forward(h2)), MlpDrop, MlpPath);
    }

    static Tensor Regularise(Tensor branch, Dropout? drop, DropPath? path)
    {
        if (drop != null) branch = drop.Forward(branch);
        return path != null ? path.Forward(branch) : branch;
    }
}
