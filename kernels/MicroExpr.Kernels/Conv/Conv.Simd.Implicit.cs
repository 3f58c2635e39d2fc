using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MicroExpr.Kernels;

/// <summary>
/// The forward convolution as an implicit GEMM over stride phases (Vector512, and Vector256 with the strip's tile as two
/// 6×16 halves, <see cref="ForwardTile"/>; see the choice in <see cref="ConvSimd"/>'s remarks). For one sample n and group g:
/// <code>
/// xph [S, Cg, Dph, Hph, Wph]   the zero-padded input split into S = sd·sh·sw stride phases: phase (pz, py, px) holds
///                               padded input (i·sd + pz, j·sh + py, l·sw + px) at (i, j, l); Dph = Do + ⌊(kd − 1)·dd / sd⌋,
///                               Hph = Ho + ⌊(kh − 1)·dh / sh⌋, Wph = Wo + ⌊(kw − 1)·dw / sw⌋
/// grid q = oz·Hph·Wph + oy·Wph + ox   output positions on the phase plane's grid (columns ox ≥ Wo and rows oy ≥ Ho are
///                               computed and dropped: the cost of reading B in place, 7 % at 28 px, 5 % for the stem)
/// off[k], k = (c, kz, ky, kx)   where tap k of grid position q reads: xph[off[k] + q], off[k] = (phase(k)·Cg + c)·plane
///                               + ⌊kz·dd / sd⌋·Hph·Wph + ⌊ky·dh / sh⌋·Wph + ⌊kx·dw / sw⌋
/// out[co, q] = Σ_k w[co, k] · xph[off[k] + q]
/// </code>
/// so the GEMM's B row k at columns q..q+31 is one contiguous run of xph: the 8×32 register tile (eight output channels,
/// 32 grid positions, 16 Vector512 accumulators) reads w in place (eight rows, one broadcast each per k) and B at
/// xph + off[k] + q (two loads), over all of K at once: no im2col buffer, no packing of B, C written once. The grid outputs
/// of a block of output rows (at most 384 KiB, so they are still in L2) are then copied into y with the bias and ReLU.
/// </summary>
public static unsafe partial class ConvSimd
{
    /// <summary>Testing and probing hook: when true, the forward never takes the implicit phase GEMM.</summary>
    [ThreadStatic] internal static bool NoImplicit;

    /// <summary>Strip of grid positions per register tile (two Vector512).</summary>
    private const int Strip = 32;

    /// <summary>Grid outputs held before they are copied into y: 96 Ki floats = 384 KiB of the 1 MiB L2.</summary>
    private const int OutBudget = 96 * 1024;

    /// <summary>Whether <see cref="Forward"/> takes the implicit phase GEMM: Vector512 or Vector256 (<see cref="SimdIsaSelect"/>),
    /// not pointwise (a plain GEMM), and at least 8 output channels per group (the tile is 6 channels tall; depthwise would
    /// use one row in six).</summary>
    internal static bool UsesImplicit(in ConvGeometry g) =>
        !NoImplicit && SimdIsaSelect.Current >= SimdIsa.V256 && !g.IsPointwise && g.Coutg >= 8;

    /// <summary>Output channels per forward tile: 8 on Vector512 (<see cref="Kernel8x32"/>), 6 on Vector256.</summary>
    private static int TileRows(bool v512) => v512 ? 8 : 6;

    /// <summary>
    /// The forward tile at the current width, <see cref="TileRows"/> output channels by a 32-position strip:
    /// <see cref="Kernel8x32"/> on Vector512; on Vector256 the strip as two 6×16 halves (<see cref="Kernel6x16"/>: 12
    /// Vector256 accumulators, 2 B loads and 6 broadcasts, 15 of AVX2's 16 registers; a 6×32 tile of Vector256 would need
    /// 24 accumulators). Same sums in the same order per element whatever the block height, so the two widths give
    /// identical results.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ForwardTile(bool v512, int kc, float* a, nint lda, int* off, float* b, float* c, nint ldc, int rows)
    {
        if (v512) Kernel8x32(kc, a, lda, off, b, c, ldc, rows);
        else
        {
            Kernel6x16(kc, a, lda, off, b, c, ldc, rows);
            Kernel6x16(kc, a, lda, off, b + 16, c + 16, ldc, rows);
        }
    }

    /// <summary>The backward weight's transposed tile at the current width (<see cref="KernelT6x32"/>; on Vector256 two
    /// <see cref="KernelT6x16"/> halves of 16 output channels).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TileT6x32(bool v512, int qc, float* xph, int* off, int rows, float* b, nint bStep, float* c, nint ldc, float beta)
    {
        if (v512) KernelT6x32(qc, xph, off, rows, b, bStep, c, ldc, beta);
        else
        {
            KernelT6x16(qc, xph, off, rows, b, bStep, c, ldc, beta);
            KernelT6x16(qc, xph, off, rows, b + 16, bStep, c + 16, ldc, beta);
        }
    }

    /// <summary>The phase planes' sizes for <paramref name="g"/> (see the type's summary).</summary>
    private readonly struct PhaseLayout
    {
        public readonly int Dph, Hph, Wph, Phases, Plane, Q, Ldc;
        public readonly long XphFloats;

        public PhaseLayout(in ConvGeometry g)
        {
            Dph = g.Do + (g.Kd - 1) * g.Dd / g.Sd;
            Hph = g.Ho + (g.Kh - 1) * g.Dh / g.Sh;
            Wph = g.Wo + (g.Kw - 1) * g.Dw / g.Sw;
            Phases = g.Sd * g.Sh * g.Sw;
            Plane = Dph * Hph * Wph;
            Q = (g.Do - 1) * Hph * Wph + (g.Ho - 1) * Wph + g.Wo;
            Ldc = (Q + Strip - 1) / Strip * Strip;
            // Reads reach q + off[k] < Ldc + Phases·Cg·Plane: a zeroed tail of Ldc floats (and a vector of slack).
            XphFloats = (long)Phases * g.Cg * Plane + Ldc + 16;
        }
    }

