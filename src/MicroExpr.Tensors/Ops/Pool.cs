using MicroExpr.Kernels;

namespace MicroExpr.Tensors;

/// <summary>
/// Pooling, unpooling, upsampling and stochastic depth through the tape, in PyTorch's semantics over NCHW / NCDHW
/// (kernels: MicroExpr.Kernels' <c>Pool/</c>). Kernel, stride and padding are (d, h, w) or (h, w) per axis; a stride of 0
/// means the kernel size (PyTorch's default).
/// </summary>
public sealed partial class Tensor
{
    private PoolGeometry Geometry(string op, int spatial, int[] k, int[] s, int[] p, bool ceil)
    {
        ThrowIfDisposed();
        RequireFloat(op);
        if (Rank != spatial + 2)
            throw new ShapeException($"{op}: input {ShapeUtil.Format(Shape)} must be {(spatial == 2 ? "[N, C, H, W]" : "[N, C, D, H, W]")}");
        if (k.Length != spatial || s.Length != spatial || p.Length != spatial)
            throw new ArgumentException($"{op}: kernel, stride and padding need {spatial} values each");
        int[] k3 = spatial == 2 ? [1, k[0], k[1]] : k, p3 = spatial == 2 ? [0, p[0], p[1]] : p;
        int[] s3 = spatial == 2 ? [1, s[0], s[1]] : s;
        for (int i = 0; i < 3; i++) if (s3[i] == 0) s3[i] = k3[i];
        int[] in3 = spatial == 2 ? [1, Shape[2], Shape[3]] : [Shape[2], Shape[3], Shape[4]];
        var o = new int[3];
        for (int i = 0; i < 3; i++) o[i] = PoolGeometry.OutputSize(in3[i], k3[i], s3[i], p3[i], ceil, op);
        return new PoolGeometry
        {
            Planes = Shape[0] * Shape[1], D = in3[0], H = in3[1], W = in3[2], Do = o[0], Ho = o[1], Wo = o[2],
            Kd = k3[0], Kh = k3[1], Kw = k3[2], Sd = s3[0], Sh = s3[1], Sw = s3[2], Pd = p3[0], Ph = p3[1], Pw = p3[2],
        };
    }

    private int[] PooledShape(in PoolGeometry g) =>
        Rank == 4 ? [Shape[0], Shape[1], g.Ho, g.Wo] : [Shape[0], Shape[1], g.Do, g.Ho, g.Wo];

    private (Tensor Values, Tensor Indices) MaxPool(string op, in PoolGeometry g)
    {
        var geo = g;
        var shape = PooledShape(g);
        var y = NewLike(shape);
        var idx = EmptyInt32(shape, Backend);
        Backend.MaxPool(y.Storage, idx.Storage, Storage, geo);
        var x = this;
        var rec = Record(y, op, [x, idx], gy =>
        {
            var dx = x.NewLike(x.Shape);
            x.Backend.MaxPoolBackward(dx.Storage, gy.Storage, idx.Storage, geo);
            return [dx, null];
        });
        return (rec, idx);
    }

    /// <summary>Max pooling over H, W: values [N, C, Ho, Wo] and the int32 flat index h·W + w of each maximum in its plane.</summary>
    public (Tensor Values, Tensor Indices) MaxPool2dWithIndices(int kernel, int stride = 0, int padding = 0, bool ceilMode = false) =>
        MaxPool("maxpool2d", Geometry("maxpool2d", 2, [kernel, kernel], [stride, stride], [padding, padding], ceilMode));

    /// <summary>Max pooling over H, W (PyTorch's nn.MaxPool2d): [N, C, H, W] → [N, C, Ho, Wo].</summary>
    public Tensor MaxPool2d(int kernel, int stride = 0, int padding = 0, bool ceilMode = false) =>
        MaxPool2dWithIndices(kernel, stride, padding, ceilMode).Values;

    /// <summary>Max pooling over D, H, W with per-axis (d, h, w) kernel, stride, padding; indices are d·H·W + h·W + w.</summary>
    public (Tensor Values, Tensor Indices) MaxPool3dWithIndices((int D, int H, int W) kernel, (int D, int H, int W) stride,
        (int D, int H, int W) padding, bool ceilMode = false) =>
        MaxPool("maxpool3d", Geometry("maxpool3d", 3, [kernel.D, kernel.H, kernel.W], [stride.D, stride.H, stride.W],
            [padding.D, padding.H, padding.W], ceilMode));

    public Tensor MaxPool3d((int D, int H, int W) kernel, (int D, int H, int W) stride, (int D, int H, int W) padding, bool ceilMode = false) =>
        MaxPool3dWithIndices(kernel, stride, padding, ceilMode).Values;

