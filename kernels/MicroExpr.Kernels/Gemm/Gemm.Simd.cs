using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MicroExpr.Kernels;

/// <summary>
/// Single-precision GEMM on the CPU: <c>C[M,N] = alpha·op(A)·op(B) + beta·C</c>, every matrix row-major.
/// </summary>
/// <remarks>
/// <para><b>Shapes.</b> op(A) is [M,K]: stored [M,K] (row stride lda) or, when transA, stored [K,M] so that
/// op(A)[i,p] = A[p·lda + i]. op(B) is [K,N]: stored [K,N] or, when transB, stored [N,K] so that op(B)[p,j] = B[j·ldb + p].
/// C is [M,N] with row stride ldc. With beta = 0, C is overwritten and never read (it may hold NaN).</para>
/// <para><b>Strategy (GotoBLAS/BLIS).</b> Three cache-blocking loops surround a register-tiled micro-kernel:
/// for each NC-wide column block of B (jc), for each KC-deep slice of K (pc), op(B)[pc..pc+KC, jc..jc+NC] is packed into
/// NR-column strips (layout: strip-major, then p, then the NR columns contiguously, so the kernel reads one NR-float row of
/// the strip per k step); then for each MC-tall row block (ic) op(A)[ic..ic+MC, pc..pc+KC] is packed into MR-row strips
/// (strip-major, then p, then MR rows contiguously, so the kernel broadcasts MR consecutive scalars per k step; see
/// Packing for when A is read in place instead).
/// Transposition is resolved entirely while packing, so one kernel serves all four (transA, transB) combinations.
/// Packed strips are zero-padded to full MR / NR, so the kernel always computes a full tile; edge tiles are computed into a
/// small scratch tile and only the valid rows/columns are written back to C.</para>
/// <para><b>Micro-kernel.</b> AVX-512 path: MR×NR = <see cref="Mr512"/>×<see cref="Nr512"/> (NR = two Vector512 per row),
/// MR·NR/16 accumulators held in zmm registers, one FMA per accumulator per k step fed by a broadcast of A and
/// two loads of B. With two 512-bit FMA pipes of 4-cycle latency, at least 8 independent accumulators are needed;
/// more rows amortise the B loads and the per-tile C read/write. AVX2 path (used when Vector512 is not
/// hardware-accelerated): 6×16 with 12 ymm accumulators. Scalar fallback: 4×4.</para>
/// <para><b>Block sizes.</b> K is cut into equal slices of at most KC = 512 (rounded up to a multiple of 8; e.g. K = 768 →
/// 2×384, K = 3200 → 7×≤464), so there is no thin remainder slice; each C tile is read and written once per slice, so a
/// deep slice keeps C traffic low. MC = 120: the packed A block (MC×KC×4 B = 240 KiB) and the current B micro-panel
/// (KC×NR×4 B = 64 KiB) stay in the 1 MiB per-core L2 (Zen 5's L2 feeds 64 B/cycle, more than the 152 B per 6 cycles
/// the 6×32 kernel needs); the A micro-panel (MR×KC×4 B = 12 KiB) is in L1. NC = 2048: the packed B block
/// (KC×NC×4 B = 4 MiB per worker) fits in the 32 MiB L3 with two workers. Loop order inside a block: jr (NR strips of
/// B) outer, ir (MR strips of A) inner, so a B micro-panel is reused across the whole A block. Timed on the target Zen 5
/// core, the 6×32 kernel alone runs at ~240 of 246 GFLOP/s peak; the C tile is prefetched at kernel entry.</para>
/// <para><b>Packing.</b> On the AVX-512 path, non-transposed A is not packed at all: a full MR-row strip is read in place
/// (MR sequential row streams, each scalar broadcast once per k step), which removes the M·K packing pass that
/// dominates when N is small (e.g. N = 192; measured 3–10 % faster per CPU-second on the model shapes); only a partial last strip
/// is packed. Likewise a small row-major B (K·N ≤ 16Ki with M ≤ 256, e.g. attention's P·V) is read in place, full NR-column
/// strips at row stride ldb. Otherwise, row-major A and transposed B (rows/columns contiguous in K) are packed with 8×8 AVX transposes,
/// and transposed A / plain B with contiguous vector copies. Packing costs O(M·K + K·N) per NC block against the
/// O(M·N·K) arithmetic.</para>
/// <para><b>Threads.</b> threads ≤ 1 runs on the calling thread. Otherwise the problem is split into independent
/// sub-GEMMs along the larger of M and N (splitting M makes every worker pack all of op(B), splitting N all of op(A),
/// so cutting the larger dimension costs the least redundant packing), in MR- or NR-aligned chunks, run with
/// the toolkit's <see cref="WorkSplit"/> (the calling thread takes parts too). Each worker packs into its per-thread
/// 64-byte-aligned native buffers (<see cref="ThreadScratch"/>) that are reused across calls. Problems with M·N·K ≤ 32Ki take a direct unpacked path (no packing), and
/// problems with M·N·K &lt; 1Mi stay on one thread. Batched calls parallelise across the batch when it divides evenly
/// among the threads, is at least 4 per thread, or each GEMM is below the threading threshold (each GEMM then runs
/// single-threaded); otherwise each GEMM is split across the threads. The partitioning depends only on the arguments, so the same call always gives bit-identical results.</para>
/// </remarks>
[SkipLocalsInit]
public static unsafe partial class GemmSimd
{
    internal enum Path { Auto, Avx512, Avx2, Scalar }

