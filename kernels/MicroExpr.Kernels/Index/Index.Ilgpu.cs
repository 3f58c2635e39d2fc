using ILGPU;
using ILGPU.Runtime;

namespace MicroExpr.Kernels;

/// <summary>Sizes of a gather/scatter over the middle axis of [outer, len, inner] with m indices.</summary>
public struct IndexArgs
{
    public int Outer;
    public int Len;
    public int Inner;
    public int M;
}

/// <summary>
/// Gather and scatter-add along one axis, indices uploaded by the host.
/// <list type="bullet">
/// <item>IndexSelect: y[outer, m, inner] = x[outer, idx[j], inner]; one thread per y element.</item>
/// <item>IndexAdd: dx[outer, len, inner] += dy[outer, m, inner] scattered at idx. Indices may repeat, so
///   instead of atomics (order-dependent float sums) the host inverts idx into CSR form
///   (<see cref="BuildCsr"/>: starts[len + 1], then the j's of each target row in increasing order) and one
///   thread per dx element sums its sources in a fixed order: deterministic, O(outer·(len + m)·inner) work.</item>
/// </list>
/// </summary>
public sealed class IndexKernels
{
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<int>, IndexArgs> select;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<int>, IndexArgs> add;

    public IndexKernels(Accelerator accelerator, int groupSize = KernelGrid.DefaultGroupSize)
    {
        Accelerator = accelerator;
        GroupSize = KernelGrid.Resolve(accelerator, groupSize);
        MaxGroups = KernelGrid.MaxGroups(accelerator);
        select = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<int>, IndexArgs>(IndexSelectKernel);
        add = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<int>, IndexArgs>(IndexAddKernel);
    }

    public Accelerator Accelerator { get; }
    public int GroupSize { get; }

    /// <summary>Groups per launch at most; the kernels loop grid-stride over the rest.</summary>
    public int MaxGroups { get; }

    /// <summary>The CSR inverse of <paramref name="indices"/> (all in [0, len)): starts[len + 1] then the j's grouped by target.</summary>
    public static int[] BuildCsr(ReadOnlySpan<int> indices, int len)
    {
        var csr = new int[len + 1 + indices.Length];
        foreach (int l in indices) csr[l + 1]++;
        for (int l = 0; l < len; l++) csr[l + 1] += csr[l];
        var next = new int[len];
        for (int j = 0; j < indices.Length; j++)
        {
            int l = indices[j];
            csr[len + 1 + csr[l] + next[l]++] = j;
        }
        return csr;
    }

    /// <summary>y[outer, m, inner] = x[outer, idx[j], inner]; idx is the device copy of the m indices.</summary>
    public void IndexSelect(AcceleratorStream stream, ArrayView<float> y, ArrayView<float> x, ArrayView<int> idx, int m, int outer, int len, int inner)
    {
        int n = outer * m * inner;
        if (n > 0) select(stream, KernelGrid.For(n, GroupSize, MaxGroups), y, x, idx, new IndexArgs { Outer = outer, Len = len, Inner = inner, M = m });
    }

    /// <summary>dx[outer, len, inner] += dy[outer, m, inner] at idx; csr is the device copy of <see cref="BuildCsr"/>.</summary>
    public void IndexAdd(AcceleratorStream stream, ArrayView<float> dx, ArrayView<float> dy, ArrayView<int> csr, int m, int outer, int len, int inner)
    {
        int n = outer * len * inner;
        if (n > 0 && m > 0) add(stream, KernelGrid.For(n, GroupSize, MaxGroups), dx, dy, csr, new IndexArgs { Outer = outer, Len = len, Inner = inner, M = m });
    }

    internal static void IndexSelectKernel(ArrayView<float> y, ArrayView<float> x, ArrayView<int> idx, IndexArgs a)
    {
        int gridStride = KernelGrid.Stride;
        for (int e = Grid.GlobalIndex.X; e < a.Outer * a.M * a.Inner; e += gridStride)
        {
            int i = e % a.Inner, rest = e / a.Inner;
            int j = rest % a.M, o = rest / a.M;
            y[e] = x[(o * a.Len + idx[j]) * a.Inner + i];
        }
    }

    internal static void IndexAddKernel(ArrayView<float> dx, ArrayView<float> dy, ArrayView<int> csr, IndexArgs a)
    {
        int gridStride = KernelGrid.Stride;
        for (int e = Grid.GlobalIndex.X; e < a.Outer * a.Len * a.Inner; e += gridStride)
        {
            int i = e % a.Inner, rest = e / a.Inner;
            int l = rest % a.Len, o = rest / a.Len;
            int start = csr[l], end = csr[l + 1];
            if (start == end) continue;
            float sum = dx[e];
            for (int k = start; k < end; k++)
                sum += dy[(o * a.M + csr[a.Len + 1 + k]) * a.Inner + i];
            dx[e] = sum;
        }
    }
}
