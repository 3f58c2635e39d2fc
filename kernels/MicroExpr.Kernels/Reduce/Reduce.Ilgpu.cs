using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace MicroExpr.Kernels;

/// <summary>Sizes of a generic SumTo: output elements and source elements summed into each.</summary>
public struct ReduceArgs
{
    public int NOut;
    public int NReduce;
}

/// <summary>
/// Reductions. Glossary: R rows, C columns of a row-major [R, C] block; outer/len/inner the
/// [outer, len, inner] view of an axis reduction.
/// <list type="bullet">
/// <item>SumTo v1 (generic): dst = Σ of src over the axes where dstShape is 1; one thread per dst element
///   walks the reduced axes (rank ≤ 6 kept and ≤ 6 reduced groups after merging).</item>
/// <item>SumLeading v2 (reduce leading rows, e.g. bias gradients): dst[C] = Σ_r src[R, C]; a group owns tiles of
///   32 columns (grid-stride over tiles), its G/32 row lanes stride over R (coalesced reads) and meet in a shared-memory tree.</item>
/// <item>SumTrailing v2 (reduce the last axis, e.g. a full sum): dst[R] = Σ_c src[R, C]; a group per row (grid-stride over rows),
///   threads stride over C and meet in a shared-memory tree. Rows shorter than 64 use v1.</item>
/// <item>MaxAxis: y[outer, inner] = max over len, argmax as float (first maximum; a NaN wins and stops the scan),
///   one thread per output. MaxAxisBackward: dx[outer, len, inner] = dy where j = argmax, else 0; one thread per dx element.</item>
/// <item>NonFinite: flag[0] = 1 if any of x[n] is NaN or ±Inf (every hit writes the same 1; flag zeroed by the caller).</item>
/// </list>
/// Every version is deterministic: the order of additions depends only on the shapes and the group size.
/// </summary>
public sealed class ReduceKernels
{
    private const int TileCols = 32;
    private const int MaxGroup = 1024;

    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, Strides6, Strides6, ReduceArgs> sumGeneric;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, int, int> sumLeading;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, int, int> sumTrailing;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int> maxAxis;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int> maxAxisBackward;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<int>, ArrayView<float>, int> nonFinite;

    public ReduceKernels(Accelerator accelerator, int groupSize = KernelGrid.DefaultGroupSize)
    {
        Accelerator = accelerator;
        GroupSize = KernelGrid.Resolve(accelerator, groupSize);
        MaxGroups = KernelGrid.MaxGroups(accelerator);
        sumGeneric = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, Strides6, Strides6, ReduceArgs>(SumGenericKernel);
        sumLeading = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, int, int>(SumLeadingKernel);
        sumTrailing = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, int, int>(SumTrailingKernel);
        maxAxis = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(MaxAxisKernel);
        maxAxisBackward = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(MaxAxisBackwardKernel);
        nonFinite = accelerator.LoadKernel<ArrayView<int>, ArrayView<float>, int>(NonFiniteKernel);
    }

    public Accelerator Accelerator { get; }
    public int GroupSize { get; }

    /// <summary>Groups per launch at most; the kernels loop grid-stride over the rest.</summary>
    public int MaxGroups { get; }

    /// <summary>Which version <see cref="SumTo"/> picked last (for tests): "generic", "leading" or "trailing".</summary>
    public string LastSumPath { get; private set; } = "";