    /// <summary>Testing hook: force a micro-kernel path (falls back to what the hardware supports).</summary>
    [ThreadStatic] internal static Path ForcePath;

    /// <summary>Testing hook: when true, the direct small-problem path is never taken.</summary>
    [ThreadStatic] internal static bool NoDirect;

    internal const int Kc = 512;   // upper bound; K is cut into equal slices of at most Kc (multiple of 8)
    internal const int Mc = 120;   // multiple of Mr512, Mr256, 4
    internal const int Nc = 2048;  // multiple of Nr512, Nr256, 4
    const long DirectThreshold = 32 * 1024;      // M·N·K at or below which the unpacked path is used
    const long ParallelThreshold = 1L << 20;     // M·N·K below which no threads are used (~10 µs of work on one core)

    static Path Resolve()
    {
        var p = ForcePath;
        bool has512 = Vector512.IsHardwareAccelerated && Avx512F.IsSupported;
        bool has256 = Vector256.IsHardwareAccelerated && Fma.IsSupported && Avx.IsSupported;
        if (p == Path.Avx512 && has512) return Path.Avx512;
        if (p == Path.Avx2 && has256) return Path.Avx2;
        if (p == Path.Scalar) return Path.Scalar;
        if (has512) return Path.Avx512;
        if (has256) return Path.Avx2;
        return Path.Scalar;
    }

    public static void Run(float* c, int ldc, float* a, int lda, bool transA, float* b, int ldb, bool transB,
        int m, int n, int k, float alpha, float beta, int threads)
        => RunCore(Resolve(), !NoDirect, c, ldc, a, lda, transA, b, ldb, transB, m, n, k, alpha, beta, default, threads);

    /// <summary>
    /// <c>C = f(alpha·op(A)·op(B) + beta·C + 1·biasᵀ + R)</c>: as <see cref="Run"/>, plus a row vector bias[0..N) added to
    /// every row of C (a Linear layer's bias) and a matrix R [M, N] (row stride ldr: a residual stream; with beta = 0 it
    /// may be C itself), either may be null, and f = exact GELU when <paramref name="gelu"/> (else identity). Bias and residual are written into each C
    /// tile just before the tile's first K slice is accumulated onto it, GELU is applied to the tile right after its
    /// last slice, while the tile is in L1, so none of them costs a pass over C of its own.
    /// </summary>
    public static void RunAffine(float* c, int ldc, float* a, int lda, bool transA, float* b, int ldb, bool transB,
        int m, int n, int k, float alpha, float beta, float* bias, int threads, float* residual = null, int ldr = 0, bool gelu = false)
        => RunCore(Resolve(), !NoDirect, c, ldc, a, lda, transA, b, ldb, transB, m, n, k, alpha, beta,
            new TileOps(bias, residual, ldr, gelu), threads);

