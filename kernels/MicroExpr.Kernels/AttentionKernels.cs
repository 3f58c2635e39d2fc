using ILGPU;
using ILGPU.Runtime;

namespace MicroExpr.Kernels;

/// <summary>Fused multi-head attention on an ILGPU accelerator. (Placeholder: implemented by the ILGPU kernel work.)</summary>
public sealed class AttentionKernels
{
    public AttentionKernels(Accelerator accelerator) => Accelerator = accelerator;

    public Accelerator Accelerator { get; }

    /// <summary>q [BH,Nq,D], k/v [BH,Nk,D] → o [BH,Nq,D], lse [BH,Nq].</summary>
    public void Forward(AcceleratorStream stream, ArrayView<float> o, ArrayView<float> lse, ArrayView<float> q, ArrayView<float> k,
        ArrayView<float> v, int bh, int nq, int nk, int d, float scale) => throw new NotImplementedException();

    /// <summary>dq, dk, dv overwritten.</summary>
    public void Backward(AcceleratorStream stream, ArrayView<float> dq, ArrayView<float> dk, ArrayView<float> dv, ArrayView<float> q,
        ArrayView<float> k, ArrayView<float> v, ArrayView<float> o, ArrayView<float> dO, ArrayView<float> lse, int bh, int nq, int nk,
        int d, float scale) => throw new NotImplementedException();
}