    /// <summary>The forward by the implicit phase GEMM (<see cref="UsesImplicit"/> must hold).</summary>
    private static void ForwardImplicit(float* y, float* x, float* w, float* b, in ConvGeometry g, bool relu, int threads)
    {
        var lay = new PhaseLayout(g);
        // off[k] is the same for every sample: built once, on the calling thread's scratch, read by every part.
        int* off = (int*)ThreadScratch.Get(ScratchSlot.ConvOffsets, g.Kg);
        BuildOffsets(off, g, lay);
        int rowsOut = g.Do * g.Ho, planes = g.N * g.Groups;
        // Enough parts for the threads: whole (sample, group) planes, or, with fewer planes than threads, each plane
        // cut into blocks of output rows (a block recomputes the phase split; its strips may overlap its neighbour's).
        int blocks = planes >= threads ? 1 : Math.Min(rowsOut, (threads + planes - 1) / planes);
        var work = new ImplicitWork { Y = y, X = x, W = w, B = b, G = g, Lay = lay, Off = off, Relu = relu, Blocks = blocks };
        long items = (long)planes * blocks;
        WorkSplit.Run(ref work, items, (int)Math.Min(items, Math.Max(1, threads)), threads);
    }

    private struct ImplicitWork : IPartWork
    {
        public float* Y, X, W, B;
        public int* Off;
        public ConvGeometry G;
        public PhaseLayout Lay;
        public bool Relu;
        public int Blocks;

        public readonly void Run(int part, long start, long end)
        {
            for (long i = start; i < end; i++)
            {
                int plane = (int)(i / Blocks), block = (int)(i % Blocks);
                int n = plane / G.Groups, grp = plane % G.Groups;
                int rows = G.Do * G.Ho;
                ImplicitPlane(Y, X, W, B, G, Lay, Off, Relu, n, grp, (int)((long)rows * block / Blocks), (int)((long)rows * (block + 1) / Blocks));
            }
        }
    }

    /// <summary>
    /// Backward data at stride 1 as a forward convolution: dx = conv(dy, w′) with w′[g·Cg + c, co, t′] = w[g·Coutg + co, c, T − 1 − t]
    /// (channels swapped within each group, taps reversed), padding d·(k − 1) − p, the same dilation; so it runs on the
    /// implicit phase GEMM too. Returns false (doing nothing) where that does not apply: a stride above 1, a padding above
    /// d·(k − 1), or a transposed geometry the implicit GEMM does not take.
    /// </summary>
    private static bool TryBackwardDataImplicit(float* dx, float* dy, float* w, in ConvGeometry g, int threads)
    {
        if (g.Sd != 1 || g.Sh != 1 || g.Sw != 1 || g.IsPointwise) return false;
        int pd = g.Dd * (g.Kd - 1) - g.Pd, ph = g.Dh * (g.Kh - 1) - g.Ph, pw = g.Dw * (g.Kw - 1) - g.Pw;
        if (pd < 0 || ph < 0 || pw < 0) return false;
        var t = new ConvGeometry
        {
            N = g.N, Cin = g.Cout, Cout = g.Cin, Groups = g.Groups, D = g.Do, H = g.Ho, W = g.Wo,
            Kd = g.Kd, Kh = g.Kh, Kw = g.Kw, Sd = 1, Sh = 1, Sw = 1, Pd = pd, Ph = ph, Pw = pw, Dd = g.Dd, Dh = g.Dh, Dw = g.Dw,
            Do = g.D, Ho = g.H, Wo = g.W,
        };
        if (!UsesImplicit(t)) return false;
        int cg = g.Cg, coutg = g.Coutg, kvol = g.KVol;
        float* wt = ThreadScratch.Get(ScratchSlot.ConvWeightT, g.WLength);
        for (int grp = 0; grp < g.Groups; grp++)
            for (int co = 0; co < coutg; co++)
                for (int c = 0; c < cg; c++)
                {
                    float* src = w + ((long)(grp * coutg + co) * cg + c) * kvol;
                    float* dst = wt + ((long)(grp * cg + c) * coutg + co) * kvol;
                    for (int k = 0; k < kvol; k++) dst[k] = src[kvol - 1 - k];
                }
        if (UsesWinograd(t)) ForwardWinograd(dx, dy, wt, null, t, false, threads);
        else ForwardImplicit(dx, dy, wt, null, t, false, threads);
        return true;
    }