    /// <summary>
    /// What a C tile starts from before its first K slice (beta·C, plus a bias row and a residual matrix when given) and
    /// what is applied to it after its last (GELU when asked).
    /// </summary>
    readonly struct TileOps(float* bias, float* residual, int ldr, bool gelu)
    {
        public readonly float* Bias = bias, Residual = residual;
        public readonly int Ldr = ldr;
        public readonly bool Gelu = gelu;
        public bool Any => Bias != null || Residual != null;
        /// <summary>The tile ops of the sub-matrix at row i0, column j0.</summary>
        public TileOps At(int i0, int j0) => new(Bias == null ? null : Bias + j0, Residual == null ? null : Residual + (long)i0 * Ldr + j0, Ldr, Gelu);

        /// <summary>C[0..rows, 0..cols] = GELU(C) in place, row by row.</summary>
        public static void ApplyGelu(float* c, int ldc, int rows, int cols)
        {
            for (int r = 0; r < rows; r++) GeluSimd.Forward(c + (long)r * ldc, c + (long)r * ldc, cols);
        }

        /// <summary>C[0..rows, 0..cols] = beta·C + bias + R (beta = 0 does not read C).</summary>
        public void Apply(float* c, int ldc, int rows, int cols, float beta)
        {
            if (cols == 32 && beta == 0f && Vector512.IsHardwareAccelerated)
            {
                var b0 = Bias == null ? Vector512<float>.Zero : Vector512.Load(Bias);
                var b1 = Bias == null ? Vector512<float>.Zero : Vector512.Load(Bias + 16);
                for (int r = 0; r < rows; r++)
                {
                    float* dst = c + (long)r * ldc;
                    if (Residual == null)
                    {
                        Vector512.Store(b0, dst);
                        Vector512.Store(b1, dst + 16);
                    }
                    else
                    {
                        float* rr = Residual + (long)r * Ldr;
                        Vector512.Store(b0 + Vector512.Load(rr), dst);
                        Vector512.Store(b1 + Vector512.Load(rr + 16), dst + 16);
                    }
                }
                return;
            }
            for (int r = 0; r < rows; r++)
            {
                var dst = new Span<float>(c + (long)r * ldc, cols);
                var res = Residual == null ? default : new ReadOnlySpan<float>(Residual + (long)r * Ldr, cols);
                if (beta == 0f)
                {
                    // C is not read: it starts as the residual (a copy, so R may be C itself) or as zero.
                    if (Residual != null) res.CopyTo(dst);
                    else dst.Clear();
                }
                else
                {
                    if (beta != 1f) TensorPrimitives.Multiply(dst, beta, dst);
                    if (Residual != null) TensorPrimitives.Add(dst, res, dst);
                }
                if (Bias != null) TensorPrimitives.Add(dst, new ReadOnlySpan<float>(Bias, cols), dst);
            }
        }
    }

    static void RunCore(Path path, bool allowDirect, float* c, int ldc, float* a, int lda, bool transA, float* b, int ldb, bool transB,
        int m, int n, int k, float alpha, float beta, TileOps pro, int threads)
    {
        if (m <= 0 || n <= 0) return;
        long work = (long)m * n * k;
        if (k <= 0 || alpha == 0f || (allowDirect && work <= DirectThreshold))
        {
            // No tiles to fold bias, residual and GELU into: row passes before and after.
            if (pro.Any) { pro.Apply(c, ldc, m, n, beta); beta = 1f; }
            if (k <= 0 || alpha == 0f) ScaleC(c, ldc, m, n, beta);
            else Direct(c, ldc, a, lda, transA, b, ldb, transB, m, n, k, alpha, beta);
            if (pro.Gelu) TileOps.ApplyGelu(c, ldc, m, n);
            return;
        }
        if (threads <= 1 || work < ParallelThreshold)
        {
            RunPacked(path, c, ldc, a, lda, transA, b, ldb, transB, m, n, k, alpha, beta, pro);
            return;
        }
        RunSplit(path, c, ldc, a, lda, transA, b, ldb, transB, m, n, k, alpha, beta, pro, threads);
    }

    public static void RunBatched(int batch, float* c, long strideC, int ldc, float* a, long strideA, int lda, bool transA,
        float* b, long strideB, int ldb, bool transB, int m, int n, int k, float alpha, float beta, int threads)
    {
        if (batch <= 0 || m <= 0 || n <= 0) return;
        var path = Resolve();
        bool allowDirect = !NoDirect;
        long work = (long)m * n * k;
        if (threads <= 1 || batch == 1 || (long)batch * work < ParallelThreshold)
        {
            int t = batch == 1 ? threads : 1;
            for (int i = 0; i < batch; i++)
                RunCore(path, allowDirect, c + i * strideC, ldc, a + i * strideA, lda, transA, b + i * strideB, ldb, transB, m, n, k, alpha, beta, default, t);
            return;
        }
        // Across the batch when that balances (or each GEMM is too small to split); otherwise split each GEMM.
        if (batch % threads == 0 || batch >= 4 * threads || work < ParallelThreshold)
        {
            var job = new BatchWork
            {
                Path = path, AllowDirect = allowDirect, Batch = batch, C = c, StrideC = strideC, Ldc = ldc, A = a, StrideA = strideA, Lda = lda, TransA = transA,
                B = b, StrideB = strideB, Ldb = ldb, TransB = transB, M = m, N = n, K = k, Alpha = alpha, Beta = beta,
            };
            WorkSplit.Run(ref job, batch, threads, threads);
            return;
        }
        for (int i = 0; i < batch; i++)
            RunCore(path, allowDirect, c + i * strideC, ldc, a + i * strideA, lda, transA, b + i * strideB, ldb, transB, m, n, k, alpha, beta, default, threads);
    }

