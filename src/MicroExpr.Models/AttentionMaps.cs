using MicroExpr.Nn;
using MicroExpr.Tensors;
using MicroExpr.Tensors.Autograd;

namespace MicroExpr.Models;

/// <summary>
/// The attention probabilities of every layer and head of a ViT for one image: <see cref="Layers"/> arrays of
/// [H, N, N] (row-major, N = patches + class token, token 0 the class token), P = softmax(s·Q·Kᵀ) exactly as each
/// block's fused attention computes it (from the same q and k, recomputed here explicitly in double).
/// </summary>
public sealed record AttentionMaps(int Heads, int Tokens, IReadOnlyList<double[]> Layers)
{
    /// <summary>P[layer][head, i, j].</summary>
    public double this[int layer, int head, int i, int j] => Layers[layer][((long)head * Tokens + i) * Tokens + j];

    /// <summary>The class token's attention over the patches in one layer and head: [N − 1].</summary>
    public double[] ClassTokenRow(int layer, int head) =>
        Enumerable.Range(1, Tokens - 1).Select(j => this[layer, head, 0, j]).ToArray();

    /// <summary>
    /// Attention rollout (Abnar and Zuidema 2020): per layer the heads' mean attention Ā, with the residual stream
    /// accounted for as Â = ½·Ā + ½·I and each row renormalised; the joint attention R = Â_L·…·Â_1 says how much each
    /// output token draws on each input token through all layers. Returns R [N, N].
    /// </summary>
    public double[] Rollout(double residual = 0.5) => Rollout(Layers, Heads, Tokens, residual);

    public static double[] Rollout(IReadOnlyList<double[]> layers, int heads, int n, double residual = 0.5)
    {
        var r = Identity(n);
        foreach (var p in layers)
        {
            if (p.Length != (long)heads * n * n) throw new ArgumentException($"rollout: a layer holds {p.Length} values, expected H·N·N = {heads * n * n}");
            var a = new double[n * n];
            for (int i = 0; i < n; i++)
            {
                double rowSum = 0;
                for (int j = 0; j < n; j++)
                {
                    double mean = 0;
                    for (int h = 0; h < heads; h++) mean += p[((long)h * n + i) * n + j];
                    a[i * n + j] = (1 - residual) * mean / heads + (i == j ? residual : 0);
                    rowSum += a[i * n + j];
                }
                for (int j = 0; j < n; j++) a[i * n + j] /= rowSum;
            }
            r = MatMul(a, r, n); // Â_l · R_{l−1}: the newest layer on the left
        }
        return r;
    }

    /// <summary>Runs <paramref name="vit"/> on one image [1, 3, S, S] (no gradients) and keeps every block's attention.</summary>
    public static AttentionMaps Of(VisionTransformer vit, Tensor image)
    {
        if (image.Rank != 4 || image.Shape[0] != 1) throw new ArgumentException($"attention maps: expected one image [1, 3, S, S], got {ShapeUtil.Format(image.Shape)}");
        using var _ = GradMode.NoGrad();
        int c = vit.Width;
        var tokens = vit.Embed.Forward(image);
        var x = Tensor.Concat(1, vit.ClsToken.BroadcastTo(1, 1, c), tokens) + vit.PosEmbed; // [1, N, C]
        return OfBlocks(vit.Blocks, x);
    }

    /// <summary>Runs pre-norm <paramref name="blocks"/> on one token sequence x [1, N, C] (no gradients) and keeps every block's attention.</summary>
    public static AttentionMaps OfBlocks(IReadOnlyList<TransformerBlock> blocks, Tensor x)
    {
        if (x.Rank != 3 || x.Shape[0] != 1) throw new ArgumentException($"attention maps: expected one token sequence [1, N, C], got {ShapeUtil.Format(x.Shape)}");
        using var _ = GradMode.NoGrad();
        int n = x.Shape[1];
        int heads = blocks.Count > 0 ? blocks[0].Attn.Heads : 1;
        var layers = new List<double[]>();
        foreach (var block in blocks)
        {
            int h = block.Attn.Heads, d = block.Attn.HeadDim;
            var qkv = block.Attn.Qkv.Forward(block.Norm1.Forward(x)).ToArray(); // [1, N, 3, H, D]
            layers.Add(Probabilities(qkv, n, h, d));
            x = block.Forward(x);
        }
        return new AttentionMaps(heads, n, layers);
    }

    /// <summary>The class token's row of the rollout over the patches [N − 1] (its share on itself left out; see <see cref="ClipAttention"/>).</summary>
    public double[] ClassTokenRollout(double residual = 0.5) => Rollout(residual)[1..Tokens];

    /// <summary>P [H, N, N] from qkv rows [N, 3, H, D]: softmax_j(q_i·k_j / √D) per head.</summary>
    public static double[] Probabilities(float[] qkv, int n, int heads, int d)
    {
        var p = new double[(long)heads * n * n];
        double scale = 1 / Math.Sqrt(d);
        int row = 3 * heads * d;
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < n; i++)
            {
                long at = ((long)h * n + i) * n;
                double max = double.NegativeInfinity;
                for (int j = 0; j < n; j++)
                {
                    double s = 0;
                    for (int e = 0; e < d; e++) s += (double)qkv[i * row + h * d + e] * qkv[j * row + heads * d + h * d + e];
                    p[at + j] = s * scale;
                    max = Math.Max(max, p[at + j]);
                }
                double sum = 0;
                for (int j = 0; j < n; j++) sum += p[at + j] = Math.Exp(p[at + j] - max);
                for (int j = 0; j < n; j++) p[at + j] /= sum;
            }
        return p;
    }

    private static double[] Identity(int n)
    {
        var r = new double[n * n];
        for (int i = 0; i < n; i++) r[i * n + i] = 1;
        return r;
    }

    private static double[] MatMul(double[] a, double[] b, int n)
    {
        var c = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int k = 0; k < n; k++)
            {
                double x = a[i * n + k];
                if (x == 0) continue;
                for (int j = 0; j < n; j++) c[i * n + j] += x * b[k * n + j];
            }
        return c;
    }
}
