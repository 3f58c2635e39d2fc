using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace MicroExpr.Kernels;

/// <summary>
/// Batched row-major GEMM on an ILGPU accelerator: C_i[M,N] = alpha·op(A_i)·op(B_i) + beta·C_i for i &lt; batch.
/// op(A) is [M,K] (A stored [K,M] when transA), op(B) is [K,N] (B stored [N,K] when transB). Strides are in elements
/// between batch entries; stride 0 shares the operand across the batch. With beta = 0, C is written without being read.
/// <para>Versions (llm.c style):</para>
/// <list type="bullet">
/// <item>v1 <see cref="TiledKernel"/>: shared-memory tiles BM×BK of op(A) and BK×BN of op(B) (BK = 16), BM = 4·groupY,
/// BN = 4·groupX (64×64 with the default 16×16 group); each thread accumulates a 4×4 register block over the whole K.
/// The thread's rows are ty + i·groupY and columns tx + j·groupX (strided, so shared reads and global stores of a warp are
/// consecutive). Tiles are loaded with the contiguous axis of the stored operand varying fastest across threads
/// (coalesced for every transpose combination); out-of-range elements load as zero and stores are guarded.
/// Grid = (⌈N/BN⌉, ⌈M/BM⌉, batch).</item>
/// </list>
/// </summary>
public sealed class GemmKernels
{
    /// <summary>K-step of the shared-memory tiles.</summary>
    public const int TileK = 16;

    /// <summary>Outputs per thread along each axis (register block 4×4).</summary>
    public const int Block = 4;

    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs> _tiled;

    /// <summary>Default group: 16×16 threads, 64×64 output tile.</summary>
    public GemmKernels(Accelerator accelerator) : this(accelerator, 16, 16) { }

    /// <summary>Group of <paramref name="groupX"/>×<paramref name="groupY"/> threads; output tile (4·groupY)×(4·groupX).</summary>
    public GemmKernels(Accelerator accelerator, int groupX, int groupY)
    {
        KernelChecks.GroupSize(accelerator, groupX * groupY, "GEMM");
        if (groupX <= 0 || groupY <= 0) throw new ArgumentOutOfRangeException(nameof(groupX), "GEMM: group dimensions must be positive");
        Accelerator = accelerator;
        GroupX = groupX;
        GroupY = groupY;
        _tiled = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>(TiledKernel);
    }

    public Accelerator Accelerator { get; }
    public int GroupX { get; }
    public int GroupY { get; }

    /// <summary>C_i = alpha·op(A_i)·op(B_i) + beta·C_i for i &lt; batch; strides in elements (0 shares the operand); beta = 0 never reads C.</summary>
    public void Gemm(AcceleratorStream stream, ArrayView<float> c, long strideC, ArrayView<float> a, long strideA, bool transA,
        ArrayView<float> b, long strideB, bool transB, int batch, int m, int n, int k, float alpha, float beta)
    {
        if (batch < 0 || m < 0 || n < 0 || k < 0) throw new ArgumentOutOfRangeException(nameof(batch), "GEMM: negative dimension");
        if (batch == 0 || m == 0 || n == 0) return;
        KernelChecks.Length(c, strideC * (batch - 1) + (long)m * n, nameof(c), "GEMM");
        KernelChecks.Length(a, strideA * (batch - 1) + (long)m * k, nameof(a), "GEMM");
        KernelChecks.Length(b, strideB * (batch - 1) + (long)k * n, nameof(b), "GEMM");
        int bm = Block * GroupY, bn = Block * GroupX;
        var args = new GemmArgs
        {
            StrideA = strideA, StrideB = strideB, StrideC = strideC, M = m, N = n, K = k, Alpha = alpha, Beta = beta,
            TransA = transA ? 1 : 0, TransB = transB ? 1 : 0,
        };
        var grid = new Index3D((n + bn - 1) / bn, (m + bm - 1) / bm, batch);
        var config = new KernelConfig(grid, new Index3D(GroupX, GroupY, 1), SharedMemoryConfig.RequestDynamic<float>(TileK * (bm + bn)));
        _tiled(stream, config, c, a, b, args);
    }

    /// <summary>
    /// v1: one group per BM×BN tile of C_i (grid z = batch entry i). Dynamic shared memory: A tile [BK][BM] then
    /// B tile [BK][BN], both stored k-major so that the inner product reads one row of each per k.
    /// </summary>
    internal static void TiledKernel(ArrayView<float> c, ArrayView<float> a, ArrayView<float> b, GemmArgs p)
    {
        int tx = Group.IdxX, ty = Group.IdxY, gx = Group.DimX, gy = Group.DimY;
        int threads = gx * gy, tid = ty * gx + tx;
        int bm = Block * gy, bn = Block * gx;
        var smem = SharedMemory.GetDynamic<float>();
        var aS = smem.SubView(0, TileK * bm);
        var bS = smem.SubView(TileK * bm, TileK * bn);
        int row0 = Grid.IdxY * bm, col0 = Grid.IdxX * bn;
        long batch = Grid.IdxZ;
        long aOff = batch * p.StrideA, bOff = batch * p.StrideB, cOff = batch * p.StrideC;

        var acc = RegisterBlock.Zero;
        for (int k0 = 0; k0 < p.K; k0 += TileK)
        {
            // op(A) tile element (mm, kk) → aS[kk·BM + mm] (A stored [M, K], or [K, M] when transposed).
            GemmTile.Stage(aS, a, aOff, p.TransA == 0, row0, bm, p.M, k0, p.K, tid, threads);
            // op(B) tile element (kk, nn) → bS[kk·BN + nn] (B stored [K, N], or [N, K] when transposed).
            GemmTile.Stage(bS, b, bOff, p.TransB != 0, col0, bn, p.N, k0, p.K, tid, threads);
            Group.Barrier();
            acc = GemmTile.MultiplyAdd(acc, aS, bS, bm, bn, ty, tx, gy, gx);
            Group.Barrier();
        }
        Store(c, cOff, p, row0 + ty, col0 + tx, gx, acc.R0);
        Store(c, cOff, p, row0 + ty + gy, col0 + tx, gx, acc.R1);
        Store(c, cOff, p, row0 + ty + 2 * gy, col0 + tx, gx, acc.R2);
        Store(c, cOff, p, row0 + ty + 3 * gy, col0 + tx, gx, acc.R3);
    }