    /// <summary>dst = Σ of src [srcShape] over the axes where dstShape (same rank) is 1; dst is overwritten.</summary>
    public void SumTo(AcceleratorStream stream, ArrayView<float> dst, int[] dstShape, ArrayView<float> src, int[] srcShape)
    {
        if (dstShape.Length != srcShape.Length) throw new ArgumentException("SumTo: dst and src ranks differ");
        // Drop size-1 source axes, merge neighbours of the same kind: alternating kept / reduced groups.
        var groups = new List<(int size, bool reduced)>();
        for (int i = 0; i < srcShape.Length; i++)
        {
            if (srcShape[i] == 1) continue;
            bool reduced = dstShape[i] == 1;
            if (!reduced && dstShape[i] != srcShape[i]) throw new ArgumentException("SumTo: dst axis is neither 1 nor the source size");
            if (groups.Count > 0 && groups[^1].reduced == reduced) groups[^1] = (groups[^1].size * srcShape[i], reduced);
            else groups.Add((srcShape[i], reduced));
        }
        int nSrc = 1;
        foreach (var g in groups) nSrc *= g.size;
        if (nSrc == 0)
        {
            // Empty source: the sum is 0 everywhere (dst may still have elements when only reduced axes are 0).
            int nDst = 1;
            foreach (int d in dstShape) nDst *= d;
            if (nDst > 0) SumGeneric(stream, dst, src, [], [], [], [], nDst, 0);
            return;
        }
        if (groups.Count == 2 && groups[0].reduced && !groups[1].reduced)
        {
            SumLeading(stream, dst, src, groups[0].size, groups[1].size);
            return;
        }
        if ((groups.Count == 1 && groups[0].reduced) || (groups.Count == 2 && !groups[0].reduced && groups[1].reduced))
        {
            int rows = groups.Count == 1 ? 1 : groups[0].size, cols = groups[^1].size;
            if (cols >= 64)
            {
                SumTrailing(stream, dst, src, rows, cols);
                return;
            }
        }
        var keptN = new List<int>();
        var keptS = new List<int>();
        var redN = new List<int>();
        var redS = new List<int>();
        int stride = 1, nOut = 1, nRed = 1;
        for (int g = groups.Count - 1; g >= 0; g--)
        {
            var (size, reduced) = groups[g];
            if (reduced) { redN.Insert(0, size); redS.Insert(0, stride); nRed *= size; }
            else { keptN.Insert(0, size); keptS.Insert(0, stride); nOut *= size; }
            stride *= size;
        }
        SumGeneric(stream, dst, src, [.. keptN], [.. keptS], [.. redN], [.. redS], nOut, nRed);
    }

    private void SumGeneric(AcceleratorStream stream, ArrayView<float> dst, ArrayView<float> src, int[] keptN, int[] keptS, int[] redN,
        int[] redS, int nOut, int nRed)
    {
        LastSumPath = "generic";
        var kept = Strides6.Create(keptN, keptS, new int[keptN.Length]);
        var red = Strides6.Create(redN, redS, new int[redN.Length]);
        sumGeneric(stream, KernelGrid.For(nOut, GroupSize, MaxGroups), dst, src, kept, red, new ReduceArgs { NOut = nOut, NReduce = nRed });
    }

    /// <summary>dst[C] = Σ_r src[R, C].</summary>
    public void SumLeading(AcceleratorStream stream, ArrayView<float> dst, ArrayView<float> src, int rows, int cols)
    {
        LastSumPath = "leading";
        if (cols == 0) return;
        sumLeading(stream, new KernelConfig(Math.Min((cols + TileCols - 1) / TileCols, MaxGroups), GroupSize), dst, src, rows, cols);
    }

    /// <summary>dst[R] = Σ_c src[R, C].</summary>
    public void SumTrailing(AcceleratorStream stream, ArrayView<float> dst, ArrayView<float> src, int rows, int cols)
    {
        LastSumPath = "trailing";
        if (rows == 0) return;
        sumTrailing(stream, new KernelConfig(Math.Min(rows, MaxGroups), GroupSize), dst, src, rows, cols);
    }

    /// <summary>y[outer, inner], argmax[outer, inner] (as float) over the middle axis of x[outer, len, inner].</summary>
    public void MaxAxis(AcceleratorStream stream, ArrayView<float> y, ArrayView<float> argmax, ArrayView<float> x, int outer, int len, int inner)
    {
        int n = outer * inner;
        if (n > 0) maxAxis(stream, KernelGrid.For(n, GroupSize, MaxGroups), y, argmax, x, outer, len, inner);
    }

    /// <summary>dx[outer, len, inner] = dy[o, i] at j = argmax[o, i], 0 elsewhere (overwrites dx).</summary>
    public void MaxAxisBackward(AcceleratorStream stream, ArrayView<float> dx, ArrayView<float> dy, ArrayView<float> argmax, int outer, int len,
        int inner)
    {
        int n = outer * len * inner;
        if (n > 0) maxAxisBackward(stream, KernelGrid.For(n, GroupSize, MaxGroups), dx, dy, argmax, outer, len, inner);
    }