    /// <summary>
    /// Backward weight on the phase grid: dW_g[co, k] = Σ_n Σ_q dy_g[n, co, q] · xph_n[off[k] + q], with dy placed on the
    /// grid (zero at the dropped positions), computed transposed, dWᵀ[k, co], by a 6×32 tile of six rows k (each read in
    /// place, contiguous in q, from the phase planes) by 32 output channels (a row of dyᵀ [Q, Coutg rounded up to 32]),
    /// accumulated over all of Q and every sample in registers and the thread's dWᵀ block. Split over (group, block of
    /// rows k) as the im2col version: a thread owns its rows of dW, so the result does not depend on the thread count.
    /// Each part splits the phases of its own channels and transposes dy (8×8 AVX transposes) per sample; Q is walked in
    /// blocks whose dyᵀ rows stay in L2 (the stem's dyᵀ is 845 KiB per sample: 1.4× → 3.0× over im2col once blocked). Unlike the reference, a non-finite input read only by
    /// a dropped grid position meets a zero of dy there and gives NaN (0·∞) in dW; finite inputs give the same sums.
    /// </summary>
    private static void BackwardWeightImplicit(float* dw, float* dy, float* x, in ConvGeometry g, int threads)
    {
        var lay = new PhaseLayout(g);
        int* off = (int*)ThreadScratch.Get(ScratchSlot.ConvOffsets, g.Kg);
        BuildOffsets(off, g, lay);
        int kg = g.Kg;
        int blocksPerGroup = Math.Max(1, Math.Min((kg + 5) / 6, (threads + g.Groups - 1) / g.Groups));
        int rowsPerBlock = ((kg + blocksPerGroup - 1) / blocksPerGroup + 5) / 6 * 6;
        blocksPerGroup = (kg + rowsPerBlock - 1) / rowsPerBlock;
        var work = new WeightWork { Dw = dw, Dy = dy, X = x, G = g, Lay = lay, Off = off, BlocksPerGroup = blocksPerGroup, RowsPerBlock = rowsPerBlock };
        int items = g.Groups * blocksPerGroup;
        WorkSplit.Run(ref work, items, Math.Min(items, Math.Max(1, threads)), threads);
    }

    private struct WeightWork : IPartWork
    {
        public float* Dw, Dy, X;
        public int* Off;
        public ConvGeometry G;
        public PhaseLayout Lay;
        public int BlocksPerGroup, RowsPerBlock;

