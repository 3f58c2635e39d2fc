using ILGPU;
using MicroExpr.Kernels;

namespace MicroExpr.Tensors.Ilgpu;

/// <summary>The convolutions: <see cref="ConvKernels"/> (tiled implicit GEMM).</summary>
public sealed partial class IlgpuBackend
{
    private ConvKernels? conv;

    private ConvKernels ConvK => conv ??= new ConvKernels(Accelerator);

    public void Conv(Storage y, Storage x, Storage w, Storage? b, in ConvGeometry g, bool relu)
    {
        using var prof = timer.Measure(OpCost.Conv(g));
        ConvK.Forward(stream, V(y), V(x), V(w), b is null ? ArrayView<float>.Empty : V(b), g, relu);
    }

    public void ConvBackwardData(Storage dx, Storage dy, Storage w, in ConvGeometry g)
    {
        using var prof = timer.Measure(OpCost.ConvBackwardData(g));
        ConvK.BackwardData(stream, V(dx), V(dy), V(w), g);
    }

    public void ConvBackwardWeight(Storage dw, Storage? db, Storage dy, Storage x, in ConvGeometry g)
    {
        using var prof = timer.Measure(OpCost.ConvBackwardWeight(g, db != null));
        ConvK.BackwardWeight(stream, V(dw), db is null ? ArrayView<float>.Empty : V(db), V(dy), V(x), g);
    }
}
