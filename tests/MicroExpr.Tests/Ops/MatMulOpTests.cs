using MicroExpr.Tensors;

namespace MicroExpr.Tests.Ops;

/// <summary>
/// matmul and batched matmul with transpose flags, through the tape; once per backend. On ILGPU these need
/// GemmKernels (the ilgpu-kernels branch).
/// </summary>
[TestFixture(typeof(OnCpu))]
[TestFixture(typeof(OnIlgpuCpu))]
public class MatMulOpTests<TDevice> where TDevice : ITestDevice
{
    /// <summary>Model-size cases run on the SIMD CPU backend only: ILGPU's CPU accelerator is too slow for them.</summary>
    private static void CpuOnly()
    {
        if (TDevice.Small) Assert.Ignore("model size: run on the CPU backend only (ILGPU's CPU accelerator is slow)");
    }

    private static IEnumerable<TestCaseData> Cases()
    {
        (int m, int n, int k)[] sizes = TDevice.Small ? [(1, 1, 1), (5, 7, 3), (33, 31, 16)]
            : [(1, 1, 1), (1, 17, 3), (5, 7, 3), (16, 15, 17), (33, 31, 16), (3, 50, 64)];
        foreach (var (m, n, k) in sizes)
            foreach (bool ta in new[] { false, true })
                foreach (bool tb in new[] { false, true })
                    yield return new TestCaseData(m, n, k, ta, tb).SetArgDisplayNames($"{m}x{n}x{k}", ta ? "Aᵀ" : "A", tb ? "Bᵀ" : "B");
    }

    [TestCaseSource(nameof(Cases))]
    public void TwoD(int m, int n, int k, bool ta, bool tb) => new GradCheck
    {
        Device = TDevice.Device,
        Name = "matmul",
        Shapes = [ta ? [k, m] : [m, k], tb ? [n, k] : [k, n]],
        Op = t => Tensor.MatMul(t[0], t[1], ta, tb),
        Reference = x => Ref.MatMul(x[0], x[1], m, n, k, ta, tb),
        ForwardAtol = 1e-5 * Math.Sqrt(k), MaxGradChecks = 60,
    }.Run();

    [TestCase(3, 5, 7, 4, false, false)]
    [TestCase(2, 6, 3, 9, true, false)]
    [TestCase(4, 5, 5, 8, false, true)]
    [TestCase(2, 3, 4, 5, true, true)]
    public void Batched(int batch, int m, int n, int k, bool ta, bool tb)
    {
        int[] sa = ta ? [batch, k, m] : [batch, m, k], sb = tb ? [batch, n, k] : [batch, k, n];
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "bmm", Shapes = [sa, sb], Op = t => Tensor.MatMul(t[0], t[1], ta, tb),
            Reference = x => Enumerable.Range(0, batch).SelectMany(i => Ref.MatMul(x[0], x[1], m, n, k, ta, tb, i * m * k, i * n * k)).ToArray(),
            MaxGradChecks = 60,
        }.Run();
    }

    [TestCase(false)]
    [TestCase(true)]
    public void BatchedTimesSharedWeight(bool ta)
    {
        // [2, 3, M, K] · [K, N] as in a Linear layer over tokens; with transA the weight is shared by a batched GEMM.
        int b0 = 2, b1 = 3, m = 5, k = 4, n = 6;
        int[] sa = ta ? [b0 * b1, k, m] : [b0, b1, m, k];
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "matmul_shared", Shapes = [sa, [k, n]], Op = t => Tensor.MatMul(t[0], t[1], ta, false),
            Reference = x => Enumerable.Range(0, b0 * b1).SelectMany(i => Ref.MatMul(x[0], x[1], m, n, k, ta, false, i * m * k, 0)).ToArray(),
            MaxGradChecks = 60,
        }.Run();
    }

    [Test, Description("The model's QKV projection size: forward everywhere, sampled gradient elements")]
    public void ModelSizeQkvProjection()
    {
        CpuOnly();
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "matmul_qkv", Shapes = [[3200, 192], [576, 192]], Op = t => Tensor.MatMul(t[0], t[1], false, true),
            Reference = x => Ref.MatMul(x[0], x[1], 3200, 576, 192, false, true),
            ForwardAtol = 2e-4, MaxGradChecks = 2, Step = 1e-4,
        }.Run();
    }

    [Test]
    public void InnerDimensionMismatchNamesBothShapes()
    {
        using var a = Tensor.Zeros(2, 3);
        using var b = Tensor.Zeros(4, 5);
        var ex = Assert.Throws<ShapeException>(() => Tensor.MatMul(a, b))!;
        Assert.That(ex.Message, Does.Contain("matmul").And.Contain("[2, 3]").And.Contain("[4, 5]"));
    }
}

