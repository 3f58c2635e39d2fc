using ILGPU;
using ILGPU.Runtime;

namespace MicroExpr.Kernels;

/// <summary>Fused LayerNorm on an ILGPU accelerator. (Placeholder: implemented by the ILGPU kernel work.)</summary>
public sealed class LayerNormKernels
{
    public LayerNormKernels(Accelerator accelerator) => Accelerator = accelerator;

    public Accelerator Accelerator { get; }

    public void Forward(AcceleratorStream stream, ArrayView<float> y, ArrayView<float> mean, ArrayView<float> rstd, ArrayView<float> x,
        ArrayView<float> gamma, ArrayView<float> beta, int rows, int c, float eps) => throw new NotImplementedException();

    /// <summary>dx, dgamma, dbeta overwritten.</summary>
    public void Backward(AcceleratorStream stream, ArrayView<float> dx, ArrayView<float> dgamma, ArrayView<float> dbeta, ArrayView<float> dy,
        ArrayView<float> x, ArrayView<float> mean, ArrayView<float> rstd, ArrayView<float> gamma, int rows, int c)
        => throw new NotImplementedException();
}