    private Tensor AvgPool(string op, PoolGeometry g)
    {
        var y = NewLike(PooledShape(g));
        Backend.AvgPool(y.Storage, Storage, g);
        var x = this;
        return Record(y, op, [x], gy =>
        {
            var dx = x.NewLike(x.Shape);
            x.Backend.AvgPoolBackward(dx.Storage, gy.Storage, g);
            return [dx];
        });
    }

    /// <summary>Average pooling over H, W (nn.AvgPool2d): count_include_pad divides by the padded window's size.</summary>
    public Tensor AvgPool2d(int kernel, int stride = 0, int padding = 0, bool ceilMode = false, bool countIncludePad = true)
    {
        var g = Geometry("avgpool2d", 2, [kernel, kernel], [stride, stride], [padding, padding], ceilMode);
        g.CountIncludePad = countIncludePad ? 1 : 0;
        return AvgPool("avgpool2d", g);
    }

    /// <summary>Average pooling over D, H, W (nn.AvgPool3d).</summary>
    public Tensor AvgPool3d((int D, int H, int W) kernel, (int D, int H, int W) stride, (int D, int H, int W) padding, bool ceilMode = false,
        bool countIncludePad = true)
    {
        var g = Geometry("avgpool3d", 3, [kernel.D, kernel.H, kernel.W], [stride.D, stride.H, stride.W], [padding.D, padding.H, padding.W], ceilMode);
        g.CountIncludePad = countIncludePad ? 1 : 0;
        return AvgPool("avgpool3d", g);
    }

    /// <summary>Adaptive average pooling (nn.AdaptiveAvgPool2d): output o covers [⌊o·H/Ho⌋, ⌈(o + 1)·H/Ho⌉).</summary>
    public Tensor AdaptiveAvgPool2d(int outH, int outW) => AdaptiveAvgPool("adaptive_avgpool2d", 2, [1, outH, outW]);

    /// <summary>Adaptive average pooling over D, H, W (nn.AdaptiveAvgPool3d).</summary>
    public Tensor AdaptiveAvgPool3d(int outD, int outH, int outW) => AdaptiveAvgPool("adaptive_avgpool3d", 3, [outD, outH, outW]);

    /// <summary>Global average pooling: [N, C, *] → [N, C], the mean over every spatial axis.</summary>
    public Tensor GlobalAvgPool()
    {
        ThrowIfDisposed();
        if (Rank < 3) throw new ShapeException($"global_avgpool: input {ShapeUtil.Format(Shape)} must be [N, C, ...]");
        int n = Shape[0], c = Shape[1];
        var flat = Reshape(n, c, 1, n * c == 0 ? 0 : Numel / (n * c));
        return flat.AdaptiveAvgPool2d(1, 1).Reshape(n, c);
    }

    private Tensor AdaptiveAvgPool(string op, int spatial, int[] out3)
    {
        ThrowIfDisposed();
        RequireFloat(op);
        if (Rank != spatial + 2) throw new ShapeException($"{op}: input {ShapeUtil.Format(Shape)} must have {spatial + 2} axes [N, C, ...]");
        int[] in3 = spatial == 2 ? [1, Shape[2], Shape[3]] : [Shape[2], Shape[3], Shape[4]];
        for (int i = 0; i < 3; i++)
            if (out3[i] < 1 || in3[i] < 1) throw new ArgumentException($"{op}: output size {out3[i]} and input size {in3[i]} must be ≥ 1");
        var g = new PoolGeometry
        {
            Planes = Shape[0] * Shape[1], D = in3[0], H = in3[1], W = in3[2], Do = out3[0], Ho = out3[1], Wo = out3[2],
            Kd = 1, Kh = 1, Kw = 1, Sd = 1, Sh = 1, Sw = 1, Adaptive = 1,
        };
        return AvgPool(op, g);
    }

    /// <summary>
    /// nn.MaxUnpool2d: x [N, C, Hi, Wi] and the int32 indices of <see cref="MaxPool2dWithIndices"/> → y [N, C, H, W], zero
    /// except y[n, c, idx] = x. The output size is (Hi − 1)·stride − 2·padding + kernel unless given.
    /// </summary>
    public static Tensor MaxUnpool2d(Tensor x, Tensor indices, int kernel, int stride = 0, int padding = 0, (int H, int W)? outputSize = null)
    {
        x.ThrowIfDisposed();
        indices.ThrowIfDisposed();
        x.RequireFloat("maxunpool2d");
        if (x.Rank != 4) throw new ShapeException($"maxunpool2d: input {ShapeUtil.Format(x.Shape)} must be [N, C, H, W]");
        if (indices.DType != DType.Int32 || !ShapeUtil.SameShape(indices.Shape, x.Shape))
            throw new ShapeException($"maxunpool2d: indices must be int32 {ShapeUtil.Format(x.Shape)}; got {indices.DType} {ShapeUtil.Format(indices.Shape)}");
        if (stride == 0) stride = kernel;
        int h = outputSize?.H ?? (x.Shape[2] - 1) * stride - 2 * padding + kernel;
        int w = outputSize?.W ?? (x.Shape[3] - 1) * stride - 2 * padding + kernel;
        if (h < 1 || w < 1) throw new ArgumentException($"maxunpool2d: output size {h}×{w} must be positive");
        int planes = x.Shape[0] * x.Shape[1], m = x.Shape[2] * x.Shape[3], n = h * w;
        var idx = indices.ToInt32Array();
        foreach (int i in idx)
            if (i < 0 || i >= n) throw new ArgumentException($"maxunpool2d: index {i} is outside the output plane {h}×{w}");
        var y = x.NewLike([x.Shape[0], x.Shape[1], h, w]);
        x.Backend.MaxUnpool(y.Storage, x.Storage, indices.Storage, planes, m, n);
        return Record(y, "maxunpool2d", [x, indices], g =>
        {
            var dx = x.NewLike(x.Shape);
            x.Backend.MaxUnpoolBackward(dx.Storage, g.Storage, indices.Storage, planes, m, n);
            return [dx, null];
        });
    }