    /// <summary>Guarded store of one register row: columns col, col+gx, col+2gx, col+3gx of row <paramref name="row"/>.</summary>
    private static void Store(ArrayView<float> c, long cOff, GemmArgs p, int row, int col, int gx, Vec4 acc)
    {
        if (row >= p.M) return;
        long r = cOff + (long)row * p.N;
        Put(c, r, p, col, acc.X);
        Put(c, r, p, col + gx, acc.Y);
        Put(c, r, p, col + 2 * gx, acc.Z);
        Put(c, r, p, col + 3 * gx, acc.W);
    }

    private static void Put(ArrayView<float> c, long rowStart, GemmArgs p, int col, float acc)
    {
        if (col >= p.N) return;
        long idx = rowStart + col;
        c[idx] = p.Beta == 0f ? p.Alpha * acc : p.Alpha * acc + p.Beta * c[idx];
    }
}

/// <summary>Scalar GEMM arguments that do not fit the launcher's parameter list.</summary>
internal struct GemmArgs
{
    public long StrideA, StrideB, StrideC;
    public int M, N, K;
    public float Alpha, Beta;
    public int TransA, TransB;
}

/// <summary>
/// A thread's 4×4 register block of the tiled GEMMs: row i of the block (R0..R3) is output row ty + i·groupY, lane j of
/// each <see cref="Vec4"/> output column tx + j·groupX. Value semantics only, like <see cref="Vec4"/>, so ILGPU keeps it in
/// registers.
/// </summary>
internal struct RegisterBlock
{
    public Vec4 R0, R1, R2, R3;

    public static RegisterBlock Zero => new() { R0 = Vec4.Zero, R1 = Vec4.Zero, R2 = Vec4.Zero, R3 = Vec4.Zero };
}

/// <summary>
/// Device helpers of the shared-memory tiled GEMM, used by <see cref="GemmKernels"/>' v1 and <see cref="ConvKernels"/>'
/// implicit GEMM: staging one k tile of a stored operand, and the register block's update from the staged tiles. They
/// hold no barrier: each kernel keeps its own stage → barrier → multiply-add → barrier order. Inlined into the kernels.
/// </summary>
internal static class GemmTile
{
    /// <summary>
    /// Stages the k tile [k0, k0 + TileK) of the rows x0 .. x0 + len of an operand X[x, k] (x &lt; count, k &lt; K) into
    /// dst[kk·len + xx] (k-major), zero outside. <paramref name="kContiguous"/>: X is stored [count, K] (element (x, k) at
    /// off + x·K + k), else [K, count] (at off + k·count + x). The stored operand's contiguous axis varies fastest over
    /// tid, so the loads are coalesced for either storage. A GEMM's op(A) tile is (x, k) = (m, k); op(B)'s is (n, k).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Stage(ArrayView<float> dst, ArrayView<float> src, long off, bool kContiguous, int x0, int len, int count,
        int k0, int k, int tid, int threads)
    {
        const int tileK = GemmKernels.TileK;
        for (int l = tid; l < tileK * len; l += threads)
        {
            int xx, kk;
            if (kContiguous) { xx = l / tileK; kk = l - xx * tileK; }
            else { kk = l / len; xx = l - kk * len; }
            int gx = x0 + xx, gk = k0 + kk;
            float v = 0f;
            if (gx < count && gk < k)
                v = kContiguous ? src[off + (long)gx * k + gk] : src[off + (long)gk * count + gx];
            dst[kk * len + xx] = v;
        }
    }

    /// <summary>
    /// acc + the product of one staged k tile: row i, lane j gains Σ_kk aS[kk·bm + ty + i·gy]·bS[kk·bn + tx + j·gx] over
    /// kk &lt; TileK (aS [TileK][bm], bS [TileK][bn], both k-major).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static RegisterBlock MultiplyAdd(RegisterBlock acc, ArrayView<float> aS, ArrayView<float> bS, int bm, int bn, int ty, int tx,
        int gy, int gx)
    {
        for (int kk = 0; kk < GemmKernels.TileK; kk++)
        {
            int ar = kk * bm + ty, br = kk * bn + tx;
            var bv = new Vec4(bS[br], bS[br + gx], bS[br + 2 * gx], bS[br + 3 * gx]);
            acc.R0 = Vec4.Fma(acc.R0, aS[ar], bv);
            acc.R1 = Vec4.Fma(acc.R1, aS[ar + gy], bv);
            acc.R2 = Vec4.Fma(acc.R2, aS[ar + 2 * gy], bv);
            acc.R3 = Vec4.Fma(acc.R3, aS[ar + 3 * gy], bv);
        }
        return acc;
    }
}
