namespace MicroExpr.Tensors;

/// <summary>The fused affine map of a Linear layer.</summary>
public sealed partial class Tensor
{
    /// <summary>
    /// y = x·Wᵀ + b over the last axis: x [..., in], W [out, in] (PyTorch layout), b [out] or null → y [..., out].
    /// One op instead of matmul + add: the bias is written into y first and the GEMM accumulates onto it (beta = 1),
    /// so the step keeps one [rows, out] buffer instead of two and makes one pass less over it.
    /// Backward: dx = g·W, dW = gᵀ·x, db = Σ_rows g.
    /// </summary>
    public static Tensor Linear(Tensor x, Tensor w, Tensor? b)
    {
        x.ThrowIfDisposed();
        w.ThrowIfDisposed();
        if (w.Rank != 2 || x.Rank < 1 || x.Shape[^1] != w.Shape[1])
            throw new ShapeException($"linear: input {ShapeUtil.Format(x.Shape)} and weight {ShapeUtil.Format(w.Shape)} do not fit (expected x [..., in], W [out, in])");
        int inF = w.Shape[1], outF = w.Shape[0], rows = x.Numel / Math.Max(inF, 1);
        if (b != null && (b.Rank != 1 || b.Shape[0] != outF))
            throw new ShapeException($"linear: bias {ShapeUtil.Format(b.Shape)} does not fit weight {ShapeUtil.Format(w.Shape)} (expected [{outF}])");
        if (x.Device != w.Device || (b != null && b.Device != w.Device))
            throw new ArgumentException($"linear: operands on different devices ({x.Device}, {w.Device})");
        var shape = x.Shape[..^1].Append(outF).ToArray();
        var y = x.NewLike(shape);
        var be = x.Backend;
        if (b != null)
            be.CopyStrided(new View(y.Storage, 0, [outF, 1]), new View(b.Storage, 0, [0, 1]), [rows, outF], false);
        be.Gemm(1, y.Storage, 0, 0, x.Storage, 0, 0, false, w.Storage, 0, 0, true, rows, outF, inF, 1f, b != null ? 1f : 0f);
        Tensor[] inputs = b is null ? [x, w] : [x, w, b];
        return Record(y, "linear", inputs, g =>
        {
            Tensor? dx = null, dw = null, db = null;
            if (x.NeedsGrad)
            {
                dx = x.NewLike(x.Shape);
                be.Gemm(1, dx.Storage, 0, 0, g.Storage, 0, 0, false, w.Storage, 0, 0, false, rows, inF, outF, 1f, 0f);
            }
            if (w.NeedsGrad)
            {
                dw = w.NewLike(w.Shape);
                be.Gemm(1, dw.Storage, 0, 0, g.Storage, 0, 0, true, x.Storage, 0, 0, false, outF, inF, rows, 1f, 0f);
            }
            if (b != null && b.NeedsGrad)
            {
                db = b.NewLike(b.Shape);
                be.SumTo(db.Storage, [1, outF], g.Storage, [rows, outF]);
            }
            return b is null ? [dx, dw] : [dx, dw, db];
        });
    }
}
