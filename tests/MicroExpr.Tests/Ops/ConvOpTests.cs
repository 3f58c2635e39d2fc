using MicroExpr.Kernels;
using MicroExpr.Tensors;

namespace MicroExpr.Tests.Ops;

/// <summary>
/// Conv2d, Conv3d and the fused conv + bias (+ ReLU) through the tape: forward against <see cref="ConvReference"/> in
/// double, dx, dw and db by finite differences of it (at most 64 sampled elements per tensor on the larger shapes),
/// NaN-poisoned outputs; once per backend (ILGPU's CPU accelerator gets the small cases).
/// </summary>
[TestFixture(typeof(OnCpu))]
[TestFixture(typeof(OnIlgpuCpu))]
public class ConvOpTests<TDevice> where TDevice : ITestDevice
{
    /// <summary>One 2-d case: x [N, Cin, H, W], w [Cout, Cin/G, kh, kw], stride, padding, dilation, groups, bias.</summary>
    public sealed record Case2d(int N, int Cin, int Cout, int H, int W, int Kh, int Kw, int Sh, int Sw, int Ph, int Pw,
        int Dh = 1, int Dw = 1, int G = 1, bool Bias = true, bool Small = true)
    {
        public override string ToString() =>
            $"x[{N},{Cin},{H},{W}] w[{Cout},{Cin / G},{Kh},{Kw}] s{Sh}x{Sw} p{Ph}x{Pw} d{Dh}x{Dw} g{G}{(Bias ? "" : " nobias")}";

        public ConvGeometry Geometry => ConvGeometry.Create2d(N, Cin, Cout, G, H, W, Kh, Kw, Sh, Sw, Ph, Pw, Dh, Dw);
    }

    private static readonly Case2d[] All2d =
    [
        new(1, 15, 17, 13, 13, 3, 3, 1, 1, 1, 1),                     // odd channels and size, 'same' padding
        new(1, 16, 16, 28, 28, 3, 3, 2, 2, 1, 1, Small: false),       // stride 2 on 28
        new(1, 3, 16, 28, 28, 7, 7, 2, 2, 3, 3, Small: false),        // the ResNet stem: 7×7/2, padding 3
        new(1, 3, 4, 13, 13, 7, 7, 2, 2, 3, 3),                       // the stem, small
        new(2, 17, 64, 7, 7, 1, 1, 1, 1, 0, 0),                       // pointwise: a plain GEMM
        new(2, 16, 32, 13, 13, 1, 1, 2, 2, 0, 0),                     // ResNet's 1×1/2 downsample
        new(2, 16, 16, 7, 7, 3, 3, 1, 1, 1, 1, G: 2),                 // two groups
        new(2, 17, 17, 13, 13, 3, 3, 1, 1, 1, 1, G: 17),              // depthwise
        new(1, 4, 8, 7, 7, 3, 3, 2, 2, 1, 1, G: 4, Bias: false),      // groups = C with a channel multiplier, stride 2
        new(1, 15, 16, 13, 13, 3, 3, 1, 1, 2, 2, 2, 2),               // dilation 2
        new(3, 16, 15, 1, 1, 3, 3, 1, 1, 1, 1),                       // spatial size 1
        new(2, 5, 6, 7, 7, 5, 5, 1, 1, 0, 0, Bias: false),            // padding 0, no bias
        new(2, 3, 5, 7, 13, 3, 2, 2, 1, 1, 0),                        // non-square, unequal stride and padding
        new(1, 64, 64, 5, 5, 3, 3, 1, 1, 1, 1, Small: false),         // 64 channels
        new(1, 16, 8, 28, 28, 3, 3, 1, 1, 1, 1, Small: false),        // 28×28, two im2col chunks (Kg·P = 144·784)
    ];

    private static IEnumerable<Case2d> Cases2d => TDevice.Small ? All2d.Where(c => c.Small) : All2d;

    private static GradCheck Check2d(Case2d c, bool fused, bool relu)
    {
        var geo = c.Geometry;
        bool bias = c.Bias || fused;
        int[][] shapes = bias ? [[c.N, c.Cin, c.H, c.W], [c.Cout, c.Cin / c.G, c.Kh, c.Kw], [c.Cout]] : [[c.N, c.Cin, c.H, c.W], [c.Cout, c.Cin / c.G, c.Kh, c.Kw]];
        return new GradCheck
        {
            Device = TDevice.Device,
            Name = (fused ? relu ? "conv2d_bias_relu " : "conv2d_bias " : "conv2d ") + c,
            Shapes = shapes,
            Op = t => fused
                ? Tensor.FusedConv2d(t[0], t[1], t[2], relu, c.Sh, c.Sw, c.Ph, c.Pw, c.Dh, c.Dw, c.G)
                : Tensor.Conv2d(t[0], t[1], bias ? t[2] : null, c.Sh, c.Sw, c.Ph, c.Pw, c.Dh, c.Dw, c.G),
            Reference = x => Reference(x, geo, bias, relu),
            MaxGradChecks = 64,
            ForwardAtol = 1e-5, ForwardRtol = 1e-4, GradAtol = 5e-4, GradRtol = 2e-3,
        };
    }

    private static double[] Reference(double[][] x, ConvGeometry geo, bool bias, bool relu)
    {
        var y = new double[geo.YLength];
        ConvReference.Forward<double>(y, x[0], x[1], bias ? x[2] : [], geo, relu);
        return y;
    }

    [TestCaseSource(nameof(Cases2d))]
    public void Conv2d(Case2d c) => Check2d(c, fused: false, relu: false).Run();

