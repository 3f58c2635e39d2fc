using ILGPU;
using ILGPU.Runtime;

namespace MicroExpr.Kernels;

/// <summary>Batched row-major GEMM on an ILGPU accelerator. (Placeholder: implemented by the ILGPU kernel work.)</summary>
public sealed class GemmKernels
{
    public GemmKernels(Accelerator accelerator) => Accelerator = accelerator;

    public Accelerator Accelerator { get; }

    /// <summary>C_i = alpha·op(A_i)·op(B_i) + beta·C_i for i &lt; batch; strides in elements (0 shares the operand); beta = 0 never reads C.</summary>
    public void Gemm(AcceleratorStream stream, ArrayView<float> c, long strideC, ArrayView<float> a, long strideA, bool transA,
        ArrayView<float> b, long strideB, bool transB, int batch, int m, int n, int k, float alpha, float beta)
        => throw new NotImplementedException();
}
