using MicroExpr.Kernels;
using MicroExpr.Tensors;

namespace MicroExpr.Tests.Conv;

/// <summary>
/// Pooling, unpooling, upsampling and drop-path through the tape against <see cref="PoolReference"/> (double) and finite
/// differences of it, on every backend; max pooling's int32 indices against the reference's.
/// </summary>
[TestFixture(typeof(OnCpu))]
[TestFixture(typeof(OnIlgpuCpu))]
[TestFixture(typeof(OnCudaGpu), Category = "Gpu")]
public class PoolOpTests<TDevice> where TDevice : ITestDevice
{
    [SetUp]
    public void Device() => OnCudaGpu.RequireIfCuda<TDevice>();

    /// <summary>The geometry the op builds, built here independently: (d, h, w) per axis, D = 1 for 2D.</summary>
    private static PoolGeometry Geo(int[] shape, int[] k, int[] s, int[] p, bool ceil)
    {
        bool two = shape.Length == 4;
        int[] in3 = two ? [1, shape[2], shape[3]] : [shape[2], shape[3], shape[4]];
        int[] k3 = two ? [1, k[0], k[1]] : k, s3 = two ? [1, s[0], s[1]] : s, p3 = two ? [0, p[0], p[1]] : p;
        var o = new int[3];
        for (int i = 0; i < 3; i++)
        {
            // literal: floor or ceil of (in + 2p − k)/s, plus one; in ceil mode drop a last window starting in the right padding
            double q = (in3[i] + 2.0 * p3[i] - k3[i]) / s3[i];
            o[i] = (int)(ceil ? Math.Ceiling(q) : Math.Floor(q)) + 1;
            if (ceil && (o[i] - 1) * s3[i] >= in3[i] + p3[i]) o[i]--;
        }
        return new PoolGeometry
        {
            Planes = shape[0] * shape[1], D = in3[0], H = in3[1], W = in3[2], Do = o[0], Ho = o[1], Wo = o[2],
            Kd = k3[0], Kh = k3[1], Kw = k3[2], Sd = s3[0], Sh = s3[1], Sw = s3[2], Pd = p3[0], Ph = p3[1], Pw = p3[2],
        };
    }

    // shape, kernel, stride, padding, ceil mode
    private static IEnumerable<object[]> Cases2d()
    {
        yield return [new[] { 2, 15, 7, 7 }, 3, 2, 1, false];
        yield return [new[] { 2, 15, 7, 7 }, 3, 2, 1, true];
        yield return [new[] { 1, 16, 13, 13 }, 2, 2, 0, true];
        yield return [new[] { 1, 17, 13, 13 }, 2, 2, 0, false];
        yield return [new[] { 1, 3, 1, 1 }, 1, 1, 0, false];
        yield return [new[] { 1, 2, 13, 13 }, 7, 2, 3, true];
        if (!TDevice.Small)
        {
            yield return [new[] { 1, 64, 28, 28 }, 3, 2, 1, false];
            yield return [new[] { 2, 17, 28, 28 }, 3, 2, 1, true];
        }
    }