    /// <summary>GEMMs [start, end) of a batch, each single-threaded.</summary>
    struct BatchWork : IPartWork
    {
        public Path Path;
        public bool AllowDirect;
        public int Batch, Ldc, Lda, Ldb, M, N, K;
        public float* C, A, B;
        public long StrideC, StrideA, StrideB;
        public bool TransA, TransB;
        public float Alpha, Beta;

        public void Run(int part, long start, long end)
        {
            for (long i = start; i < end; i++)
                RunCore(Path, AllowDirect, C + i * StrideC, Ldc, A + i * StrideA, Lda, TransA, B + i * StrideB, Ldb, TransB, M, N, K, Alpha, Beta, default, 1);
        }
    }

    /// <summary>Tiles [start, end) along M or N as one sub-GEMM.</summary>
    struct SplitWork : IPartWork
    {
        public Path Path;
        public float* C, A, B;
        public TileOps Pro;
        public int Ldc, Lda, Ldb, M, N, K, Tile;
        public bool TransA, TransB, AlongM;
        public float Alpha, Beta;

        public void Run(int part, long start, long end)
        {
            int total = AlongM ? M : N;
            int lo = Math.Min(total, (int)start * Tile);
            int hi = Math.Min(total, (int)end * Tile);
            if (hi <= lo) return;
            if (AlongM)
                RunPacked(Path, C + (long)lo * Ldc, Ldc, TransA ? A + lo : A + (long)lo * Lda, Lda, TransA, B, Ldb, TransB,
                    hi - lo, N, K, Alpha, Beta, Pro.At(lo, 0));
            else
                RunPacked(Path, C + lo, Ldc, A, Lda, TransA, TransB ? B + (long)lo * Ldb : B + lo, Ldb, TransB,
                    M, hi - lo, K, Alpha, Beta, Pro.At(0, lo));
        }
    }

    static void RunSplit(Path path, float* c, int ldc, float* a, int lda, bool transA, float* b, int ldb, bool transB,
        int m, int n, int k, float alpha, float beta, TileOps pro, int threads)
    {
        var (mr, nr) = TileOf(path);
        int mTiles = (m + mr - 1) / mr, nTiles = (n + nr - 1) / nr;
        // Split the larger of M and N: splitting along M makes every worker pack all of op(B) (K·N redundant packing per
        // extra worker), splitting along N makes it pack all of op(A) (K·M), so the larger dimension is the cheaper one
        // to cut. Fall back to the other when the larger one has fewer tiles than workers.
        bool alongM = m >= n ? mTiles >= threads || mTiles >= nTiles : !(nTiles >= threads || nTiles >= mTiles);
        int parts = Math.Min(threads, alongM ? mTiles : nTiles);
        if (parts <= 1)
        {
            RunPacked(path, c, ldc, a, lda, transA, b, ldb, transB, m, n, k, alpha, beta, pro);
            return;
        }
        var job = new SplitWork
        {
            Path = path, C = c, A = a, B = b, Pro = pro, Ldc = ldc, Lda = lda, Ldb = ldb, M = m, N = n, K = k,
            Tile = alongM ? mr : nr, TransA = transA, TransB = transB, AlongM = alongM, Alpha = alpha, Beta = beta,
        };
        WorkSplit.Run(ref job, alongM ? mTiles : nTiles, parts, parts);
    }

    static (int mr, int nr) TileOf(Path path) => path switch
    {
        Path.Avx512 => (Mr512, Nr512),
        Path.Avx2 => (Mr256, Nr256),
        _ => (MrScalar, NrScalar),
    };

    const int MrScalar = 4, NrScalar = 4;

    // ---------------------------------------------------------------- packing buffers

    /// <summary>The packing buffers: slots of the toolkit's per-thread <see cref="ThreadScratch"/>.</summary>
    readonly struct PackBuffers
    {
        public float* EnsureA(long floats) => ThreadScratch.Get(ScratchSlot.GemmPackA, floats);
        public float* EnsureB(long floats) => ThreadScratch.Get(ScratchSlot.GemmPackB, floats);
    }

    static PackBuffers t_buffers => default;