        public readonly void Run(int part, long start, long end)
        {
            for (long i = start; i < end; i++)
            {
                int grp = (int)(i / BlocksPerGroup), k0 = (int)(i % BlocksPerGroup) * RowsPerBlock;
                WeightRows(Dw, Dy, X, G, Lay, Off, grp, k0, Math.Min(G.Kg, k0 + RowsPerBlock));
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WeightRows(float* dw, float* dy, float* x, in ConvGeometry g, in PhaseLayout lay, int* off, int grp, int k0, int k1)
    {
        int cg = g.Cg, coutg = g.Coutg, kg = g.Kg, q = lay.Q, hw = lay.Hph * lay.Wph, p = g.P, wo = g.Wo;
        int ldt = (coutg + Strip - 1) / Strip * Strip, rows = k1 - k0;
        float* xph = ThreadScratch.Get(ScratchSlot.ConvCol, lay.XphFloats);
        float* dyT = ThreadScratch.Get(ScratchSlot.ConvDyT, (long)q * ldt);
        float* acc = ThreadScratch.Get(ScratchSlot.ConvOut, (long)rows * ldt);
        float* tile = stackalloc float[6 * Strip];
        bool v512 = SimdIsaSelect.Current == SimdIsa.V512;
        new Span<float>(dyT, q * ldt).Clear();
        for (int n = 0; n < g.N; n++)
        {
            // Only the channels of rows k0..k1 are read.
            SplitPhases(xph, x + ((long)n * g.Cin + (long)grp * cg) * g.Pin, g, lay, k0 / g.KVol, (k1 - 1) / g.KVol + 1);
            // dyᵀ on the grid: row q holds dy[n, g·Coutg + co, position of q] at column co (the dropped rows stay zero).
            float* dyg = dy + ((long)n * g.Cout + (long)grp * coutg) * p;
            int co8 = Avx.IsSupported ? coutg & ~7 : 0, wo8 = wo & ~7;
            for (int r = 0; r < g.Do * g.Ho; r++)
            {
                int oz = r / g.Ho, oy = r - oz * g.Ho;
                float* drow = dyT + (long)(oz * hw + oy * lay.Wph) * ldt;
                float* srow = dyg + (long)r * wo;
                // 8 channels × 8 positions per 8×8 transpose, then the channel and position tails.
                for (int co = 0; co < co8; co += 8)
                {
                    float* s = srow + (long)co * p;
                    for (int ox = 0; ox < wo8; ox += 8)
                        GemmSimd.Transpose8x8(Vector256.Load(s + ox), Vector256.Load(s + p + ox), Vector256.Load(s + 2L * p + ox),
                            Vector256.Load(s + 3L * p + ox), Vector256.Load(s + 4L * p + ox), Vector256.Load(s + 5L * p + ox),
                            Vector256.Load(s + 6L * p + ox), Vector256.Load(s + 7L * p + ox), drow + (long)ox * ldt + co, ldt);
                    for (int ox = wo8; ox < wo; ox++)
                        for (int j = 0; j < 8; j++) drow[(long)ox * ldt + co + j] = s[(long)j * p + ox];
                }
                for (int co = co8; co < coutg; co++)
                {
                    float* s = srow + (long)co * p;
                    for (int ox = 0; ox < wo; ox++) drow[(long)ox * ldt + co] = s[ox];
                }
            }
            // Q in blocks whose dyᵀ rows stay in L2 (256 KiB) while every k strip passes over them.
            int qb = Math.Max(Strip, 65536 / ldt);
            for (int qs = 0; qs < q; qs += qb)
            {
                int qc = Math.Min(qb, q - qs);
                bool first = n == 0 && qs == 0;
                for (int k = k0; k < k1; k += 6)
                {
                    int kr = Math.Min(6, k1 - k);
                    for (int c0 = 0; c0 < ldt; c0 += Strip)
                    {
                        float* cij = acc + (long)(k - k0) * ldt + c0;
                        TileT6x32(v512, qc, xph + qs, off + k, kr, dyT + (long)qs * ldt + c0, ldt, kr == 6 ? cij : tile, kr == 6 ? ldt : Strip,
                            first || kr < 6 ? 0f : 1f);
                        if (kr < 6)
                            for (int r = 0; r < kr; r++)
                                for (int j = 0; j < Strip; j++)
                                    cij[(long)r * ldt + j] = first ? tile[r * Strip + j] : cij[(long)r * ldt + j] + tile[r * Strip + j];
                    }
                }
            }
        }
        // dW_g[co, k] = dWᵀ[k, co].
        float* dwg = dw + (long)grp * coutg * kg;
        for (int co = 0; co < coutg; co++)
            for (int k = k0; k < k1; k++) dwg[(long)co * kg + k] = acc[(long)(k - k0) * ldt + co];
    }

    /// <summary>
    /// C[r, 0..32) = beta·C + Σ_{i &lt; qc} xph[off[r] + i] · b[i·bStep + 0..32) for r &lt; rows (rows 1..6; the missing
    /// rows repeat the last and are not stored); beta is 0 (overwrite, C not read) or 1.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void KernelT6x32(int qc, float* xph, int* off, int rows, float* b, nint bStep, float* c, nint ldc, float beta)
    {
        float* a0p = xph + off[0];
        float* a1p = xph + off[Math.Min(1, rows - 1)];
        float* a2p = xph + off[Math.Min(2, rows - 1)];
        float* a3p = xph + off[Math.Min(3, rows - 1)];
        float* a4p = xph + off[Math.Min(4, rows - 1)];
        float* a5p = xph + off[Math.Min(5, rows - 1)];
        var c0_0 = Vector512<float>.Zero; var c0_1 = Vector512<float>.Zero;
        var c1_0 = Vector512<float>.Zero; var c1_1 = Vector512<float>.Zero;
        var c2_0 = Vector512<float>.Zero; var c2_1 = Vector512<float>.Zero;
        var c3_0 = Vector512<float>.Zero; var c3_1 = Vector512<float>.Zero;
        var c4_0 = Vector512<float>.Zero; var c4_1 = Vector512<float>.Zero;
        var c5_0 = Vector512<float>.Zero; var c5_1 = Vector512<float>.Zero;
        for (int i = 0; i < qc; i++)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            var a0 = Vector512.Create(a0p[i]);
            c0_0 = Avx512F.FusedMultiplyAdd(a0, b0, c0_0);
            c0_1 = Avx512F.FusedMultiplyAdd(a0, b1, c0_1);
            var a1 = Vector512.Create(a1p[i]);
            c1_0 = Avx512F.FusedMultiplyAdd(a1, b0, c1_0);
            c1_1 = Avx512F.FusedMultiplyAdd(a1, b1, c1_1);
            var a2 = Vector512.Create(a2p[i]);
            c2_0 = Avx512F.FusedMultiplyAdd(a2, b0, c2_0);
            c2_1 = Avx512F.FusedMultiplyAdd(a2, b1, c2_1);
            var a3 = Vector512.Create(a3p[i]);
            c3_0 = Avx512F.FusedMultiplyAdd(a3, b0, c3_0);
            c3_1 = Avx512F.FusedMultiplyAdd(a3, b1, c3_1);
            var a4 = Vector512.Create(a4p[i]);
            c4_0 = Avx512F.FusedMultiplyAdd(a4, b0, c4_0);
            c4_1 = Avx512F.FusedMultiplyAdd(a4, b1, c4_1);
            var a5 = Vector512.Create(a5p[i]);
            c5_0 = Avx512F.FusedMultiplyAdd(a5, b0, c5_0);
            c5_1 = Avx512F.FusedMultiplyAdd(a5, b1, c5_1);
            b += bStep;
        }
        if (beta != 0f)
        {
            c0_0 += Vector512.Load(c); c0_1 += Vector512.Load(c + 16);
            if (rows > 1) { c1_0 += Vector512.Load(c + ldc); c1_1 += Vector512.Load(c + ldc + 16); }
            if (rows > 2) { c2_0 += Vector512.Load(c + 2 * ldc); c2_1 += Vector512.Load(c + 2 * ldc + 16); }
            if (rows > 3) { c3_0 += Vector512.Load(c + 3 * ldc); c3_1 += Vector512.Load(c + 3 * ldc + 16); }
            if (rows > 4) { c4_0 += Vector512.Load(c + 4 * ldc); c4_1 += Vector512.Load(c + 4 * ldc + 16); }
            if (rows > 5) { c5_0 += Vector512.Load(c + 5 * ldc); c5_1 += Vector512.Load(c + 5 * ldc + 16); }
        }
        Vector512.Store(c0_0, c); Vector512.Store(c0_1, c + 16);
        if (rows > 1) { Vector512.Store(c1_0, c + ldc); Vector512.Store(c1_1, c + ldc + 16); }
        if (rows > 2) { Vector512.Store(c2_0, c + 2 * ldc); Vector512.Store(c2_1, c + 2 * ldc + 16); }
        if (rows > 3) { Vector512.Store(c3_0, c + 3 * ldc); Vector512.Store(c3_1, c + 3 * ldc + 16); }
        if (rows > 4) { Vector512.Store(c4_0, c + 4 * ldc); Vector512.Store(c4_1, c + 4 * ldc + 16); }
        if (rows > 5) { Vector512.Store(c5_0, c + 5 * ldc); Vector512.Store(c5_1, c + 5 * ldc + 16); }
    }

    /// <summary>off[k] for k = (c, kz, ky, kx) over one group's Kg (see the type's summary).</summary>
    private static void BuildOffsets(int* off, in ConvGeometry g, in PhaseLayout lay)
    {
        int k = 0;
        for (int c = 0; c < g.Cg; c++)
            for (int kz = 0; kz < g.Kd; kz++)
                for (int ky = 0; ky < g.Kh; ky++)
                    for (int kx = 0; kx < g.Kw; kx++, k++)
                    {
                        int ez = kz * g.Dd, ey = ky * g.Dh, ex = kx * g.Dw;
                        int phase = (ez % g.Sd * g.Sh + ey % g.Sh) * g.Sw + ex % g.Sw;
                        off[k] = (phase * g.Cg + c) * lay.Plane + ez / g.Sd * lay.Hph * lay.Wph + ey / g.Sh * lay.Wph + ex / g.Sw;
                    }
    }

    /// <summary>Output rows r0..r1 (r = oz·Ho + oy) of every output channel of group grp of sample n.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ImplicitPlane(float* y, float* x, float* w, float* b, in ConvGeometry g, in PhaseLayout lay, int* off, bool relu,
        int n, int grp, int r0, int r1)
    {
        if (r0 >= r1) return;
        int cg = g.Cg, coutg = g.Coutg, kg = g.Kg, hw = lay.Hph * lay.Wph;
        float* xph = ThreadScratch.Get(ScratchSlot.ConvCol, lay.XphFloats);
        SplitPhases(xph, x + ((long)n * g.Cin + (long)grp * cg) * g.Pin, g, lay);
        // Sub-blocks of output rows whose grid outputs [Coutg, span] stay in L2 (OutBudget floats) until copied into y;
        // a strip shared by two sub-blocks is computed by both.
        int rowsPer = Math.Max(1, OutBudget / Math.Max(1, coutg * lay.Wph));
        float* wg = w + (long)grp * coutg * kg;
        bool v512 = SimdIsaSelect.Current == SimdIsa.V512;
        int tileRows = TileRows(v512);
        float* tile = stackalloc float[8 * Strip];
        int p = g.P, wo = g.Wo;
        for (int ra = r0; ra < r1; ra += rowsPer)
        {
            int rb = Math.Min(r1, ra + rowsPer);
            // The strips covering grid positions of rows ra..rb.
            int qa = ra / g.Ho * hw + ra % g.Ho * lay.Wph;
            int qb = (rb - 1) / g.Ho * hw + (rb - 1) % g.Ho * lay.Wph + g.Wo;
            int s0 = qa / Strip * Strip, s1 = (qb + Strip - 1) / Strip * Strip, ldc = s1 - s0;
            float* cs = ThreadScratch.Get(ScratchSlot.ConvOut, (long)coutg * ldc);
            for (int q0 = s0; q0 < s1; q0 += Strip)
            {
                float* bq = xph + q0;
                float* cq = cs + (q0 - s0);
                for (int co = 0; co < coutg; co += tileRows)
                {
                    int rows = Math.Min(tileRows, coutg - co);
                    if (rows == tileRows) ForwardTile(v512, kg, wg + (long)co * kg, kg, off, bq, cq + (long)co * ldc, ldc, rows);
                    else
                    {
                        ForwardTile(v512, kg, wg + (long)co * kg, kg, off, bq, tile, Strip, rows);
                        for (int r = 0; r < rows; r++)
                        {
                            Vector512.Store(Vector512.Load(tile + r * Strip), cq + (long)(co + r) * ldc);
                            Vector512.Store(Vector512.Load(tile + r * Strip + 16), cq + (long)(co + r) * ldc + 16);
                        }
                    }
                }
            }
            // Valid positions into y, with the bias and ReLU.
            for (int co = 0; co < coutg; co++)
            {
                int oc = grp * coutg + co;
                float bias = b == null ? 0f : b[oc];
                float* src = cs + (long)co * ldc - s0;
                float* dst = y + ((long)n * g.Cout + oc) * p;
                for (int r = ra; r < rb; r++)
                {
                    int oz = r / g.Ho, oy = r - oz * g.Ho;
                    RowOut(dst + (long)r * wo, src + oz * hw + oy * lay.Wph, wo, bias, relu);
                }
            }
        }
    }

