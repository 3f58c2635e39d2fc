using ILGPU;
using ILGPU.Runtime;

namespace MicroExpr.Kernels;

/// <summary>
/// Fusions around a Linear layer's bias, x [R, C] (R = B·N rows), b [C]:
/// <list type="bullet">
/// <item>BiasGelu forward: y = GELU(x + b) (exact, erf), one thread per element: one read of x instead of
///   the two passes (add, then GELU) and no [R, C] intermediate.</item>
/// <item>BiasGelu backward: dx = dy·GELU'(x + b) (also the gradient of the pre-activation), then
///   dbias[C] = Σ_r dx with the leading-rows reduction of <see cref="ReduceKernels"/>.</item>
/// <item>BiasResidual forward: y = x + b + residual (the transformer block's "proj + bias + skip"); its backward
///   is dx = dresidual = dy and dbias = Σ_r dy (<see cref="BiasResidualBackward"/>).</item>
/// </list>
/// </summary>
public sealed class FusedBiasKernels
{
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int> biasGelu;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int> biasGeluBackward;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int> biasResidual;
    private readonly ReduceKernels reduce;

    public FusedBiasKernels(Accelerator accelerator, int groupSize = KernelGrid.DefaultGroupSize)
    {
        Accelerator = accelerator;
        GroupSize = KernelGrid.Resolve(accelerator, groupSize);
        MaxGroups = KernelGrid.MaxGroups(accelerator);
        biasGelu = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(BiasGeluKernel);
        biasGeluBackward = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(BiasGeluBackwardKernel);
        biasResidual = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(BiasResidualKernel);
        reduce = new ReduceKernels(accelerator, GroupSize);
    }

    public Accelerator Accelerator { get; }
    public int GroupSize { get; }

    /// <summary>Groups per launch at most; the kernels loop grid-stride over the rest.</summary>
    public int MaxGroups { get; }

    /// <summary>y[R, C] = GELU(x[R, C] + b[C]).</summary>
    public void BiasGelu(AcceleratorStream stream, ArrayView<float> y, ArrayView<float> x, ArrayView<float> b, int rows, int c)
    {
        int n = rows * c;
        if (n > 0) biasGelu(stream, KernelGrid.For(n, GroupSize, MaxGroups), y, x, b, rows, c);
    }

    /// <summary>dx[R, C] = dy·GELU'(x + b); dbias[C] = Σ_r dx (both overwritten).</summary>
    public void BiasGeluBackward(AcceleratorStream stream, ArrayView<float> dx, ArrayView<float> dbias, ArrayView<float> dy, ArrayView<float> x,
        ArrayView<float> b, int rows, int c)
    {
        int n = rows * c;
        if (n > 0) biasGeluBackward(stream, KernelGrid.For(n, GroupSize, MaxGroups), dx, dy, x, b, rows, c);
        reduce.SumLeading(stream, dbias, dx, rows, c);
    }

    /// <summary>y[R, C] = x[R, C] + b[C] + residual[R, C].</summary>
    public void BiasResidual(AcceleratorStream stream, ArrayView<float> y, ArrayView<float> x, ArrayView<float> b, ArrayView<float> residual,
        int rows, int c)
    {
        int n = rows * c;
        if (n > 0) biasResidual(stream, KernelGrid.For(n, GroupSize, MaxGroups), y, x, b, residual, rows, c);
    }

    /// <summary>dbias[C] = Σ_r dy[R, C]; the gradients of x and residual are dy itself.</summary>
    public void BiasResidualBackward(AcceleratorStream stream, ArrayView<float> dbias, ArrayView<float> dy, int rows, int c) =>
        reduce.SumLeading(stream, dbias, dy, rows, c);

    internal static void BiasGeluKernel(ArrayView<float> y, ArrayView<float> x, ArrayView<float> b, int rows, int c)
    {
        int gridStride = KernelGrid.Stride;
        for (int e = Grid.GlobalIndex.X; e < rows * c; e += gridStride)
        {
            y[e] = ElementwiseKernels.Gelu(x[e] + b[e % c]);
        }
    }

    internal static void BiasGeluBackwardKernel(ArrayView<float> dx, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> b, int rows, int c)
    {
        int gridStride = KernelGrid.Stride;
        for (int e = Grid.GlobalIndex.X; e < rows * c; e += gridStride)
        {
            dx[e] = dy[e] * ElementwiseKernels.GeluGrad(x[e] + b[e % c]);
        }
    }

    internal static void BiasResidualKernel(ArrayView<float> y, ArrayView<float> x, ArrayView<float> b, ArrayView<float> residual, int rows, int c)
    {
        int gridStride = KernelGrid.Stride;
        for (int e = Grid.GlobalIndex.X; e < rows * c; e += gridStride)
        {
            y[e] = x[e] + b[e % c] + residual[e];
        }
    }
}