    /// <summary>
    /// nn.Upsample over H, W of [N, C, H, W] to [N, C, outH, outW]. Nearest: source row ⌊o·H/outH⌋ (PyTorch's "nearest");
    /// bilinear with align_corners = false: source coordinate (o + ½)·H/outH − ½, clamped at 0, blended between its two
    /// neighbours (the last one repeated at the edge). Built from index_select (nearest) or two products with the
    /// [out, in] interpolation matrices (bilinear), so its backward is theirs.
    /// </summary>
    public Tensor Upsample(int outH, int outW, bool bilinear)
    {
        ThrowIfDisposed();
        RequireFloat("upsample");
        if (Rank != 4) throw new ShapeException($"upsample: input {ShapeUtil.Format(Shape)} must be [N, C, H, W]");
        if (outH < 1 || outW < 1) throw new ArgumentException($"upsample: output size {outH}×{outW} must be positive");
        int n = Shape[0], c = Shape[1], h = Shape[2], w = Shape[3];
        if (!bilinear)
        {
            int[] rows = Enumerable.Range(0, outH).Select(o => Math.Min((int)((long)o * h / outH), h - 1)).ToArray();
            int[] cols = Enumerable.Range(0, outW).Select(o => Math.Min((int)((long)o * w / outW), w - 1)).ToArray();
            return IndexSelect(2, rows).IndexSelect(3, cols);
        }
        var aw = FromSpan(BilinearMatrix(w, outW, transpose: true), [w, outW], Device);
        var ah = FromSpan(BilinearMatrix(h, outH, transpose: false), [outH, h], Device);
        var t = MatMul(this, aw);                                   // [N, C, H, outW]
        var y = MatMul(ah, t.Reshape(n * c, h, outW));             // [N·C, outH, outW]
        return y.Reshape(n, c, outH, outW);
    }

    /// <summary>Upsampling by an integer factor (nn.Upsample(scale_factor = f)).</summary>
    public Tensor Upsample(int scale, bool bilinear) => Upsample(Dim(2) * scale, Dim(3) * scale, bilinear);

    /// <summary>The [out, in] (or transposed [in, out]) linear-interpolation matrix of align_corners = false.</summary>
    private static float[] BilinearMatrix(int input, int output, bool transpose)
    {
        var a = new float[input * output];
        double scale = (double)input / output;
        for (int o = 0; o < output; o++)
        {
            double src = Math.Max(0.0, (o + 0.5) * scale - 0.5);
            int i0 = Math.Min((int)src, input - 1), i1 = Math.Min(i0 + 1, input - 1);
            double l = src - i0;
            void Add(int i, double v) => a[transpose ? i * output + o : o * input + i] += (float)v;
            Add(i0, 1 - l);
            Add(i1, l);
        }
        return a;
    }

    /// <summary>
    /// Stochastic depth (timm's drop_path): in training each sample (axis 0) is zeroed with probability p and the rest
    /// scaled by 1/(1 − p); the mask comes from the seeded generator, one draw per sample. Identity in eval or at p = 0.
    /// </summary>
    public Tensor DropPath(float p, Rng rng, bool training = true)
    {
        if (p < 0f || p >= 1f) throw new ArgumentOutOfRangeException(nameof(p), p, "drop path probability must be in [0, 1)");
        if (!training || p == 0f) return this;
        ThrowIfDisposed();
        if (Rank < 1) throw new ShapeException("drop_path: needs a batch axis");
        int b = Shape[0];
        var mask = new float[b];
        float keep = 1f / (1f - p);
        for (int i = 0; i < b; i++) mask[i] = rng.NextDouble() < p ? 0f : keep;
        var shape = new int[Rank];
        Array.Fill(shape, 1);
        shape[0] = b;
        return this * FromSpan(mask, shape, Device);
    }
}