    [TestCaseSource(nameof(Cases2d))]
    public void MaxPool2d(int[] shape, int k, int s, int p, bool ceil)
    {
        var g = Geo(shape, [k, k], [s, s], [p, p], ceil);
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "maxpool2d", Shapes = [shape],
            Op = t => t[0].MaxPool2d(k, s, p, ceil),
            Reference = a =>
            {
                var y = new double[g.Planes * g.OutPlane];
                PoolReference.MaxPool(y, new int[y.Length], a[0], g);
                return y;
            },
            MaxGradChecks = 64,
        }.Run();
    }

    [TestCaseSource(nameof(Cases2d))]
    public void MaxPool2dIndices(int[] shape, int k, int s, int p, bool ceil)
    {
        var g = Geo(shape, [k, k], [s, s], [p, p], ceil);
        var x = Check.Random(ShapeUtil.Numel(shape), 3);
        var y = new double[g.Planes * g.OutPlane];
        var idx = new int[y.Length];
        PoolReference.MaxPool(y, idx, x.Select(v => (double)v).ToArray(), g);
        using var scope = new TensorScope();
        var (values, indices) = Tensor.FromSpan(x, shape, TDevice.Device).MaxPool2dWithIndices(k, s, p, ceil);
        Assert.That(indices.DType, Is.EqualTo(DType.Int32));
        Assert.That(values.Shape, Is.EqualTo(new[] { shape[0], shape[1], g.Ho, g.Wo }));
        Assert.That(indices.ToInt32Array(), Is.EqualTo(idx));
        Check.Close(values.ToArray(), y, 0, 0, "maxpool2d values");
    }

    [TestCase(false)]
    [TestCase(true)]
    public void MaxPool3d(bool ceil)
    {
        int[] shape = [1, 4, 5, 7, 7];
        var g = Geo(shape, [2, 3, 3], [1, 2, 2], [0, 1, 1], ceil);
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "maxpool3d", Shapes = [shape],
            Op = t => t[0].MaxPool3d((2, 3, 3), (1, 2, 2), (0, 1, 1), ceil),
            Reference = a =>
            {
                var y = new double[g.Planes * g.OutPlane];
                PoolReference.MaxPool(y, new int[y.Length], a[0], g);
                return y;
            },
            MaxGradChecks = 64,
        }.Run();
    }

    private static IEnumerable<object[]> AvgCases()
    {
        foreach (bool include in new[] { true, false })
        {
            yield return [new[] { 2, 15, 7, 7 }, 3, 2, 1, false, include];
            yield return [new[] { 2, 16, 7, 7 }, 3, 2, 1, true, include];
            yield return [new[] { 1, 17, 13, 13 }, 2, 2, 0, true, include];
            yield return [new[] { 1, 2, 13, 13 }, 7, 2, 3, false, include];
        }
        if (!TDevice.Small) yield return [new[] { 1, 64, 28, 28 }, 3, 2, 1, true, false];
    }

    [TestCaseSource(nameof(AvgCases))]
    public void AvgPool2d(int[] shape, int k, int s, int p, bool ceil, bool countIncludePad)
    {
        var g = Geo(shape, [k, k], [s, s], [p, p], ceil);
        g.CountIncludePad = countIncludePad ? 1 : 0;
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "avgpool2d", Shapes = [shape],
            Op = t => t[0].AvgPool2d(k, s, p, ceil, countIncludePad),
            Reference = a =>
            {
                var y = new double[g.Planes * g.OutPlane];
                PoolReference.AvgPool(y, a[0], g);
                return y;
            },
            MaxGradChecks = 64,
        }.Run();
    }

    [TestCase(false, true)]
    [TestCase(true, false)]
    public void AvgPool3d(bool ceil, bool countIncludePad)
    {
        int[] shape = [1, 3, 5, 7, 6];
        var g = Geo(shape, [3, 3, 2], [2, 2, 2], [1, 1, 0], ceil);
        g.CountIncludePad = countIncludePad ? 1 : 0;
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "avgpool3d", Shapes = [shape],
            Op = t => t[0].AvgPool3d((3, 3, 2), (2, 2, 2), (1, 1, 0), ceil, countIncludePad),
            Reference = a =>
            {
                var y = new double[g.Planes * g.OutPlane];
                PoolReference.AvgPool(y, a[0], g);
                return y;
            },
            MaxGradChecks = 64,
        }.Run();
    }

    [TestCase(new[] { 2, 3, 7, 13 }, 3, 5)]
    [TestCase(new[] { 1, 16, 7, 7 }, 1, 1)]
    [TestCase(new[] { 1, 2, 5, 4 }, 7, 6)]
    public void AdaptiveAvgPool2d(int[] shape, int oh, int ow)
    {
        var g = new PoolGeometry { Planes = shape[0] * shape[1], D = 1, H = shape[2], W = shape[3], Do = 1, Ho = oh, Wo = ow, Adaptive = 1 };
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "adaptive_avgpool2d", Shapes = [shape],
            Op = t => t[0].AdaptiveAvgPool2d(oh, ow),
            Reference = a =>
            {
                var y = new double[g.Planes * g.OutPlane];
                PoolReference.AvgPool(y, a[0], g);
                return y;
            },
        }.Run();
    }

    [Test]
    public void AdaptiveAvgPool3d()
    {
        int[] shape = [1, 3, 5, 7, 4];
        var g = new PoolGeometry { Planes = 3, D = 5, H = 7, W = 4, Do = 2, Ho = 3, Wo = 3, Adaptive = 1 };
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "adaptive_avgpool3d", Shapes = [shape],
            Op = t => t[0].AdaptiveAvgPool3d(2, 3, 3),
            Reference = a =>
            {
                var y = new double[g.Planes * g.OutPlane];
                PoolReference.AvgPool(y, a[0], g);
                return y;
            },
        }.Run();
    }

    [Test]
    public void GlobalAvgPool() => new GradCheck
    {
        Device = TDevice.Device,
        Name = "global_avgpool", Shapes = [[2, 17, 3, 5]],
        Op = t => t[0].GlobalAvgPool(),
        Reference = a => Enumerable.Range(0, 2 * 17).Select(pl => a[0].Skip(pl * 15).Take(15).Average()).ToArray(),
    }.Run();

    [Test]
    public void MaxUnpool2dInvertsMaxPool()
    {
        int[] shape = [2, 3, 7, 7];
        var g = Geo(shape, [2, 2], [2, 2], [0, 0], false);
        var src = Check.Random(ShapeUtil.Numel(shape), 11);
        var idx = new int[g.Planes * g.OutPlane];
        PoolReference.MaxPool(new double[idx.Length], idx, src.Select(v => (double)v).ToArray(), g);
        int[] pooled = [2, 3, g.Ho, g.Wo];
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "maxunpool2d", Shapes = [pooled],
            Op = t => Tensor.MaxUnpool2d(t[0], Tensor.FromInt32(idx, pooled, TDevice.Device), 2, 2, 0, (7, 7)),
            Reference = a =>
            {
                var y = new double[g.Planes * 49];
                PoolReference.MaxUnpool(y, a[0], idx, g.Planes, g.OutPlane, 49);
                return y;
            },
        }.Run();
    }

    [Test]
    public void MaxUnpool2dRejectsOutOfRangeIndices()
    {
        using var scope = new TensorScope();
        var x = Tensor.Zeros([1, 1, 2, 2], TDevice.Device);
        var idx = Tensor.FromInt32([0, 1, 2, 99], [1, 1, 2, 2], TDevice.Device);
        var e = Assert.Throws<ArgumentException>(() => Tensor.MaxUnpool2d(x, idx, 2))!;
        Assert.That(e.Message, Does.Contain("index 99"));
    }

    /// <summary>Literal per-pixel upsampling (PyTorch's formulas), for the reference.</summary>
    private static double[] UpsampleRef(double[] x, int planes, int h, int w, int oh, int ow, bool bilinear)
    {
        var y = new double[planes * oh * ow];
        for (int p = 0; p < planes; p++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                {
                    double v;
                    if (!bilinear) v = x[p * h * w + Math.Min(i * h / oh, h - 1) * w + Math.Min(j * w / ow, w - 1)];
                    else
                    {
                        double sy = Math.Max(0, (i + 0.5) * h / oh - 0.5), sx = Math.Max(0, (j + 0.5) * w / ow - 0.5);
                        int y0 = (int)Math.Floor(sy), x0 = (int)Math.Floor(sx);
                        int y1 = Math.Min(y0 + 1, h - 1), x1 = Math.Min(x0 + 1, w - 1);
                        double ly = sy - y0, lx = sx - x0;
                        double At(int a, int b) => x[p * h * w + a * w + b];
                        v = (1 - ly) * ((1 - lx) * At(y0, x0) + lx * At(y0, x1)) + ly * ((1 - lx) * At(y1, x0) + lx * At(y1, x1));
                    }
                    y[(p * oh + i) * ow + j] = v;
                }
        return y;
    }

    [TestCase(3, 5, 6, 10, false)]
    [TestCase(3, 5, 6, 10, true)]
    [TestCase(7, 7, 13, 28, true)]
    [TestCase(4, 6, 3, 4, true)]
    [TestCase(1, 1, 2, 3, true)]
    public void Upsample(int h, int w, int oh, int ow, bool bilinear)
    {
        int[] shape = [2, 3, h, w];
        new GradCheck
        {
            Device = TDevice.Device,
            Name = bilinear ? "upsample_bilinear" : "upsample_nearest", Shapes = [shape],
            Op = t => t[0].Upsample(oh, ow, bilinear),
            Reference = a => UpsampleRef(a[0], 6, h, w, oh, ow, bilinear),
            MaxGradChecks = 64,
        }.Run();
    }

    [Test]
    public void DropPathIsSeededPerSample()
    {
        using var scope = new TensorScope();
        var x = Tensor.FromSpan(Check.Random(8 * 6, 2, 0.5f, 1f), [8, 2, 3], TDevice.Device);
        var a = x.DropPath(0.5f, new Rng(3)).ToArray();
        var b = x.DropPath(0.5f, new Rng(3)).ToArray();
        Assert.That(a, Is.EqualTo(b), "same seed, same mask");
        var xs = x.ToArray();
        int dropped = 0;
        for (int s = 0; s < 8; s++)
        {
            bool zero = a[s * 6] == 0f;
            if (zero) dropped++;
            for (int i = 0; i < 6; i++)
                Assert.That(a[s * 6 + i], Is.EqualTo(zero ? 0f : xs[s * 6 + i] * 2f).Within(1e-6), $"sample {s} is dropped or scaled as a whole");
        }
        Assert.That(dropped, Is.InRange(1, 7), "p = 0.5 over 8 samples drops some, not all (seeded)");
        Assert.That(x.DropPath(0.5f, new Rng(3), training: false), Is.SameAs(x));
    }

    [Test]
    public void BadWindowsGiveOneLineErrors()
    {
        using var scope = new TensorScope();
        var x = Tensor.Zeros([1, 1, 4, 4], TDevice.Device);
        Assert.That(Assert.Throws<ArgumentException>(() => x.MaxPool2d(3, 1, 2))!.Message, Does.Contain("padding 2 must be at most half the kernel 3"));
        Assert.That(Assert.Throws<ArgumentException>(() => x.AvgPool2d(7))!.Message, Does.Contain("smaller than the kernel 7"));
        Assert.Throws<ShapeException>(() => Tensor.Zeros([4, 4], TDevice.Device).MaxPool2d(2));
        // Ceil mode, as PyTorch: a 1×1 map under a 2×2 stride-2 window gives one clipped window (padding not counted).
        var one = Tensor.FromSpan([3f, -2f], [1, 2, 1, 1], TDevice.Device);
        Assert.That(one.AvgPool2d(2, 2, 0, ceilMode: true, countIncludePad: false).ToArray(), Is.EqualTo(new[] { 3f, -2f }));
        Assert.That(one.MaxPool2d(2, 2, 0, ceilMode: true).ToArray(), Is.EqualTo(new[] { 3f, -2f }));
    }
}