    // ---------------------------------------------------------------- packed driver

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void RunPacked(Path path, float* c, int ldc, float* a, int lda, bool transA, float* b, int ldb, bool transB,
        int m, int n, int k, float alpha, float beta, TileOps pro)
    {
        var (mr, nr) = TileOf(path);
        var bufs = t_buffers;
        // K slices of (nearly) equal depth: e.g. K = 768 → 2×384 rather than 512 + 256.
        int kBlocks = (k + Kc - 1) / Kc;
        int kcMax = Math.Min(k, RoundUp((k + kBlocks - 1) / kBlocks, 8));
        int mcMax = Math.Min(Mc, RoundUp(m, mr));
        int ncMax = Math.Min(Nc, RoundUp(n, nr));
        float* pA = bufs.EnsureA((long)mcMax * kcMax + 16);  // slack: vector packing may write 2 floats past the end
        float* pB = bufs.EnsureB((long)ncMax * kcMax + 16);
        // Row-major A is read in place by the AVX-512 kernel (no packing of A): its MR rows are MR sequential streams.
        // (Reading transposed A in place — aStep = lda — measured no faster than packing it, so it is packed.)
        bool rowA = path == Path.Avx512 && !transA;
        // Row-major B read in place (full NR-column strips; only a partial last strip is packed) for small GEMMs such as
        // attention's P·V, where op(B) (≤ 64 KiB) stays in L1/L2 and packing it would be a large share of the work; not when
        // the row stride is a multiple of 1 KiB (cache-set conflicts between the B rows of a strip). For large B, packing
        // measured faster.
        bool rowB = path == Path.Avx512 && !transB && m <= 256 && (long)k * n <= 16 * 1024 && (ldb & 255) != 0;
        float* tile = stackalloc float[16 * 64 + 16];
        tile = (float*)(((nint)tile + 63) & ~(nint)63);

        for (int jc = 0; jc < n; jc += Nc)
        {
            int nc = Math.Min(Nc, n - jc);
            for (int pc = 0; pc < k; pc += kcMax)
            {
                int kc = Math.Min(kcMax, k - pc);
                float betaSlice = pc == 0 ? beta : 1f;
                int fullN = rowB ? nc / nr * nr : 0;
                if (fullN < nc) PackB(pB + (long)fullN * kc, b, ldb, transB, pc, kc, jc + fullN, nc - fullN, nr);
                for (int ic = 0; ic < m; ic += Mc)
                {
                    int mc = Math.Min(Mc, m - ic);
                    if (rowA)
                    {
                        // Full MR-row strips read A in place; only a partial last strip is packed (zero-padded).
                        int full = mc / mr * mr;
                        if (full < mc) PackA(pA + (long)full * kc, a, lda, false, ic + full, mc - full, pc, kc, mr);
                    }
                    else
                        PackA(pA, a, lda, transA, ic, mc, pc, kc, mr);
                    for (int jr = 0; jr < nc; jr += nr)
                    {
                        int nrv = Math.Min(nr, nc - jr);
                        bool inPlaceB = jr < fullN;
                        float* pb = inPlaceB ? b + (long)pc * ldb + jc + jr : pB + (long)jr * kc;
                        nint bStep = inPlaceB ? ldb : nr;
                        for (int ir = 0; ir < mc; ir += mr)
                        {
                            int mrv = Math.Min(mr, mc - ir);
                            float* pa = pA + (long)ir * kc;
                            float* cij = c + (long)(ic + ir) * ldc + jc + jr;
                            float betaEff = betaSlice;
                            if (pro.Any && pc == 0)
                            {
                                // C tile = beta·C + bias + R, hot in L1 for the kernel that accumulates onto it (beta 1).
                                pro.At(ic + ir, jc + jr).Apply(cij, ldc, mrv, nrv, beta);
                                betaEff = 1f;
                            }
                            if (rowA && mrv == mr)
                            {
                                float* ar = a + (long)(ic + ir) * lda + pc;
                                if (nrv == nr) Kernel512RowA(kc, ar, lda, pb, bStep, cij, ldc, alpha, betaEff);
                                else
                                {
                                    Kernel512RowA(kc, ar, lda, pb, bStep, tile, nr, alpha, 0f);
                                    WriteBack(cij, ldc, tile, nr, mrv, nrv, betaEff);
                                }
                            }
                            else if (inPlaceB)
                            {
                                // Only on the AVX-512 path (rowB); full NR columns, maybe a partial MR strip.
                                if (mrv == mr) Kernel512(kc, pa, mr, pb, bStep, cij, ldc, alpha, betaEff);
                                else
                                {
                                    Kernel512(kc, pa, mr, pb, bStep, tile, nr, alpha, 0f);
                                    WriteBack(cij, ldc, tile, nr, mrv, nrv, betaEff);
                                }
                            }
                            else if (mrv == mr && nrv == nr)
                            {
                                Kernel(path, kc, pa, pb, cij, ldc, alpha, betaEff);
                            }
                            else
                            {
                                Kernel(path, kc, pa, pb, tile, nr, alpha, 0f);
                                WriteBack(cij, ldc, tile, nr, mrv, nrv, betaEff);
                            }
                            if (pro.Gelu && pc + kc >= k) TileOps.ApplyGelu(cij, ldc, mrv, nrv);
                        }
                    }
                }
            }
        }
    }

