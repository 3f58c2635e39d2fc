using MicroExpr.Kernels;

namespace MicroExpr.Tensors;

/// <summary>Pooling primitives over planes [P = N·C, D, H, W] (math, windows and versions in MicroExpr.Kernels' <c>Pool/</c>).</summary>
public partial interface IBackend
{
    /// <summary>y [P, Do, Ho, Wo] = window max, indices (int32, same shape) = its flat index in the input plane.</summary>
    void MaxPool(Storage y, Storage indices, Storage x, in PoolGeometry g);

    /// <summary>dx [P, D, H, W] (overwritten) = Σ of dy over the outputs whose index is that element.</summary>
    void MaxPoolBackward(Storage dx, Storage dy, Storage indices, in PoolGeometry g);

    /// <summary>y = window mean (kernel/stride/padding or adaptive windows, count_include_pad in g).</summary>
    void AvgPool(Storage y, Storage x, in PoolGeometry g);

    /// <summary>dx (overwritten) = Σ over covering windows of dy/divisor.</summary>
    void AvgPoolBackward(Storage dx, Storage dy, in PoolGeometry g);

    /// <summary>y [P, n] = 0, y[p, idx[p, j]] = x[p, j] for x, indices (int32) [P, m].</summary>
    void MaxUnpool(Storage y, Storage x, Storage indices, int planes, int m, int n);

    /// <summary>dx[p, j] = dy[p, idx[p, j]], dx, indices [P, m], dy [P, n].</summary>
    void MaxUnpoolBackward(Storage dx, Storage dy, Storage indices, int planes, int m, int n);
}
