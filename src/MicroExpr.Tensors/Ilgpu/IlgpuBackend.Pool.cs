using ILGPU;
using MicroExpr.Kernels;

namespace MicroExpr.Tensors.Ilgpu;

public sealed partial class IlgpuBackend
{
    private PoolIlgpu? pool;

    private PoolIlgpu PoolK => pool ??= new PoolIlgpu(Accelerator, KernelGrid.PreferredGroupSize(Accelerator));

    /// <summary>An int32 tensor's storage as int32 (the same 32-bit words).</summary>
    private static ArrayView<int> VI(Storage s) => V(s).Cast<int>();

    public void MaxPool(Storage y, Storage indices, Storage x, in PoolGeometry g)
    {
        PoolK.MaxPool(stream, V(y), VI(indices), V(x), g);
    }

    public void MaxPoolBackward(Storage dx, Storage dy, Storage indices, in PoolGeometry g)
    {
        PoolK.MaxPoolBackward(stream, V(dx), V(dy), VI(indices), g);
    }

    public void AvgPool(Storage y, Storage x, in PoolGeometry g)
    {
        PoolK.AvgPool(stream, V(y), V(x), g);
    }

    public void AvgPoolBackward(Storage dx, Storage dy, in PoolGeometry g)
    {
        PoolK.AvgPoolBackward(stream, V(dx), V(dy), g);
    }

    public void MaxUnpool(Storage y, Storage x, Storage indices, int planes, int m, int n)
    {
        PoolK.Scatter(stream, V(y), V(x), VI(indices), planes, m, n);
    }

    public void MaxUnpoolBackward(Storage dx, Storage dy, Storage indices, int planes, int m, int n)
    {
        PoolK.Gather(stream, V(dx), V(dy), VI(indices), planes, m, n);
    }
}
