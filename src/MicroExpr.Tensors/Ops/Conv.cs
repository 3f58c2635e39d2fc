using MicroExpr.Kernels;

namespace MicroExpr.Tensors;

/// <summary>
/// The convolutions through the tape (PyTorch's <c>conv2d</c> / <c>conv3d</c>: cross-correlation, zero padding, NCHW /
/// NCDHW): the geometry is <see cref="ConvGeometry"/>, the work <see cref="IBackend.Conv"/>,
/// <see cref="IBackend.ConvBackwardData"/> and <see cref="IBackend.ConvBackwardWeight"/>.
/// </summary>
public sealed partial class Tensor
{
    /// <summary>
    /// y [N, Cout, Ho, Wo] = conv2d(x [N, Cin, H, W], w [Cout, Cin/groups, kh, kw]) + b [Cout] (b may be null), with
    /// Ho = ⌊(H + 2·padH − dilationH·(kh − 1) − 1) / strideH⌋ + 1 (likewise Wo). groups = Cin = Cout is depthwise.
    /// Backward: dx, dw and db (each only when wanted).
    /// </summary>
    public static Tensor Conv2d(Tensor x, Tensor w, Tensor? bias, int strideH, int strideW, int padH, int padW,
        int dilationH = 1, int dilationW = 1, int groups = 1) =>
        ConvOp("conv2d", x, w, bias, Geometry2d("conv2d", x, w, strideH, strideW, padH, padW, dilationH, dilationW, groups), relu: false);

    /// <summary>
    /// y [N, Cout, Do, Ho, Wo] = conv3d(x [N, Cin, D, H, W], w [Cout, Cin, kd, kh, kw]) + b [Cout] (b may be null).
    /// </summary>
    public static Tensor Conv3d(Tensor x, Tensor w, Tensor? bias, (int d, int h, int w) stride, (int d, int h, int w) padding) =>
        Conv3d(x, w, bias, stride, padding, (1, 1, 1), 1);

    /// <summary>conv3d with dilation and groups (w [Cout, Cin/groups, kd, kh, kw]).</summary>
    public static Tensor Conv3d(Tensor x, Tensor w, Tensor? bias, (int d, int h, int w) stride, (int d, int h, int w) padding,
        (int d, int h, int w) dilation, int groups) =>
        ConvOp("conv3d", x, w, bias, Geometry3d("conv3d", x, w, stride, padding, dilation, groups), relu: false);

    /// <summary>
    /// Inference's fused conv + BatchNorm (+ ReLU): y = f(conv2d(x, w') + b'), where the caller has folded the BatchNorm
    /// into the weight and bias (w' = w·γ/√(σ² + ε) per output channel, b' = (b − μ)·γ/√(σ² + ε) + β) and f = ReLU when
    /// <paramref name="relu"/>. One pass: bias and ReLU are applied to each output tile as it is finished. Differentiable
    /// like <see cref="Conv2d"/> (the ReLU's mask is taken from y).
    /// </summary>
    public static Tensor FusedConv2d(Tensor x, Tensor w, Tensor bias, bool relu, int strideH, int strideW, int padH, int padW,
        int dilationH = 1, int dilationW = 1, int groups = 1) =>
        ConvOp(relu ? "conv2d_bias_relu" : "conv2d_bias", x, w, bias,
            Geometry2d("conv2d", x, w, strideH, strideW, padH, padW, dilationH, dilationW, groups), relu);

    /// <summary>The 3-d counterpart of <see cref="FusedConv2d"/>.</summary>
    public static Tensor FusedConv3d(Tensor x, Tensor w, Tensor bias, bool relu, (int d, int h, int w) stride,
        (int d, int h, int w) padding) =>
        ConvOp(relu ? "conv3d_bias_relu" : "conv3d_bias", x, w, bias,
            Geometry3d("conv3d", x, w, stride, padding, (1, 1, 1), 1), relu);

    private static ConvGeometry Geometry2d(string op, Tensor x, Tensor w, int sh, int sw, int ph, int pw, int dh, int dw, int groups)
    {
        x.ThrowIfDisposed();
        w.ThrowIfDisposed();
        if (x.Rank != 4 || w.Rank != 4)
            throw new ShapeException($"{op}: expected x [N, Cin, H, W] and w [Cout, Cin/groups, kh, kw]; got x {ShapeUtil.Format(x.Shape)}, w {ShapeUtil.Format(w.Shape)}");
        var s = x.Shape;
        return MakeGeometry(op, x, w, groups, () => ConvGeometry.Create2d(s[0], s[1], w.Shape[0], groups, s[2], s[3], w.Shape[2], w.Shape[3], sh, sw, ph, pw, dh, dw));
    }

