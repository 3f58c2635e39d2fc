using ILGPU;
using ILGPU.Runtime;

namespace MicroExpr.Kernels;

/// <summary>Fused softmax / log-softmax over the last axis on an ILGPU accelerator. (Placeholder: implemented by the ILGPU kernel work.)</summary>
public sealed class SoftmaxKernels
{
    public SoftmaxKernels(Accelerator accelerator) => Accelerator = accelerator;

    public Accelerator Accelerator { get; }

    public void Forward(AcceleratorStream stream, ArrayView<float> y, ArrayView<float> x, int rows, int cols) => throw new NotImplementedException();
    public void Backward(AcceleratorStream stream, ArrayView<float> dx, ArrayView<float> y, ArrayView<float> dy, int rows, int cols) => throw new NotImplementedException();
    public void LogForward(AcceleratorStream stream, ArrayView<float> y, ArrayView<float> x, int rows, int cols) => throw new NotImplementedException();
    public void LogBackward(AcceleratorStream stream, ArrayView<float> dx, ArrayView<float> y, ArrayView<float> dy, int rows, int cols) => throw new NotImplementedException();
}