    /// <summary>dst[0..n) = f(src + bias), f = ReLU (max with 0) when relu.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RowOut(float* dst, float* src, int n, float bias, bool relu)
    {
        var vb = Vector512.Create(bias);
        int i = 0;
        if (relu)
        {
            for (; i + 16 <= n; i += 16) Vector512.Store(Vector512.Max(Vector512.Load(src + i) + vb, Vector512<float>.Zero), dst + i);
            for (; i < n; i++) dst[i] = MathF.Max(src[i] + bias, 0f);
        }
        else
        {
            for (; i + 16 <= n; i += 16) Vector512.Store(Vector512.Load(src + i) + vb, dst + i);
            for (; i < n; i++) dst[i] = src[i] + bias;
        }
    }

    /// <summary>The sample's group channels x [Cg, D, H, W] (channels c0..c1 of them; all by default) into the zero-padded
    /// stride phases xph (see the type's summary), and the zero tail after them.</summary>
    private static void SplitPhases(float* xph, float* xg, in ConvGeometry g, in PhaseLayout lay, int c0 = 0, int c1 = -1)
    {
        if (c1 < 0) c1 = g.Cg;
        int wph = lay.Wph, sw = g.Sw, pw = g.Pw, wd = g.W;
        long planes = (long)lay.Phases * g.Cg * lay.Plane;
        new Span<float>(xph + planes, (int)(lay.XphFloats - planes)).Clear();
        for (int pz = 0; pz < g.Sd; pz++)
            for (int py = 0; py < g.Sh; py++)
                for (int px = 0; px < sw; px++)
                {
                    // A phase no tap reads (1×1/2: only phase 0) is left as it is.
                    if (!TapHits(pz, g.Kd, g.Dd, g.Sd) || !TapHits(py, g.Kh, g.Dh, g.Sh) || !TapHits(px, g.Kw, g.Dw, sw)) continue;
                    int phase = (pz * g.Sh + py) * sw + px;
                    // Columns l with input column l·sw + px − pw inside [0, W): [la, lb).
                    int la = Math.Max(0, (pw - px + sw - 1) / sw), lb = Math.Min(wph, (wd - 1 + pw - px) / sw + 1);
                    if (lb < la) lb = la;
                    for (int c = c0; c < c1; c++)
                    {
                        float* dstC = xph + ((long)phase * g.Cg + c) * lay.Plane;
                        float* srcC = xg + (long)c * g.Pin;
                        for (int i = 0; i < lay.Dph; i++)
                        {
                            int z = i * g.Sd + pz - g.Pd;
                            for (int j = 0; j < lay.Hph; j++)
                            {
                                int yy = j * g.Sh + py - g.Ph;
                                float* dst = dstC + ((long)i * lay.Hph + j) * wph;
                                if ((uint)z >= (uint)g.D || (uint)yy >= (uint)g.H)
                                {
                                    new Span<float>(dst, wph).Clear();
                                    continue;
                                }
                                float* src = srcC + ((long)z * g.H + yy) * wd + px - pw;   // src[l·sw] = input column l·sw + px − pw
                                for (int l = 0; l < la; l++) dst[l] = 0f;
                                if (sw == 1)
                                {
                                    int len = lb - la, t = 0;
                                    float* s = src + la, d = dst + la;
                                    for (; t + 16 <= len; t += 16) Vector512.Store(Vector512.Load(s + t), d + t);
                                    for (; t < len; t++) d[t] = s[t];
                                }
                                else
                                {
                                    for (int l = la; l < lb; l++) dst[l] = src[(long)l * sw];
                                }
                                for (int l = lb; l < wph; l++) dst[l] = 0f;
                            }
                        }
                    }
                }
    }

