using MicroExpr.Tensors;

namespace MicroExpr.Tests.Ops;

/// <summary>
/// softmax, log-softmax, LayerNorm and fused attention through the tape, against double references; once per
/// backend. On ILGPU these need SoftmaxKernels, LayerNormKernels and AttentionKernels (the ilgpu-kernels branch).
/// </summary>
[TestFixture(typeof(OnCpu))]
[TestFixture(typeof(OnIlgpuCpu))]
public class FusedOpTests<TDevice> where TDevice : ITestDevice
{
    /// <summary>Model-size cases run on the SIMD CPU backend only: ILGPU's CPU accelerator is too slow for them.</summary>
    private static void CpuOnly()
    {
        if (TDevice.Small) Assert.Ignore("model size: run on the CPU backend only (ILGPU's CPU accelerator is slow)");
    }

    private static double[] SoftmaxRef(double[] x, int cols, bool log)
    {
        var y = new double[x.Length];
        for (int r = 0; r < x.Length / cols; r++)
        {
            double max = double.NegativeInfinity;
            for (int c = 0; c < cols; c++) max = Math.Max(max, x[r * cols + c]);
            double sum = 0;
            for (int c = 0; c < cols; c++) sum += Math.Exp(x[r * cols + c] - max);
            for (int c = 0; c < cols; c++)
                y[r * cols + c] = log ? x[r * cols + c] - max - Math.Log(sum) : Math.Exp(x[r * cols + c] - max) / sum;
        }
        return y;
    }

    private static int[][] SoftmaxShapes => TDevice.Small ? [[1, 1], [5, 17], [4, 197]] : [[1, 1], [3, 7], [5, 17], [2, 16], [2, 3, 50], [4, 197]];

    [TestCaseSource(nameof(SoftmaxShapes))]
    public void Softmax(int[] shape) => new GradCheck
    {
        Device = TDevice.Device,
        Name = "softmax", Shapes = [shape], Op = t => t[0].Softmax(), Reference = x => SoftmaxRef(x[0], shape[^1], false),
        Init = (_, _, rng) => (float)(rng.NextDouble() * 6 - 3),
    }.Run();

    [TestCaseSource(nameof(SoftmaxShapes))]
    public void LogSoftmax(int[] shape) => new GradCheck
    {
        Device = TDevice.Device,
        Name = "log_softmax", Shapes = [shape], Op = t => t[0].LogSoftmax(), Reference = x => SoftmaxRef(x[0], shape[^1], true),
        Init = (_, _, rng) => (float)(rng.NextDouble() * 6 - 3),
    }.Run();

    [Test]
    public void SoftmaxModelSize()
    {
        CpuOnly();
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "softmax_9600x50", Shapes = [[9600, 50]], Op = t => t[0].Softmax(), Reference = x => SoftmaxRef(x[0], 50, false), MaxGradChecks = 20,
        }.Run();
    }

    private static double[] LayerNormRef(double[] x, double[] g, double[] b, int c, double eps)
    {
        var y = new double[x.Length];
        for (int r = 0; r < x.Length / c; r++)
        {
            double mean = 0, v = 0;
            for (int i = 0; i < c; i++) mean += x[r * c + i];
            mean /= c;
            for (int i = 0; i < c; i++) v += (x[r * c + i] - mean) * (x[r * c + i] - mean);
            v /= c;
            double rstd = 1 / Math.Sqrt(v + eps);
            for (int i = 0; i < c; i++) y[r * c + i] = (x[r * c + i] - mean) * rstd * g[i] + b[i];
        }
        return y;
    }

    private static int[][] LayerNormShapes => TDevice.Small ? [[3, 1], [2, 33], [2, 5, 192]] : [[3, 1], [1, 7], [4, 17], [2, 33], [2, 5, 192]];

    [TestCaseSource(nameof(LayerNormShapes))]
    public void LayerNorm(int[] shape)
    {
        int c = shape[^1];
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "layernorm", Shapes = [shape, [c], [c]], Op = t => Tensor.LayerNorm(t[0], t[1], t[2], 1e-5f),
            Reference = x => LayerNormRef(x[0], x[1], x[2], c, 1e-5),
            // C = 1 normalises to exactly 0: the input gradient is 0 but eps makes it well defined.
            GradAtol = 5e-4, GradRtol = 5e-3,
        }.Run();
    }

    [Test]
    public void LayerNormModelSize()
    {
        CpuOnly();
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "layernorm_3200x192", Shapes = [[3200, 192], [192], [192]], Op = t => Tensor.LayerNorm(t[0], t[1], t[2]),
            Reference = x => LayerNormRef(x[0], x[1], x[2], 192, 1e-5), MaxGradChecks = 6, ForwardAtol = 2e-5,
        }.Run();
    }

    /// <summary>softmax(scale·QKᵀ)V per head, in double, materialising the scores (the literal reference).</summary>
    public static double[] AttentionRef(double[] q, double[] k, double[] v, int bh, int nq, int nk, int d, double scale)
    {
        var o = new double[bh * nq * d];
        var s = new double[nk];
        for (int h = 0; h < bh; h++)
            for (int i = 0; i < nq; i++)
            {
                double max = double.NegativeInfinity;
                for (int j = 0; j < nk; j++)
                {
                    double dot = 0;
                    for (int e = 0; e < d; e++) dot += q[(h * nq + i) * d + e] * k[(h * nk + j) * d + e];
                    s[j] = dot * scale;
                    max = Math.Max(max, s[j]);
                }
                double sum = 0;
                for (int j = 0; j < nk; j++) { s[j] = Math.Exp(s[j] - max); sum += s[j]; }
                for (int e = 0; e < d; e++)
                {
                    double acc = 0;
                    for (int j = 0; j < nk; j++) acc += s[j] * v[(h * nk + j) * d + e];
                    o[(h * nq + i) * d + e] = acc / sum;
                }
            }
        return o;
    }

    [TestCase(1, 1, 1, 1, 1)]
    [TestCase(2, 3, 5, 5, 7)]
    [TestCase(1, 2, 31, 33, 16)]
    [TestCase(2, 1, 17, 1, 17)]
    [TestCase(1, 3, 50, 50, 64)]
    public void Attention(int b, int h, int nq, int nk, int d)
    {
        double scale = 1 / Math.Sqrt(d);
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "attention", Shapes = [[b, h, nq, d], [b, h, nk, d], [b, h, nk, d]],
            Op = t => Tensor.Attention(t[0], t[1], t[2]),
            Reference = x => AttentionRef(x[0], x[1], x[2], b * h, nq, nk, d, scale),
            MaxGradChecks = 80,
        }.Run();
    }

    [Test, Description("The bench model's attention: 192 heads × 50 tokens × 64, forward everywhere and sampled gradients")]
    public void AttentionModelSize()
    {
        CpuOnly();
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "attention_192x50x64", Shapes = [[192, 50, 64], [192, 50, 64], [192, 50, 64]],
            Op = t => Tensor.Attention(t[0], t[1], t[2]),
            Reference = x => AttentionRef(x[0], x[1], x[2], 192, 50, 50, 64, 0.125),
            MaxGradChecks = 3,
        }.Run();
    }

    [Test]
    public void AttentionRejectsMismatchedHeads()
    {
        using var q = Tensor.Zeros(2, 5, 8);
        using var k = Tensor.Zeros(3, 5, 8);
        var ex = Assert.Throws<ShapeException>(() => Tensor.Attention(q, k, k))!;
        Assert.That(ex.Message, Does.Contain("attention").And.Contain("[2, 5, 8]").And.Contain("[3, 5, 8]"));
    }
}
