namespace MicroExpr.Tensors;

/// <summary>Matrix products through the backend's GEMM.</summary>
public sealed partial class Tensor
{
    /// <summary>
    /// op(A)·op(B) over the last two axes, where op transposes when the flag is set:
    /// A [..., M, K] (or [..., K, M] with transA), B [..., K, N] (or [..., N, K] with transB).
    /// Leading (batch) axes must be equal, or one operand is 2-D and is shared by every batch entry.
    /// A batched A times a 2-D B (no transA) runs as one GEMM over all rows.
    /// </summary>
    public static Tensor MatMul(Tensor a, Tensor b, bool transA = false, bool transB = false)
    {
        a.ThrowIfDisposed();
        b.ThrowIfDisposed();
        if (a.Rank < 2 || b.Rank < 2)
            throw new ShapeException($"matmul: needs operands of rank ≥ 2; got {ShapeUtil.Format(a.Shape)} and {ShapeUtil.Format(b.Shape)}");
        if (a.Device != b.Device) throw new ArgumentException($"matmul: operands on different devices ({a.Device}, {b.Device})");
        if (b.Rank == 2 && a.Rank > 2 && !transA)
        {
            var flat = a.Reshape(-1, a.Shape[^1]);
            var y2 = MatMul(flat, b, false, transB);
            var outShape = a.Shape[..^1].Append(y2.Shape[1]).ToArray();
            return y2.Reshape(outShape);
        }
        int m = transA ? a.Shape[^1] : a.Shape[^2], ka = transA ? a.Shape[^2] : a.Shape[^1];
        int kb = transB ? b.Shape[^1] : b.Shape[^2], n = transB ? b.Shape[^2] : b.Shape[^1];
        string Desc() => $"{ShapeUtil.Format(a.Shape)}{(transA ? "ᵀ" : "")} · {ShapeUtil.Format(b.Shape)}{(transB ? "ᵀ" : "")}";
        if (ka != kb) throw new ShapeException($"matmul: inner dimensions differ ({ka} vs {kb}) in {Desc()}");
        var aBatch = a.Shape[..^2];
        var bBatch = b.Shape[..^2];
        int[] batchDims;
        long strideA = (long)a.Shape[^1] * a.Shape[^2], strideB = (long)b.Shape[^1] * b.Shape[^2];
        if (ShapeUtil.SameShape(aBatch, bBatch)) batchDims = aBatch;
        else if (bBatch.Length == 0) { batchDims = aBatch; strideB = 0; }
        else if (aBatch.Length == 0) { batchDims = bBatch; strideA = 0; }
        else throw new ShapeException($"matmul: batch axes differ in {Desc()}");
        int batch = ShapeUtil.Numel(batchDims);
        var shape = batchDims.Append(m).Append(n).ToArray();
        var c = a.NewLike(shape);
        a.Backend.Gemm(batch, c.Storage, 0, (long)m * n, a.Storage, 0, strideA, transA, b.Storage, 0, strideB, transB, m, n, ka, 1f, 0f);
        bool aShared = strideA == 0 && batch > 1, bShared = strideB == 0 && batch > 1;
        var batchAxes = Enumerable.Range(0, batchDims.Length).ToArray();
        return Record(c, "matmul", [a, b], g =>
        {
            Tensor? da = null, db = null;
            if (a.NeedsGrad)
            {
                var full = transA ? MatMul(b, g, transB, true) : MatMul(g, b, false, !transB);
                da = aShared ? SumAndDispose(full, batchAxes) : full;
            }
            if (b.NeedsGrad)
            {
                var full = transB ? MatMul(g, a, true, transA) : MatMul(a, g, !transA, false);
                db = bShared ? SumAndDispose(full, batchAxes) : full;
            }
            return [da, db];
        });
    }

    private static Tensor SumAndDispose(Tensor t, int[] axes)
    {
        var s = t.Sum(axes);
        t.Dispose();
        return s;
    }

    /// <summary>this · other (see <see cref="MatMul(Tensor, Tensor, bool, bool)"/>).</summary>
    public Tensor MatMul(Tensor other, bool transA = false, bool transB = false) => MatMul(this, other, transA, transB);
}