    private static ConvGeometry Geometry3d(string op, Tensor x, Tensor w, (int d, int h, int w) stride, (int d, int h, int w) padding,
        (int d, int h, int w) dilation, int groups)
    {
        x.ThrowIfDisposed();
        w.ThrowIfDisposed();
        if (x.Rank != 5 || w.Rank != 5)
            throw new ShapeException($"{op}: expected x [N, Cin, D, H, W] and w [Cout, Cin/groups, kd, kh, kw]; got x {ShapeUtil.Format(x.Shape)}, w {ShapeUtil.Format(w.Shape)}");
        var s = x.Shape;
        return MakeGeometry(op, x, w, groups, () => ConvGeometry.Create(s[0], s[1], w.Shape[0], groups, (s[2], s[3], s[4]),
            (w.Shape[2], w.Shape[3], w.Shape[4]), stride, padding, dilation));
    }

    private static ConvGeometry MakeGeometry(string op, Tensor x, Tensor w, int groups, Func<ConvGeometry> create)
    {
        if (groups < 1 || x.Shape[1] % groups != 0 || w.Shape[0] % groups != 0 || w.Shape[1] * groups != x.Shape[1])
            throw new ShapeException($"{op}: x {ShapeUtil.Format(x.Shape)} and w {ShapeUtil.Format(w.Shape)} do not fit groups = {groups} (expected w [Cout, Cin/groups, ...] with groups dividing Cin and Cout)");
        if (x.Device != w.Device)
            throw new ArgumentException($"{op}: x on {x.Device}, w on {w.Device}");
        try
        {
            return create();
        }
        catch (ArgumentException e) when (e is not ShapeException)
        {
            throw new ShapeException($"{op}: x {ShapeUtil.Format(x.Shape)}, w {ShapeUtil.Format(w.Shape)}: {e.Message}");
        }
    }

    private static Tensor ConvOp(string op, Tensor x, Tensor w, Tensor? b, ConvGeometry geo, bool relu)
    {
        if (b != null)
        {
            b.ThrowIfDisposed();
            if (b.Rank != 1 || b.Shape[0] != geo.Cout)
                throw new ShapeException($"{op}: bias {ShapeUtil.Format(b.Shape)} does not fit weight {ShapeUtil.Format(w.Shape)} (expected [{geo.Cout}])");
            if (b.Device != w.Device) throw new ArgumentException($"{op}: bias on {b.Device}, w on {w.Device}");
        }
        var be = x.Backend;
        int[] shape = geo.D == 1 && x.Rank == 4 ? [geo.N, geo.Cout, geo.Ho, geo.Wo] : [geo.N, geo.Cout, geo.Do, geo.Ho, geo.Wo];
        var y = x.NewLike(shape);
        be.Conv(y.Storage, x.Storage, w.Storage, b?.Storage, geo, relu);
        Tensor[] inputs = b is null ? [x, w] : [x, w, b];
        return Record(y, op, inputs, g =>
        {
            Storage gy = g.Storage;
            Storage? masked = null;
            if (relu)
            {
                // ReLU'(pre) from y: y > 0 exactly where the pre-activation is.
                masked = be.Allocate(y.Numel, zero: false);
                be.UnaryBackward(UnaryOp.Relu, masked, y.Storage, y.Storage, g.Storage, y.Numel, 0f);
                gy = masked;
            }
            Tensor? dx = null, dw = null, db = null;
            if (x.NeedsGrad)
            {
                dx = x.NewLike(x.Shape);
                be.ConvBackwardData(dx.Storage, gy, w.Storage, geo);
            }
            bool wantB = b != null && b.NeedsGrad;
            if (w.NeedsGrad || wantB)
            {
                dw = w.NewLike(w.Shape);
                if (wantB) db = b!.NewLike(b.Shape);
                be.ConvBackwardWeight(dw.Storage, db?.Storage, gy, x.Storage, geo);
                if (!w.NeedsGrad) dw = DisposeNull(dw);
            }
            masked?.Release();
            return b is null ? [dx, dw] : [dx, dw, db];
        });
    }
}