/// <summary>The fused Linear op (GEMM with the bias written first) against y = x·Wᵀ + b in double.</summary>
public class LinearOpTests
{
    private static double[] Reference(double[] x, double[] w, double[]? b, int rows, int inF, int outF)
    {
        var y = Ref.MatMul(x, w, rows, outF, inF, false, true);
        if (b != null) for (int r = 0; r < rows; r++) for (int o = 0; o < outF; o++) y[r * outF + o] += b[o];
        return y;
    }

    [TestCase(new[] { 1, 1 }, 1, true)]
    [TestCase(new[] { 5, 7 }, 3, true)]
    [TestCase(new[] { 2, 3, 17 }, 33, true)]
    [TestCase(new[] { 4, 16 }, 16, false)]
    [TestCase(new[] { 2, 50, 12 }, 36, true)]
    public void MatchesTheReference(int[] xShape, int outF, bool bias)
    {
        int inF = xShape[^1], rows = Ref.Numel(xShape) / inF;
        new GradCheck
        {
            Name = "linear",
            Shapes = bias ? [xShape, [outF, inF], [outF]] : [xShape, [outF, inF]],
            Op = t => Tensor.Linear(t[0], t[1], bias ? t[2] : null),
            Reference = x => Reference(x[0], x[1], bias ? x[2] : null, rows, inF, outF),
            MaxGradChecks = 80,
        }.Run();
    }

    [Test]
    public void MismatchNamesBothShapes()
    {
        using var x = Tensor.Zeros(2, 5);
        using var w = Tensor.Zeros(3, 4);
        Assert.That(Assert.Throws<ShapeException>(() => Tensor.Linear(x, w, null))!.Message, Does.Contain("[2, 5]").And.Contain("[3, 4]"));
    }
}

/// <summary>GELU fused into a Linear (activation recomputed in backward), and strided windows.</summary>
public class GeluLinearAndStridedTests
{
    [TestCase(new[] { 3, 7 }, 5, true)]
    [TestCase(new[] { 2, 4, 17 }, 9, true)]
    [TestCase(new[] { 6, 16 }, 3, false)]
    public void GeluLinearMatchesTheReference(int[] hShape, int outF, bool bias)
    {
        int inF = hShape[^1], rows = Ref.Numel(hShape) / inF;
        new GradCheck
        {
            Name = "gelu_linear",
            Shapes = bias ? [hShape, [outF, inF], [outF]] : [hShape, [outF, inF]],
            Op = t => Tensor.GeluLinear(t[0], t[1], bias ? t[2] : null),
            Reference = x =>
            {
                var a = Ref.Map(x[0], Ops.ElementwiseOpTests<OnCpu>.Gelu);
                var y = Ref.MatMul(a, x[1], rows, outF, inF, false, true);
                if (bias) for (int r = 0; r < rows; r++) for (int o = 0; o < outF; o++) y[r * outF + o] += x[2][o];
                return y;
            },
            Init = (_, _, rng) => (float)(rng.NextDouble() * 4 - 2),
            ForwardAtol = 2e-5, MaxGradChecks = 80,
        }.Run();
    }

    [Test]
    public void QkvWindowsMatchPermuteAndSlice()
    {
        int b = 2, n = 5, h = 3, d = 4, c = h * d;
        int[] shape = [b, h, n, d], strides = [n * 3 * c, d, 3 * c, 1];
        for (int part = 0; part < 3; part++)
        {
            int p = part;
            new GradCheck
            {
                Name = "as_strided", Shapes = [[b, n, 3 * c]], Op = t => t[0].AsStrided(shape, strides, p * c),
                Reference = x =>
                {
                    var y = new double[b * h * n * d];
                    for (int i0 = 0; i0 < b; i0++) for (int i1 = 0; i1 < h; i1++) for (int i2 = 0; i2 < n; i2++) for (int i3 = 0; i3 < d; i3++)
                        y[((i0 * h + i1) * n + i2) * d + i3] = x[0][i0 * n * 3 * c + i2 * 3 * c + p * c + i1 * d + i3];
                    return y;
                },
            }.Run();
        }
        using var t = Tensor.Zeros(2, 3);
        Assert.That(Assert.Throws<ShapeException>(() => t.AsStrided([2, 3], [3, 1], 1))!.Message, Does.Contain("as_strided").And.Contain("reaches past"));
    }
}

