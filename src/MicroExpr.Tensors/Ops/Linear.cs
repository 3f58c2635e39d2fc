namespace MicroExpr.Tensors;

/// <summary>The fused affine maps of Linear layers.</summary>
public sealed partial class Tensor
{
    /// <summary>
    /// y = x·Wᵀ + b over the last axis: x [..., in], W [out, in] (PyTorch layout), b [out] or null → y [..., out].
    /// One op instead of matmul + add: the bias is written into y first and the GEMM accumulates onto it (beta = 1),
    /// so the step keeps one [rows, out] buffer instead of two and makes one pass less over it.
    /// Backward: dx = g·W, dW = gᵀ·x, db = Σ_rows g.
    /// </summary>
    public static Tensor Linear(Tensor x, Tensor w, Tensor? b) => AffineOp("linear", x, w, b, gelu: false);

    /// <summary>
    /// y = GELU(h)·Wᵀ + b: the second half of a transformer MLP as one op that keeps only h. GELU(h) lives in a
    /// temporary buffer during the forward and is recomputed in the backward (dW = gᵀ·GELU(h),
    /// dh = (g·W) ∘ GELU'(h)), so the step stores one [rows, hidden] activation per block instead of two — the
    /// largest activations of the model — for one extra GELU pass.
    /// </summary>
    public static Tensor GeluLinear(Tensor h, Tensor w, Tensor? b) => AffineOp("gelu_linear", h, w, b, gelu: true);

    private static Tensor AffineOp(string op, Tensor x, Tensor w, Tensor? b, bool gelu)
    {
        x.ThrowIfDisposed();
        w.ThrowIfDisposed();
        if (w.Rank != 2 || x.Rank < 1 || x.Shape[^1] != w.Shape[1])
            throw new ShapeException($"{op}: input {ShapeUtil.Format(x.Shape)} and weight {ShapeUtil.Format(w.Shape)} do not fit (expected x [..., in], W [out, in])");
        int inF = w.Shape[1], outF = w.Shape[0], rows = x.Numel / Math.Max(inF, 1);
        if (b != null && (b.Rank != 1 || b.Shape[0] != outF))
            throw new ShapeException($"{op}: bias {ShapeUtil.Format(b.Shape)} does not fit weight {ShapeUtil.Format(w.Shape)} (expected [{outF}])");
        if (x.Device != w.Device || (b != null && b.Device != w.Device))
            throw new ArgumentException($"{op}: operands on different devices ({x.Device}, {w.Device})");
        var be = x.Backend;
        var shape = x.Shape[..^1].Append(outF).ToArray();
        var y = x.NewLike(shape);
        // The GEMM's A operand: x itself, or GELU(x) in a buffer that is released right after.
        Storage Activation()
        {
            if (!gelu)
            {
                x.Storage.AddRef();
                return x.Storage;
            }
            var a = be.Allocate(x.Numel, zero: false);
            be.Unary(UnaryOp.Gelu, a, x.Storage, x.Numel, 0f);
            return a;
        }
        var act = Activation();
        if (b != null)
            be.CopyStrided(new View(y.Storage, 0, [outF, 1]), new View(b.Storage, 0, [0, 1]), [rows, outF], false);
        be.Gemm(1, y.Storage, 0, 0, act, 0, 0, false, w.Storage, 0, 0, true, rows, outF, inF, 1f, b != null ? 1f : 0f);
        act.Release();
        Tensor[] inputs = b is null ? [x, w] : [x, w, b];
        return Record(y, op, inputs, g =>
        {
            Tensor? dx = null, dw = null, db = null;
            if (x.NeedsGrad)
            {
                dx = x.NewLike(x.Shape);
                if (!gelu)
                {
                    be.Gemm(1, dx.Storage, 0, 0, g.Storage, 0, 0, false, w.Storage, 0, 0, false, rows, inF, outF, 1f, 0f);
                }
                else
                {
                    var da = be.Allocate(x.Numel, zero: false);
                    be.Gemm(1, da, 0, 0, g.Storage, 0, 0, false, w.Storage, 0, 0, false, rows, inF, outF, 1f, 0f);
                    be.UnaryBackward(UnaryOp.Gelu, dx.Storage, x.Storage, x.Storage, da, x.Numel, 0f);
                    da.Release();
                }
            }
            if (w.NeedsGrad)
            {
                dw = w.NewLike(w.Shape);
                var a = Activation();
                be.Gemm(1, dw.Storage, 0, 0, g.Storage, 0, 0, true, a, 0, 0, false, outF, inF, rows, 1f, 0f);
                a.Release();
            }
            if (b != null && b.NeedsGrad)
            {
                db = b.NewLike(b.Shape);
                be.SumTo(db.Storage, [1, outF], g.Storage, [rows, outF]);
            }
            return b is null ? [dx, dw] : [dx, dw, db];
        });
    }

    /// <summary>
    /// A strided window of this tensor copied into a new contiguous tensor: y[i…] = x[offset + Σ i_j·strides_j].
    /// One copy where a permute followed by a slice would make two (e.g. q, k, v of shape [B, H, N, D] straight out
    /// of a fused QKV projection [B, N, 3·C]; <see cref="SelfAttention"/> reads them in place and needs none).
    /// The window must not read an element twice (the backward scatters).
    /// </summary>
    public Tensor AsStrided(int[] shape, int[] strides, int offset)
    {
        ThrowIfDisposed();
        if (shape.Length != strides.Length) throw new ShapeException($"as_strided: shape {ShapeUtil.Format(shape)} and strides {ShapeUtil.Format(strides)} differ in rank");
        long last = offset;
        for (int i = 0; i < shape.Length; i++)
        {
            if (shape[i] <= 0 || strides[i] < 0) throw new ShapeException($"as_strided: shape {ShapeUtil.Format(shape)} / strides {ShapeUtil.Format(strides)} must be positive / non-negative");
            last += (long)(shape[i] - 1) * strides[i];
        }
        if (offset < 0 || last >= Numel) throw new ShapeException($"as_strided: the window {ShapeUtil.Format(shape)} at offset {offset} with strides {ShapeUtil.Format(strides)} reaches past {ShapeUtil.Format(Shape)}");
        var y = NewLike((int[])shape.Clone());
        var s = (int[])strides.Clone();
        Backend.CopyStrided(new View(y.Storage, 0, ShapeUtil.Strides(shape)), new View(Storage, offset, s), y.Shape, false);
        var x = this;
        return Record(y, "as_strided", [x], g =>
        {
            var dx = Zeros(x.Shape, x.Device);
            x.Backend.CopyStrided(new View(dx.Storage, offset, s), new View(g.Storage, 0, ShapeUtil.Strides(g.Shape)), g.Shape, true);
            return [dx];
        });
    }
}
