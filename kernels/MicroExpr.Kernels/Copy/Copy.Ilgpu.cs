using ILGPU;
using ILGPU.Runtime;

namespace MicroExpr.Kernels;

/// <summary>
/// Strided copy: dst[shape] (=|+=) src[shape], element i of the row-major shape at dstOffset + Σ idx·dstStride
/// and srcOffset + Σ idx·srcStride (rank ≤ 6 after merging; a src stride of 0 broadcasts). Covers
/// contiguous copy, permute, slice, expand and concat. One thread per element (v1): reads are gathered,
/// writes follow dst's strides. With accumulate the dst view must not map two elements to one address
/// (no 0 dst stride on an axis longer than 1), or threads would race.
/// </summary>
public sealed class CopyKernels
{
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, Strides6, int, int> copy;

    public CopyKernels(Accelerator accelerator, int groupSize = KernelGrid.DefaultGroupSize)
    {
        Accelerator = accelerator;
        GroupSize = KernelGrid.Resolve(accelerator, groupSize);
        MaxGroups = KernelGrid.MaxGroups(accelerator);
        copy = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, Strides6, int, int>(CopyKernel);
    }

    public Accelerator Accelerator { get; }
    public int GroupSize { get; }

    /// <summary>Groups per launch at most; the kernels loop grid-stride over the rest.</summary>
    public int MaxGroups { get; }

    /// <summary>dst and src are the storages' views from their offsets (callers pass <c>view.SubView(offset)</c>).</summary>
    public void Copy(AcceleratorStream stream, ArrayView<float> dst, int[] dstStrides, ArrayView<float> src, int[] srcStrides, int[] shape,
        bool accumulate)
    {
        int n = 1;
        foreach (int d in shape) n *= d;
        if (n == 0) return;
        if (accumulate)
            for (int i = 0; i < shape.Length; i++)
                if (shape[i] > 1 && dstStrides[i] == 0)
                    throw new ArgumentException("strided copy: an accumulating copy needs a dst view without 0 strides (threads would race)");
        var (ms, md, msrc) = StrideMerge.Merge(shape, dstStrides, srcStrides);
        copy(stream, KernelGrid.For(n, GroupSize, MaxGroups), dst, src, Strides6.Create(ms, md, msrc), n, accumulate ? 1 : 0);
    }

    internal static void CopyKernel(ArrayView<float> dst, ArrayView<float> src, Strides6 s, int n, int accumulate)
    {
        int gridStride = KernelGrid.Stride;
        for (int i = Grid.GlobalIndex.X; i < n; i += gridStride)
        {
            s.Offsets(i, out int d, out int o);
            float v = src[o];
            if (accumulate != 0) dst[d] += v;
            else dst[d] = v;
        }
    }
}