    /// <summary>flag[0] = 1 when any of x[n] is NaN or ±Inf; the caller zeroes flag first.</summary>
    public void NonFinite(AcceleratorStream stream, ArrayView<int> flag, ArrayView<float> x, int n)
    {
        if (n > 0) nonFinite(stream, KernelGrid.For(n, GroupSize, MaxGroups), flag, x, n);
    }

    // --- device code ----------------------------------------------------------------------------
    internal static void SumGenericKernel(ArrayView<float> dst, ArrayView<float> src, Strides6 kept, Strides6 red, ReduceArgs a)
    {
        int gridStride = KernelGrid.Stride;
        for (int o = Grid.GlobalIndex.X; o < a.NOut; o += gridStride)
        {
            kept.Offsets(o, out int baseOff, out _);
            float sum = 0f;
            for (int r = 0; r < a.NReduce; r++)
            {
                red.Offsets(r, out int off, out _);
                sum += src[baseOff + off];
            }
            dst[o] = sum;
        }
    }

    internal static void SumLeadingKernel(ArrayView<float> dst, ArrayView<float> src, int rows, int cols)
    {
        var shared = SharedMemory.Allocate<float>(MaxGroup);
        int t = Group.IdxX, g = Group.DimX;
        int lane = t % TileCols, w = t / TileCols, lanes = g / TileCols;
        int tiles = (cols + TileCols - 1) / TileCols;
        // Every thread of a group runs the same number of tiles, so the barriers stay uniform.
        int groups = Grid.DimX;
        for (int tile = Grid.IdxX; tile < tiles; tile += groups)
        {
            int col = tile * TileCols + lane;
            float sum = 0f;
            if (col < cols)
                for (int r = w; r < rows; r += lanes)
                    sum += src[r * cols + col];
            shared[t] = sum;
            Group.Barrier();
            for (int s = lanes / 2; s > 0; s /= 2)
            {
                if (w < s) shared[t] += shared[t + s * TileCols];
                Group.Barrier();
            }
            if (w == 0 && col < cols) dst[col] = shared[lane];
            Group.Barrier();
        }
    }

    internal static void SumTrailingKernel(ArrayView<float> dst, ArrayView<float> src, int rows, int cols)
    {
        var shared = SharedMemory.Allocate<float>(MaxGroup);
        int t = Group.IdxX, g = Group.DimX;
        int groups = Grid.DimX;
        for (int row = Grid.IdxX; row < rows; row += groups)
        {
            float sum = 0f;
            for (int c = t; c < cols; c += g) sum += src[row * cols + c];
            shared[t] = sum;
            Group.Barrier();
            for (int s = g / 2; s > 0; s /= 2)
            {
                if (t < s) shared[t] += shared[t + s];
                Group.Barrier();
            }
            if (t == 0) dst[row] = shared[0];
            Group.Barrier();
        }
    }

    internal static void MaxAxisKernel(ArrayView<float> y, ArrayView<float> argmax, ArrayView<float> x, int outer, int len, int inner)
    {
        int gridStride = KernelGrid.Stride;
        for (int idx = Grid.GlobalIndex.X; idx < outer * inner; idx += gridStride)
        {
            int o = idx / inner, i = idx % inner;
            int baseOff = o * len * inner + i;
            float best = x[baseOff];
            int arg = 0;
            for (int j = 1; j < len; j++)
            {
                float v = x[baseOff + j * inner];
                if (XMath.IsNaN(v)) { best = v; arg = j; break; }
                if (v > best) { best = v; arg = j; }
            }
            y[idx] = best;
            argmax[idx] = arg;
        }
    }

    internal static void MaxAxisBackwardKernel(ArrayView<float> dx, ArrayView<float> dy, ArrayView<float> argmax, int outer, int len, int inner)
    {
        int gridStride = KernelGrid.Stride;
        for (int idx = Grid.GlobalIndex.X; idx < outer * len * inner; idx += gridStride)
        {
            int i = idx % inner, rest = idx / inner;
            int j = rest % len, o = rest / len;
            int oi = o * inner + i;
            dx[idx] = (int)argmax[oi] == j ? dy[oi] : 0f;
        }
    }

    internal static void NonFiniteKernel(ArrayView<int> flag, ArrayView<float> x, int n)
    {
        int gridStride = KernelGrid.Stride;
        for (int i = Grid.GlobalIndex.X; i < n; i += gridStride)
        {
            if (!XMath.IsFinite(x[i])) flag[0] = 1;
        }
    }
}