    /// <summary>Whether some tap t &lt; k along an axis reads phase r: t·dil mod stride = r.</summary>
    private static bool TapHits(int r, int k, int dil, int stride)
    {
        for (int t = 0; t < k; t++)
            if (t * dil % stride == r) return true;
        return false;
    }

    /// <summary>
    /// C[r, 0..32) = Σ_k a[r·lda + k] · b[off[k] + 0..32) for r &lt; rows (rows 1..8; rows past it are computed from the
    /// last row and not stored), C row stride ldc, overwritten. 16 Vector512 accumulators, 2 B loads and 8 broadcasts per
    /// 16 FMAs (19 of AVX-512's 32 registers); 64 and 128 output channels are whole 8-row blocks (6-row blocks compute 66
    /// and 132 rows). See <see cref="ConvSimd"/>'s remarks for the choice.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel8x32(int kc, float* a, nint lda, int* off, float* b, float* c, nint ldc, int rows)
    {
        float* a0p = a;
        float* a1p = a + Math.Min(1, rows - 1) * lda;
        float* a2p = a + Math.Min(2, rows - 1) * lda;
        float* a3p = a + Math.Min(3, rows - 1) * lda;
        float* a4p = a + Math.Min(4, rows - 1) * lda;
        float* a5p = a + Math.Min(5, rows - 1) * lda;
        float* a6p = a + Math.Min(6, rows - 1) * lda;
        float* a7p = a + Math.Min(7, rows - 1) * lda;
        var c0_0 = Vector512<float>.Zero; var c0_1 = Vector512<float>.Zero;
        var c1_0 = Vector512<float>.Zero; var c1_1 = Vector512<float>.Zero;
        var c2_0 = Vector512<float>.Zero; var c2_1 = Vector512<float>.Zero;
        var c3_0 = Vector512<float>.Zero; var c3_1 = Vector512<float>.Zero;
        var c4_0 = Vector512<float>.Zero; var c4_1 = Vector512<float>.Zero;
        var c5_0 = Vector512<float>.Zero; var c5_1 = Vector512<float>.Zero;
        var c6_0 = Vector512<float>.Zero; var c6_1 = Vector512<float>.Zero;
        var c7_0 = Vector512<float>.Zero; var c7_1 = Vector512<float>.Zero;
        for (int p = 0; p < kc; p++)
        {
            float* pb = b + off[p];
            var b0 = Vector512.Load(pb);
            var b1 = Vector512.Load(pb + 16);
            var a0 = Vector512.Create(a0p[p]);
            c0_0 = Avx512F.FusedMultiplyAdd(a0, b0, c0_0);
            c0_1 = Avx512F.FusedMultiplyAdd(a0, b1, c0_1);
            var a1 = Vector512.Create(a1p[p]);
            c1_0 = Avx512F.FusedMultiplyAdd(a1, b0, c1_0);
            c1_1 = Avx512F.FusedMultiplyAdd(a1, b1, c1_1);
            var a2 = Vector512.Create(a2p[p]);
            c2_0 = Avx512F.FusedMultiplyAdd(a2, b0, c2_0);
            c2_1 = Avx512F.FusedMultiplyAdd(a2, b1, c2_1);
            var a3 = Vector512.Create(a3p[p]);
            c3_0 = Avx512F.FusedMultiplyAdd(a3, b0, c3_0);
            c3_1 = Avx512F.FusedMultiplyAdd(a3, b1, c3_1);
            var a4 = Vector512.Create(a4p[p]);
            c4_0 = Avx512F.FusedMultiplyAdd(a4, b0, c4_0);
            c4_1 = Avx512F.FusedMultiplyAdd(a4, b1, c4_1);
            var a5 = Vector512.Create(a5p[p]);
            c5_0 = Avx512F.FusedMultiplyAdd(a5, b0, c5_0);
            c5_1 = Avx512F.FusedMultiplyAdd(a5, b1, c5_1);
            var a6 = Vector512.Create(a6p[p]);
            c6_0 = Avx512F.FusedMultiplyAdd(a6, b0, c6_0);
            c6_1 = Avx512F.FusedMultiplyAdd(a6, b1, c6_1);
            var a7 = Vector512.Create(a7p[p]);
            c7_0 = Avx512F.FusedMultiplyAdd(a7, b0, c7_0);
            c7_1 = Avx512F.FusedMultiplyAdd(a7, b1, c7_1);
        }
        Vector512.Store(c0_0, c); Vector512.Store(c0_1, c + 16);
        if (rows > 1) { Vector512.Store(c1_0, c + ldc); Vector512.Store(c1_1, c + ldc + 16); }
        if (rows > 2) { Vector512.Store(c2_0, c + 2 * ldc); Vector512.Store(c2_1, c + 2 * ldc + 16); }
        if (rows > 3) { Vector512.Store(c3_0, c + 3 * ldc); Vector512.Store(c3_1, c + 3 * ldc + 16); }
        if (rows > 4) { Vector512.Store(c4_0, c + 4 * ldc); Vector512.Store(c4_1, c + 4 * ldc + 16); }
        if (rows > 5) { Vector512.Store(c5_0, c + 5 * ldc); Vector512.Store(c5_1, c + 5 * ldc + 16); }
        if (rows > 6) { Vector512.Store(c6_0, c + 6 * ldc); Vector512.Store(c6_1, c + 6 * ldc + 16); }
        if (rows > 7) { Vector512.Store(c7_0, c + 7 * ldc); Vector512.Store(c7_1, c + 7 * ldc + 16); }
    }

