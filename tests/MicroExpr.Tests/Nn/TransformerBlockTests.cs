using MicroExpr.Nn;
using MicroExpr.Tensors;
using MicroExpr.Tensors.Autograd;

namespace MicroExpr.Tests.Nn;

/// <summary>
/// The transformer block's two forward paths compute the same function: with the tape (GELU kept for fc2, pre-activation
/// saved) and without it (GELU on fc1's GEMM tiles), against a double-precision block written out op by op.
/// </summary>
[TestFixture(typeof(OnCpu))]
[TestFixture(typeof(OnIlgpuCpu))]
public class TransformerBlockTests<TDevice> where TDevice : ITestDevice
{
    [Test]
    public void TrainingAndInferencePathsMatchADoubleBlock()
    {
        // Large enough that every GEMM takes the tiled path (M·N·K above the direct-path threshold of 32Ki): the
        // bias, residual and GELU are folded into tiles, not added row by row.
        const int b = 2, n = 50, c = 48, heads = 3, hidden = 80;
        var rng = new Rng(5);
        using var block = new TransformerBlock(c, heads, hidden, rng, initStd: 0.2f);
        foreach (var p in block.Parameters())
        {
            // Non-trivial LayerNorm affine and biases.
            var v = p.ToArray();
            for (int i = 0; i < v.Length; i++) v[i] += (float)(0.1 * rng.NextNormal());
            p.Backend.Upload(p.Storage, v);
        }
        block.To(TDevice.Device);
        var xs = Enumerable.Range(0, b * n * c).Select(_ => (float)rng.NextNormal()).ToArray();
        using var x = Tensor.FromSpan(xs, [b, n, c], TDevice.Device);

        float[] train, infer;
        using (var y = block.Forward(x)) train = y.ToArray();
        using (GradMode.NoGrad())
        using (var y = block.Forward(x)) infer = y.ToArray();

        var want = Reference(block, xs, b, n, c, heads);
        Check.Close(train, want, 2e-5, 1e-4, "block with the tape");
        Check.Close(infer, want, 2e-5, 1e-4, "block without the tape");
    }

    private static double[] P(Tensor t) => t.ToArray().Select(v => (double)v).ToArray();

    private static double[] Reference(TransformerBlock blk, float[] xf, int b, int n, int c, int heads)
    {
        int rows = b * n, d = c / heads, hidden = blk.Mlp.Fc1.OutFeatures;
        var x = xf.Select(v => (double)v).ToArray();
        double[] Norm(double[] v, LayerNorm ln)
        {
            var g = P(ln.Weight); var be = P(ln.Bias);
            var y = new double[v.Length];
            for (int r = 0; r < rows; r++)
            {
                double mean = 0, var = 0;
                for (int j = 0; j < c; j++) mean += v[r * c + j];
                mean /= c;
                for (int j = 0; j < c; j++) var += (v[r * c + j] - mean) * (v[r * c + j] - mean);
                var /= c;
                double rs = 1 / Math.Sqrt(var + ln.Eps);
                for (int j = 0; j < c; j++) y[r * c + j] = (v[r * c + j] - mean) * rs * g[j] + be[j];
            }
            return y;
        }
        double[] Lin(double[] v, Linear l)
        {
            var y = Ref.MatMul(v, P(l.Weight), rows, l.OutFeatures, l.InFeatures, false, true);
            var bb = P(l.Bias!);
            for (int r = 0; r < rows; r++) for (int o = 0; o < l.OutFeatures; o++) y[r * l.OutFeatures + o] += bb[o];
            return y;
        }
        var qkv = Lin(Norm(x, blk.Norm1), blk.Attn.Qkv);
        var att = new double[rows * c];
        for (int bi = 0; bi < b; bi++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < n; i++)
                {
                    var s = new double[n];
                    double mx = double.NegativeInfinity;
                    for (int j = 0; j < n; j++)
                    {
                        double dot = 0;
                        for (int e = 0; e < d; e++)
                            dot += qkv[(bi * n + i) * 3 * c + h * d + e] * qkv[(bi * n + j) * 3 * c + c + h * d + e];
                        s[j] = dot / Math.Sqrt(d);
                        mx = Math.Max(mx, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < n; j++) { s[j] = Math.Exp(s[j] - mx); sum += s[j]; }
                    for (int e = 0; e < d; e++)
                    {
                        double o = 0;
                        for (int j = 0; j < n; j++) o += s[j] / sum * qkv[(bi * n + j) * 3 * c + 2 * c + h * d + e];
                        att[(bi * n + i) * c + h * d + e] = o;
                    }
                }
        var proj = Lin(att, blk.Attn.Proj);
        var hRes = x.Zip(proj, (p, q) => p + q).ToArray();
        var f1 = Lin(Norm(hRes, blk.Norm2), blk.Mlp.Fc1).Select(GeluSimdTests.GeluD).ToArray();
        var f2 = Lin(f1, blk.Mlp.Fc2);
        _ = hidden;
        return hRes.Zip(f2, (p, q) => p + q).ToArray();
    }
}