    /// <summary>Edge tile: C[0..rows, 0..cols] = T (+ beta·C) for the valid part of a scratch tile T (row stride nr).</summary>
    static void WriteBack(float* c, int ldc, float* tile, int nr, int rows, int cols, float beta)
    {
        for (int r = 0; r < rows; r++)
        {
            float* src = tile + r * nr;
            float* dst = c + (long)r * ldc;
            int j = 0;
            if (beta == 0f)
            {
                if (Vector256.IsHardwareAccelerated)
                    for (; j + 8 <= cols; j += 8) Vector256.Store(Vector256.Load(src + j), dst + j);
                for (; j < cols; j++) dst[j] = src[j];
            }
            else
            {
                if (Vector256.IsHardwareAccelerated)
                {
                    var vb = Vector256.Create(beta);
                    for (; j + 8 <= cols; j += 8) Vector256.Store(Vector256.Load(src + j) + vb * Vector256.Load(dst + j), dst + j);
                }
                for (; j < cols; j++) dst[j] = src[j] + beta * dst[j];
            }
        }
    }

    static int RoundUp(int x, int m) => (x + m - 1) / m * m;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Kernel(Path path, int kc, float* pa, float* pb, float* c, nint ldc, float alpha, float beta)
    {
        if (path == Path.Avx512) Kernel512(kc, pa, Mr512, pb, Nr512, c, ldc, alpha, beta);
        else if (path == Path.Avx2) Kernel256(kc, pa, pb, c, ldc, alpha, beta);
        else KernelScalar(kc, pa, pb, c, ldc, alpha, beta);
    }

    /// <summary>Packs op(A)[i0..i0+mc, p0..p0+kc] into MR-row strips: dst[s·kc·MR + p·MR + r]; rows beyond mc are zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void PackA(float* dst, float* a, int lda, bool transA, int i0, int mc, int p0, int kc, int mr)
    {
        int sFrom = 0;
        if (transA && mr == 6 && mc >= 8 && Vector256.IsHardwareAccelerated)
        {
            // Transposed A: step p of every strip is in storage row p0 + p. Walk the storage rows (p outer) so each row's
            // mc floats are read once, sequentially, instead of once per strip down a column (a new cache line per
            // load; measured ~20 % of a weight-gradient GEMM, K = 3200). Strips whose 8-float load stays inside the
            // block's columns (s + 8 ≤ mc) go here; each store at stride 6 overruns by 2 into the next step's slots,
            // which the next row overwrites, except on the last step, stored exactly.
            int strips = (mc - 8) / 6 + 1;
            for (int p = 0; p < kc; p++)
            {
                float* src = a + (long)(p0 + p) * lda + i0;
                float* d = dst + p * 6;
                if (p + 8 < kc && Sse.IsSupported)
                {
                    // The row 8 steps ahead: rows sit lda apart, a stride the hardware prefetcher does not follow.
                    float* ahead = src + 8L * lda;
                    for (int off = 0; off < mc; off += 16) Sse.Prefetch0(ahead + off);
                    Sse.Prefetch0(ahead + mc - 1);
                }
                if (p + 1 < kc)
                    for (int st = 0; st < strips; st++)
                        Vector256.Store(Vector256.Load(src + st * 6), d + (long)st * 6 * kc);
                else
                    for (int st = 0; st < strips; st++)
                    {
                        float* o = d + (long)st * 6 * kc, q = src + st * 6;
                        Vector128.Store(Vector128.Load(q), o);
                        o[4] = q[4]; o[5] = q[5];
                    }
            }
            sFrom = strips * 6;
        }
        for (int s = sFrom; s < mc; s += mr)
        {
            int rows = Math.Min(mr, mc - s);
            float* d = dst + (long)s * kc;
            if (!transA)
            {
                float* src = a + (long)(i0 + s) * lda + p0;
                if (rows == 6 && mr == 6)
                {
                    float* s0 = src, s1 = src + lda, s2 = src + 2L * lda, s3 = src + 3L * lda, s4 = src + 4L * lda, s5 = src + 5L * lda;
                    int p = 0;
                    if (Avx.IsSupported)
                    {
                        // 8 k-steps at a time: transpose 6 (+2 zero) rows × 8 k to 8 k × 8 lanes; each 8-float store
                        // at d + p·6 overruns by 2 into the next k-step's slots, which the next store overwrites.
                        var z = Vector256<float>.Zero;
                        for (; p + 8 <= kc; p += 8)
                        {
                            Transpose8x8(Vector256.Load(s0 + p), Vector256.Load(s1 + p), Vector256.Load(s2 + p), Vector256.Load(s3 + p),
                                Vector256.Load(s4 + p), Vector256.Load(s5 + p), z, z, d + p * 6, 6);
                        }
                    }
                    for (; p < kc; p++)
                    {
                        float* dp = d + p * 6;
                        dp[0] = s0[p]; dp[1] = s1[p]; dp[2] = s2[p]; dp[3] = s3[p]; dp[4] = s4[p]; dp[5] = s5[p];
                    }
                }
                else
                {
                    for (int p = 0; p < kc; p++)
                    {
                        float* dp = d + p * mr;
                        int r = 0;
                        for (; r < rows; r++) dp[r] = src[(long)r * lda + p];
                        for (; r < mr; r++) dp[r] = 0f;
                    }
                }
            }
            else
            {
                for (int p = 0; p < kc; p++)
                {
                    float* src = a + (long)(p0 + p) * lda + i0 + s;
                    float* dp = d + p * mr;
                    int r = 0;
                    for (; r < rows; r++) dp[r] = src[r];
                    for (; r < mr; r++) dp[r] = 0f;
                }
            }
        }
    }