    /// <summary>
    /// The Vector256 tile's half (<see cref="ForwardTile"/>): C[r, 0..16) = Σ_k a[r·lda + k] · b[off[k] + 0..16) for r &lt; rows (rows
    /// 1..6; rows past it are computed from the last row and not stored), C row stride ldc, overwritten.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel6x16(int kc, float* a, nint lda, int* off, float* b, float* c, nint ldc, int rows)
    {
        float* a0p = a;
        float* a1p = a + Math.Min(1, rows - 1) * lda;
        float* a2p = a + Math.Min(2, rows - 1) * lda;
        float* a3p = a + Math.Min(3, rows - 1) * lda;
        float* a4p = a + Math.Min(4, rows - 1) * lda;
        float* a5p = a + Math.Min(5, rows - 1) * lda;
        var c0_0 = Vector256<float>.Zero; var c0_1 = Vector256<float>.Zero;
        var c1_0 = Vector256<float>.Zero; var c1_1 = Vector256<float>.Zero;
        var c2_0 = Vector256<float>.Zero; var c2_1 = Vector256<float>.Zero;
        var c3_0 = Vector256<float>.Zero; var c3_1 = Vector256<float>.Zero;
        var c4_0 = Vector256<float>.Zero; var c4_1 = Vector256<float>.Zero;
        var c5_0 = Vector256<float>.Zero; var c5_1 = Vector256<float>.Zero;
        for (int p = 0; p < kc; p++)
        {
            float* pb = b + off[p];
            var b0 = Vector256.Load(pb);
            var b1 = Vector256.Load(pb + 8);
            var a0 = Vector256.Create(a0p[p]);
            c0_0 = Vector256.FusedMultiplyAdd(a0, b0, c0_0);
            c0_1 = Vector256.FusedMultiplyAdd(a0, b1, c0_1);
            var a1 = Vector256.Create(a1p[p]);
            c1_0 = Vector256.FusedMultiplyAdd(a1, b0, c1_0);
            c1_1 = Vector256.FusedMultiplyAdd(a1, b1, c1_1);
            var a2 = Vector256.Create(a2p[p]);
            c2_0 = Vector256.FusedMultiplyAdd(a2, b0, c2_0);
            c2_1 = Vector256.FusedMultiplyAdd(a2, b1, c2_1);
            var a3 = Vector256.Create(a3p[p]);
            c3_0 = Vector256.FusedMultiplyAdd(a3, b0, c3_0);
            c3_1 = Vector256.FusedMultiplyAdd(a3, b1, c3_1);
            var a4 = Vector256.Create(a4p[p]);
            c4_0 = Vector256.FusedMultiplyAdd(a4, b0, c4_0);
            c4_1 = Vector256.FusedMultiplyAdd(a4, b1, c4_1);
            var a5 = Vector256.Create(a5p[p]);
            c5_0 = Vector256.FusedMultiplyAdd(a5, b0, c5_0);
            c5_1 = Vector256.FusedMultiplyAdd(a5, b1, c5_1);
        }
        Vector256.Store(c0_0, c); Vector256.Store(c0_1, c + 8);
        if (rows > 1) { Vector256.Store(c1_0, c + ldc); Vector256.Store(c1_1, c + ldc + 8); }
        if (rows > 2) { Vector256.Store(c2_0, c + 2 * ldc); Vector256.Store(c2_1, c + 2 * ldc + 8); }
        if (rows > 3) { Vector256.Store(c3_0, c + 3 * ldc); Vector256.Store(c3_1, c + 3 * ldc + 8); }
        if (rows > 4) { Vector256.Store(c4_0, c + 4 * ldc); Vector256.Store(c4_1, c + 4 * ldc + 8); }
        if (rows > 5) { Vector256.Store(c5_0, c + 5 * ldc); Vector256.Store(c5_1, c + 5 * ldc + 8); }
    }

