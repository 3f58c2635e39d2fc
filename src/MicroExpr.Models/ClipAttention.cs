using MicroExpr.Tensors;

namespace MicroExpr.Models;

/// <summary>
/// A model whose attention can be drawn (<c>microexpr attention-map</c>, <c>predict --explain</c>): SLSTT (its ViT per
/// frame, and its temporal transformer when it has one) and STT (its spatial attention per frame, its temporal attention
/// across frames). Models without attention (FDP, AIE-CCL) do not implement it, and the commands refuse them in one line.
/// </summary>
public interface IAttentionModel : IMerModel
{
    /// <summary>Every attention probability of one clip (a batch of one), computed without gradients as the forward does.</summary>
    ClipAttention Attention(ModelBatch clip);
}

/// <summary>
/// The attention of one clip: for each of its T frames the spatial maps (<see cref="Spatial"/>[t]: every layer's
/// P [H, N, N] over the frame's N = Grid² + 1 tokens, token 0 the class token, patches in row-major order of the Grid ×
/// Grid patch grid), and, when the model attends across frames, <see cref="Temporal"/>: every temporal layer's P over
/// <see cref="Temporal"/>.Tokens tokens — T + 1 with a clip class token at 0 (<see cref="TemporalClassToken"/>, SLSTT's
/// temporal transformer), or T (STT: the class-token position of each frame attending to the same position in the
/// other frames).
/// <para>What is drawn, and the choices where the papers are silent:</para>
/// <list type="bullet">
/// <item>Per layer and head, the class token's row over the patches (<see cref="AttentionMaps.ClassTokenRow"/>): what
/// the frame feature reads from each patch in that layer. The row sums to 1 over all N tokens; the part it keeps on the
/// class token itself is not drawn (it has no place on the image) and is reported beside the map.</item>
/// <item>Attention rollout (Abnar and Zuidema 2020) per frame over the spatial layers: R = Â_L·…·Â_1 with
/// Â = ½·mean_h P + ½·I, rows renormalised; its class-token row over the patches is drawn. For STT the spatial layers are
/// interleaved with temporal attention; the rollout here follows the spatial layers only (the temporal mixing between
/// frames is left out, so it is the rollout of one frame's spatial path). Rejected: a joint T·N rollout, whose N·T
/// square matrices mix frames in a picture that is drawn per frame anyway.</item>
/// <item>Weights over frames (<see cref="TemporalWeights"/>): with a clip class token, its row over the T frames,
/// mean over heads; for STT, whose clip feature is the mean over frames of the class tokens, the column means of the
/// head-mean T × T matrix (how much the mean reads from each frame; they sum to 1).</item>
/// </list>
/// </summary>
public sealed record ClipAttention(string Model, int Grid, IReadOnlyList<AttentionMaps> Spatial, AttentionMaps? Temporal, bool TemporalClassToken)
{
    public int Frames => Spatial.Count;

    /// <summary>Spatial layers (the same for every frame).</summary>
    public int Layers => Spatial.Count > 0 ? Spatial[0].Layers.Count : 0;

    public int Heads => Spatial.Count > 0 ? Spatial[0].Heads : 0;

    /// <summary>
    /// The weights over the T frames of temporal layer <paramref name="layer"/> (mean over heads), or of the temporal
    /// rollout when <paramref name="layer"/> is −1; sum to 1 (with a class token: to 1 minus its share on itself).
    /// </summary>
    public double[] TemporalWeights(int layer)
    {
        var t = Temporal ?? throw new InvalidOperationException($"{Model}: no temporal attention");
        int n = t.Tokens;
        double[] Mean(int l)
        {
            var m = new double[n * n];
            for (int h = 0; h < t.Heads; h++)
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < n; j++) m[i * n + j] += t[l, h, i, j] / t.Heads;
            return m;
        }
        var a = layer < 0 ? t.Rollout() : Mean(layer);
        if (TemporalClassToken) return Enumerable.Range(1, n - 1).Select(j => a[j]).ToArray();
        return Enumerable.Range(0, n).Select(j => Enumerable.Range(0, n).Sum(i => a[i * n + j]) / n).ToArray();
    }

    /// <summary>Checks that a clip batch is one clip of <paramref name="kind"/> [1, T, C, S, S].</summary>
    public static Tensor One(ModelBatch batch, InputKind kind, string model)
    {
        var x = batch[kind];
        if (x.Rank != 5 || x.Shape[0] != 1) throw new ShapeException($"{model}: attention maps take one clip [1, T, C, S, S], got {ShapeUtil.Format(x.Shape)}");
        return x;
    }
}