    /// <summary>Packs op(B)[p0..p0+kc, j0..j0+nc] into NR-column strips: dst[s·kc·NR + p·NR + j]; columns beyond nc are zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void PackB(float* dst, float* b, int ldb, bool transB, int p0, int kc, int j0, int nc, int nr)
    {
        int sFrom = 0;
        if (!transB && nr == 32 && nc >= 32 && Vector512.IsHardwareAccelerated)
        {
            // Full strips, storage rows outer: each row's nc floats are read once, sequentially (a strip-by-strip walk
            // down the columns starts a new cache line every row), with the row 8 steps ahead prefetched.
            int full = nc / 32 * 32;
            for (int p = 0; p < kc; p++)
            {
                float* src = b + (long)(p0 + p) * ldb + j0;
                if (p + 8 < kc && Sse.IsSupported)
                {
                    float* ahead = src + 8L * ldb;
                    for (int off = 0; off < full; off += 16) Sse.Prefetch0(ahead + off);
                }
                float* d = dst + p * 32;
                for (int st = 0; st < full; st += 32, d += (long)32 * kc)
                {
                    Vector512.Store(Vector512.Load(src + st), d);
                    Vector512.Store(Vector512.Load(src + st + 16), d + 16);
                }
            }
            sFrom = full;
        }
        for (int s = sFrom; s < nc; s += nr)
        {
            int cols = Math.Min(nr, nc - s);
            float* d = dst + (long)s * kc;
            if (!transB)
            {
                if (cols == nr && nr == 32 && Vector512.IsHardwareAccelerated)
                {
                    for (int p = 0; p < kc; p++)
                    {
                        float* src = b + (long)(p0 + p) * ldb + j0 + s;
                        Vector512.Store(Vector512.Load(src), d + p * 32);
                        Vector512.Store(Vector512.Load(src + 16), d + p * 32 + 16);
                    }
                }
                else
                {
                    for (int p = 0; p < kc; p++)
                    {
                        float* src = b + (long)(p0 + p) * ldb + j0 + s;
                        float* dp = d + p * nr;
                        int j = 0;
                        if (Vector256.IsHardwareAccelerated)
                            for (; j + 8 <= cols; j += 8) Vector256.Store(Vector256.Load(src + j), dp + j);
                        for (; j < cols; j++) dp[j] = src[j];
                        for (; j < nr; j++) dp[j] = 0f;
                    }
                }
            }
            else
            {
                if (nr % 8 == 0 && cols >= 8 && Avx.IsSupported)
                {
                    int full = cols & ~7;   // columns handled by 8×8 transposes; the rest (and padding) below
                    int p = 0;
                    for (; p + 8 <= kc; p += 8)
                        for (int jb = 0; jb < full; jb += 8)
                        {
                            float* src = b + (long)(j0 + s + jb) * ldb + p0 + p;
                            Transpose8x8(Vector256.Load(src), Vector256.Load(src + ldb), Vector256.Load(src + 2L * ldb), Vector256.Load(src + 3L * ldb),
                                Vector256.Load(src + 4L * ldb), Vector256.Load(src + 5L * ldb), Vector256.Load(src + 6L * ldb), Vector256.Load(src + 7L * ldb),
                                d + p * nr + jb, nr);
                        }
                    for (; p < kc; p++)
                        for (int j = 0; j < full; j++) d[p * nr + j] = b[(long)(j0 + s + j) * ldb + p0 + p];
                    for (int j = full; j < cols; j++)
                    {
                        float* src = b + (long)(j0 + s + j) * ldb + p0;
                        for (int q = 0; q < kc; q++) d[q * nr + j] = src[q];
                    }
                    if (cols < nr)
                        for (int q = 0; q < kc; q++) new Span<float>(d + q * nr + cols, nr - cols).Clear();
                    continue;
                }
                for (int j = 0; j < cols; j++)
                {
                    float* src = b + (long)(j0 + s + j) * ldb + p0;
                    for (int p = 0; p < kc; p++) d[p * nr + j] = src[p];
                }
                for (int j = cols; j < nr; j++)
                    for (int p = 0; p < kc; p++) d[p * nr + j] = 0f;
            }
        }
    }