    [Test]
    public void FusedConv2dBiasRelu([Values] bool relu)
    {
        // Biases spread around 0 so that ReLU cuts a good share of the outputs (the mask's gradient is checked too).
        Check2d(new Case2d(2, 6, 8, 7, 7, 3, 3, 1, 1, 1, 1), fused: true, relu: relu).Run();
    }

    public sealed record Case3d(int N, int Cin, int Cout, (int d, int h, int w) Input, (int d, int h, int w) K,
        (int d, int h, int w) S, (int d, int h, int w) P, bool Bias = true, bool Small = true)
    {
        public override string ToString() => $"x[{N},{Cin},{Input}] w[{Cout},{Cin},{K}] s{S} p{P}{(Bias ? "" : " nobias")}";
    }

    private static readonly Case3d[] All3d =
    [
        new(2, 4, 5, (5, 6, 7), (3, 3, 3), (1, 1, 1), (1, 1, 1)),
        new(1, 3, 4, (7, 7, 7), (3, 3, 3), (2, 1, 2), (1, 0, 1), Bias: false),
        new(2, 5, 3, (3, 4, 5), (1, 1, 1), (1, 1, 1), (0, 0, 0)),   // pointwise
        new(1, 16, 4, (3, 9, 9), (3, 3, 3), (1, 1, 1), (1, 1, 1), Small: false),
        new(1, 3, 4, (4, 28, 28), (3, 7, 7), (1, 2, 2), (1, 3, 3), Small: false), // a 3-d stem
    ];

    private static IEnumerable<Case3d> Cases3d => TDevice.Small ? All3d.Where(c => c.Small) : All3d;

    [TestCaseSource(nameof(Cases3d))]
    public void Conv3d(Case3d c)
    {
        var geo = ConvGeometry.Create(c.N, c.Cin, c.Cout, 1, c.Input, c.K, c.S, c.P, (1, 1, 1));
        int[] xs = [c.N, c.Cin, c.Input.d, c.Input.h, c.Input.w], ws = [c.Cout, c.Cin, c.K.d, c.K.h, c.K.w];
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "conv3d " + c,
            Shapes = c.Bias ? [xs, ws, [c.Cout]] : [xs, ws],
            Op = t => Tensor.Conv3d(t[0], t[1], c.Bias ? t[2] : null, c.S, c.P),
            Reference = x => Reference(x, geo, c.Bias, false),
            MaxGradChecks = 64,
            GradAtol = 5e-4, GradRtol = 2e-3,
        }.Run();
    }

    [Test]
    public void OutputShapesFollowPyTorch()
    {
        using var scope = new TensorScope();
        // The stem's 7×7/2, padding 3 on an odd size: ⌊(23 + 6 − 6 − 1) / 2⌋ + 1 = 12; dilation 2: ⌊(23 + 2 − 4 − 1) / 1⌋ + 1 = 21.
        var x = Tensor.Zeros([2, 1, 23, 23], TDevice.Device);
        Assert.That(Tensor.Conv2d(x, Tensor.Zeros([2, 1, 7, 7], TDevice.Device), null, 2, 2, 3, 3).Shape, Is.EqualTo(new[] { 2, 2, 12, 12 }));
        Assert.That(Tensor.Conv2d(x, Tensor.Zeros([2, 1, 3, 3], TDevice.Device), null, 1, 1, 1, 1, 2, 2).Shape, Is.EqualTo(new[] { 2, 2, 21, 21 }));
        var x3 = Tensor.Zeros([1, 2, 4, 14, 14], TDevice.Device);
        var w3 = Tensor.Zeros([4, 2, 3, 3, 3], TDevice.Device);
        Assert.That(Tensor.Conv3d(x3, w3, null, (1, 2, 2), (1, 1, 1)).Shape, Is.EqualTo(new[] { 1, 4, 4, 7, 7 }));
    }

    [Test]
    public void BadShapesGiveOneLineErrors()
    {
        using var scope = new TensorScope();
        var x = Tensor.Zeros([1, 6, 5, 5], TDevice.Device);
        void Fails(TestDelegate d, string part)
        {
            var e = Assert.Throws<ShapeException>(d)!;
            Assert.That(e.Message, Does.Contain(part).And.Not.Contain("\n"));
        }
        Fails(() => Tensor.Conv2d(x, Tensor.Zeros([4, 5, 3, 3], TDevice.Device), null, 1, 1, 1, 1), "groups");
        Fails(() => Tensor.Conv2d(x, Tensor.Zeros([4, 3, 3, 3], TDevice.Device), null, 1, 1, 1, 1, groups: 4), "groups");
        Fails(() => Tensor.Conv2d(x, Tensor.Zeros([4, 6, 7, 7], TDevice.Device), null, 1, 1, 0, 0), "kernel is larger");
        Fails(() => Tensor.Conv2d(x, Tensor.Zeros([4, 6, 3, 3], TDevice.Device), Tensor.Zeros([5], TDevice.Device), 1, 1, 1, 1), "bias");
        Fails(() => Tensor.Conv2d(x, Tensor.Zeros([4, 6, 3, 3], TDevice.Device), null, 0, 1, 1, 1), "stride");
        Fails(() => Tensor.Conv2d(Tensor.Zeros([6, 5, 5], TDevice.Device), Tensor.Zeros([4, 6, 3, 3], TDevice.Device), null, 1, 1, 1, 1), "[N, Cin, H, W]");
        Fails(() => Tensor.Conv3d(x, Tensor.Zeros([4, 6, 3, 3], TDevice.Device), null, (1, 1, 1), (0, 0, 0)), "[N, Cin, D, H, W]");
    }
}