    /// <summary>
    /// <see cref="KernelT6x32"/>'s Vector256 half: C[r, 0..16) = beta·C + Σ_{i &lt; qc} xph[off[r] + i] · b[i·bStep + 0..16)
    /// for r &lt; rows (rows 1..6; the missing rows repeat the last and are not stored); beta is 0 (C not read) or 1.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void KernelT6x16(int qc, float* xph, int* off, int rows, float* b, nint bStep, float* c, nint ldc, float beta)
    {
        float* a0p = xph + off[0];
        float* a1p = xph + off[Math.Min(1, rows - 1)];
        float* a2p = xph + off[Math.Min(2, rows - 1)];
        float* a3p = xph + off[Math.Min(3, rows - 1)];
        float* a4p = xph + off[Math.Min(4, rows - 1)];
        float* a5p = xph + off[Math.Min(5, rows - 1)];
        var c0_0 = Vector256<float>.Zero; var c0_1 = Vector256<float>.Zero;
        var c1_0 = Vector256<float>.Zero; var c1_1 = Vector256<float>.Zero;
        var c2_0 = Vector256<float>.Zero; var c2_1 = Vector256<float>.Zero;
        var c3_0 = Vector256<float>.Zero; var c3_1 = Vector256<float>.Zero;
        var c4_0 = Vector256<float>.Zero; var c4_1 = Vector256<float>.Zero;
        var c5_0 = Vector256<float>.Zero; var c5_1 = Vector256<float>.Zero;
        for (int i = 0; i < qc; i++)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var a0 = Vector256.Create(a0p[i]);
            c0_0 = Vector256.FusedMultiplyAdd(a0, b0, c0_0);
            c0_1 = Vector256.FusedMultiplyAdd(a0, b1, c0_1);
            var a1 = Vector256.Create(a1p[i]);
            c1_0 = Vector256.FusedMultiplyAdd(a1, b0, c1_0);
            c1_1 = Vector256.FusedMultiplyAdd(a1, b1, c1_1);
            var a2 = Vector256.Create(a2p[i]);
            c2_0 = Vector256.FusedMultiplyAdd(a2, b0, c2_0);
            c2_1 = Vector256.FusedMultiplyAdd(a2, b1, c2_1);
            var a3 = Vector256.Create(a3p[i]);
            c3_0 = Vector256.FusedMultiplyAdd(a3, b0, c3_0);
            c3_1 = Vector256.FusedMultiplyAdd(a3, b1, c3_1);
            var a4 = Vector256.Create(a4p[i]);
            c4_0 = Vector256.FusedMultiplyAdd(a4, b0, c4_0);
            c4_1 = Vector256.FusedMultiplyAdd(a4, b1, c4_1);
            var a5 = Vector256.Create(a5p[i]);
            c5_0 = Vector256.FusedMultiplyAdd(a5, b0, c5_0);
            c5_1 = Vector256.FusedMultiplyAdd(a5, b1, c5_1);
            b += bStep;
        }
        if (beta != 0f)
        {
            c0_0 += Vector256.Load(c); c0_1 += Vector256.Load(c + 8);
            if (rows > 1) { c1_0 += Vector256.Load(c + ldc); c1_1 += Vector256.Load(c + ldc + 8); }
            if (rows > 2) { c2_0 += Vector256.Load(c + 2 * ldc); c2_1 += Vector256.Load(c + 2 * ldc + 8); }
            if (rows > 3) { c3_0 += Vector256.Load(c + 3 * ldc); c3_1 += Vector256.Load(c + 3 * ldc + 8); }
            if (rows > 4) { c4_0 += Vector256.Load(c + 4 * ldc); c4_1 += Vector256.Load(c + 4 * ldc + 8); }
            if (rows > 5) { c5_0 += Vector256.Load(c + 5 * ldc); c5_1 += Vector256.Load(c + 5 * ldc + 8); }
        }
        Vector256.Store(c0_0, c); Vector256.Store(c0_1, c + 8);
        if (rows > 1) { Vector256.Store(c1_0, c + ldc); Vector256.Store(c1_1, c + ldc + 8); }
        if (rows > 2) { Vector256.Store(c2_0, c + 2 * ldc); Vector256.Store(c2_1, c + 2 * ldc + 8); }
        if (rows > 3) { Vector256.Store(c3_0, c + 3 * ldc); Vector256.Store(c3_1, c + 3 * ldc + 8); }
        if (rows > 4) { Vector256.Store(c4_0, c + 4 * ldc); Vector256.Store(c4_1, c + 4 * ldc + 8); }
        if (rows > 5) { Vector256.Store(c5_0, c + 5 * ldc); Vector256.Store(c5_1, c + 5 * ldc + 8); }
    }
}