    /// <summary>Transposes the 8×8 block whose rows are r0..r7 and stores its row i (= column i of the input) at dst + i·stride, i ascending.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose8x8(Vector256<float> r0, Vector256<float> r1, Vector256<float> r2, Vector256<float> r3,
        Vector256<float> r4, Vector256<float> r5, Vector256<float> r6, Vector256<float> r7, float* dst, int stride)
    {
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        Vector256.Store(Avx.Permute2x128(u0, u4, 0x20), dst);
        Vector256.Store(Avx.Permute2x128(u1, u5, 0x20), dst + stride);
        Vector256.Store(Avx.Permute2x128(u2, u6, 0x20), dst + 2 * stride);
        Vector256.Store(Avx.Permute2x128(u3, u7, 0x20), dst + 3 * stride);
        Vector256.Store(Avx.Permute2x128(u0, u4, 0x31), dst + 4 * stride);
        Vector256.Store(Avx.Permute2x128(u1, u5, 0x31), dst + 5 * stride);
        Vector256.Store(Avx.Permute2x128(u2, u6, 0x31), dst + 6 * stride);
        Vector256.Store(Avx.Permute2x128(u3, u7, 0x31), dst + 7 * stride);
    }

    /// <summary>Scalar 4×4 micro-kernel for hardware without SIMD acceleration.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void KernelScalar(int kc, float* pa, float* pb, float* c, nint ldc, float alpha, float beta)
    {
        float* acc = stackalloc float[MrScalar * NrScalar];
        for (int i = 0; i < MrScalar * NrScalar; i++) acc[i] = 0f;
        for (int p = 0; p < kc; p++)
        {
            for (int r = 0; r < MrScalar; r++)
            {
                float ar = pa[r];
                for (int j = 0; j < NrScalar; j++) acc[r * NrScalar + j] += ar * pb[j];
            }
            pa += MrScalar; pb += NrScalar;
        }
        for (int r = 0; r < MrScalar; r++)
            for (int j = 0; j < NrScalar; j++)
                c[r * ldc + j] = beta == 0f ? alpha * acc[r * NrScalar + j] : alpha * acc[r * NrScalar + j] + beta * c[r * ldc + j];
    }

    // ---------------------------------------------------------------- small / degenerate problems

    static void ScaleC(float* c, int ldc, int m, int n, float beta)
    {
        for (int i = 0; i < m; i++)
        {
            float* row = c + (long)i * ldc;
            if (beta == 0f) new Span<float>(row, n).Clear();
            else if (beta != 1f) for (int j = 0; j < n; j++) row[j] *= beta;
        }
    }

    /// <summary>Unpacked path for tiny problems: row-wise AXPY over op(B) rows, or dot products when op(B) is transposed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Direct(float* c, int ldc, float* a, int lda, bool transA, float* b, int ldb, bool transB,
        int m, int n, int k, float alpha, float beta)
    {
        for (int i = 0; i < m; i++)
        {
            float* crow = c + (long)i * ldc;
            if (!transB)
            {
                if (beta == 0f) new Span<float>(crow, n).Clear();
                else if (beta != 1f) for (int j = 0; j < n; j++) crow[j] *= beta;
                for (int p = 0; p < k; p++)
                {
                    float av = alpha * (transA ? a[(long)p * lda + i] : a[(long)i * lda + p]);
                    float* brow = b + (long)p * ldb;
                    int j = 0;
                    if (Vector256.IsHardwareAccelerated)
                    {
                        var va = Vector256.Create(av);
                        for (; j + 8 <= n; j += 8)
                            Vector256.Store(Vector256.Load(crow + j) + va * Vector256.Load(brow + j), crow + j);
                    }
                    for (; j < n; j++) crow[j] += av * brow[j];
                }
            }
            else
            {
                for (int j = 0; j < n; j++)
                {
                    float* bcol = b + (long)j * ldb;
                    float s = 0f;
                    int p = 0;
                    if (!transA && Vector256.IsHardwareAccelerated)
                    {
                        float* arow = a + (long)i * lda;
                        var acc = Vector256<float>.Zero;
                        for (; p + 8 <= k; p += 8) acc += Vector256.Load(arow + p) * Vector256.Load(bcol + p);
                        s = Vector256.Sum(acc);
                        for (; p < k; p++) s += arow[p] * bcol[p];
                    }
                    else
                    {
                        for (; p < k; p++) s += (transA ? a[(long)p * lda + i] : a[(long)i * lda + p]) * bcol[p];
                    }
                    crow[j] = beta == 0f ? alpha * s : alpha * s + beta * crow[j];
                }
            }
        }
    }
}