/// <summary>
/// Linear and GELU+Linear joining a residual stream (y = r + f(x)·Wᵀ + b, the residual folded into the GEMM): forward in
/// double, gradients of x, W, b and r by finite differences, on both backends; shapes below and above the GEMM's
/// direct-path threshold, edge tiles, and a model-like [2, 50, 24] → 36.
/// </summary>
[TestFixture(typeof(OnCpu))]
[TestFixture(typeof(OnIlgpuCpu))]
public class LinearResidualOpTests<TDevice> where TDevice : ITestDevice
{
    [TestCase(new[] { 1, 1 }, 1, true, false)]
    [TestCase(new[] { 5, 7 }, 3, false, false)]
    [TestCase(new[] { 2, 3, 17 }, 33, true, false)]
    [TestCase(new[] { 2, 50, 24 }, 36, true, false)]
    [TestCase(new[] { 3, 7 }, 5, true, true)]
    [TestCase(new[] { 2, 4, 17 }, 9, false, true)]
    [TestCase(new[] { 2, 50, 24 }, 36, true, true)]
    public void MatchesTheReference(int[] xShape, int outF, bool bias, bool gelu)
    {
        int inF = xShape[^1], rows = Ref.Numel(xShape) / inF;
        int[] yShape = [.. xShape[..^1], outF];
        int[] wShape = [outF, inF];
        new GradCheck
        {
            Name = gelu ? "gelu_linear+residual" : "linear+residual",
            Device = TDevice.Device,
            Shapes = bias ? [xShape, wShape, [outF], yShape] : [xShape, wShape, yShape],
            Op = t => gelu
                ? Tensor.GeluLinear(t[0], t[1], bias ? t[2] : null, t[^1])
                : Tensor.Linear(t[0], t[1], bias ? t[2] : null, t[^1]),
            Reference = x =>
            {
                var a = gelu ? Ref.Map(x[0], GeluSimdTests.GeluD) : x[0];
                var y = Ref.MatMul(a, x[1], rows, outF, inF, false, true);
                var r = x[^1];
                for (int i = 0; i < rows; i++)
                    for (int o = 0; o < outF; o++) y[i * outF + o] += r[i * outF + o] + (bias ? x[2][o] : 0);
                return y;
            },
            Init = (_, _, rng) => (float)(rng.NextDouble() * 4 - 2),
            ForwardAtol = 2e-5, MaxGradChecks = TDevice.Small ? 40 : 120,
        }.Run();
    }

    /// <summary>LinearGelu (GELU applied to the GEMM's tiles; backward recomputes the pre-activation).</summary>
    [TestCase(new[] { 1, 1 }, 1, true)]
    [TestCase(new[] { 3, 7 }, 5, false)]
    [TestCase(new[] { 2, 50, 24 }, 36, true)]
    [TestCase(new[] { 2, 3, 17 }, 33, true)]
    public void LinearGeluMatchesTheReference(int[] xShape, int outF, bool bias)
    {
        int inF = xShape[^1], rows = Ref.Numel(xShape) / inF;
        new GradCheck
        {
            Name = "linear_gelu",
            Device = TDevice.Device,
            Shapes = bias ? [xShape, [outF, inF], [outF]] : [xShape, [outF, inF]],
            Op = t => Tensor.LinearGelu(t[0], t[1], bias ? t[2] : null),
            Reference = x =>
            {
                var h = Ref.MatMul(x[0], x[1], rows, outF, inF, false, true);
                if (bias) for (int i = 0; i < rows; i++) for (int o = 0; o < outF; o++) h[i * outF + o] += x[2][o];
                return Ref.Map(h, GeluSimdTests.GeluD);
            },
            Init = (_, _, rng) => (float)(rng.NextDouble() * 2 - 1),
            ForwardAtol = 2e-5, MaxGradChecks = TDevice.Small ? 40 : 120,
        }.Run();
    }

    [Test]
    public void AResidualOfTheWrongShapeIsNamed()
    {
        using var x = Tensor.Zeros([2, 5], TDevice.Device);
        using var w = Tensor.Zeros([3, 5], TDevice.Device);
        using var r = Tensor.Zeros([2, 4], TDevice.Device);
        var e = Assert.Throws<ShapeException>(() => Tensor.Linear(x, w, null, r))!;
        Assert.That(e.Message, Does.Contain("residual [2, 4]").And.Contain("[2, 3]"));
    }
}
