using MicroExpr.Kernels;

namespace MicroExpr.Tensors;

/// <summary>The convolutions' forwarding members, timed under <see cref="OpCost.Conv"/> and its backward kinds.</summary>
public sealed partial class ProfiledBackend
{
    public void Conv(Storage y, Storage x, Storage w, Storage? b, in ConvGeometry g, bool relu)
    {
        using (Time(OpCost.Conv(g))) Inner.Conv(y, x, w, b, g, relu);
    }

    public void ConvBackwardData(Storage dx, Storage dy, Storage w, in ConvGeometry g)
    {
        using (Time(OpCost.ConvBackwardData(g))) Inner.ConvBackwardData(dx, dy, w, g);
    }

    public void ConvBackwardWeight(Storage dw, Storage? db, Storage dy, Storage x, in ConvGeometry g)
    {
        using (Time(OpCost.ConvBackwardWeight(g, db != null))) Inner.ConvBackwardWeight(dw, db, dy, x, g);
    }
}
