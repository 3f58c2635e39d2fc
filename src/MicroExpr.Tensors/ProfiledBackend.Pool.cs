using MicroExpr.Kernels;

namespace MicroExpr.Tensors;

/// <summary>Pooling's forwarding members, timed under its <see cref="OpCost"/> kinds.</summary>
public sealed partial class ProfiledBackend
{
    public void MaxPool(Storage y, Storage indices, Storage x, in PoolGeometry g)
    {
        using (Time(OpCost.MaxPool(g))) Inner.MaxPool(y, indices, x, g);
    }

    public void MaxPoolBackward(Storage dx, Storage dy, Storage indices, in PoolGeometry g)
    {
        using (Time(OpCost.MaxPoolBackward(g))) Inner.MaxPoolBackward(dx, dy, indices, g);
    }

    public void AvgPool(Storage y, Storage x, in PoolGeometry g)
    {
        using (Time(OpCost.AvgPool(g))) Inner.AvgPool(y, x, g);
    }

    public void AvgPoolBackward(Storage dx, Storage dy, in PoolGeometry g)
    {
        using (Time(OpCost.AvgPoolBackward(g))) Inner.AvgPoolBackward(dx, dy, g);
    }

    public void MaxUnpool(Storage y, Storage x, Storage indices, int planes, int m, int n)
    {
        using (Time(OpCost.MaxUnpool(planes, m, n))) Inner.MaxUnpool(y, x, indices, planes, m, n);
    }

    public void MaxUnpoolBackward(Storage dx, Storage dy, Storage indices, int planes, int m, int n)
    {
        using (Time(OpCost.MaxUnpoolBackward(planes, m, n))) Inner.MaxUnpoolBackward(dx, dy, indices, planes, m, n);
    }
}
