using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MicroExpr.Kernels;

/// <summary>
/// 3×3 convolutions at stride 1 and dilation 1 by Winograd's minimal filtering (Lavin and Gray, 2016), Vector512 only:
/// the forward (and so the stride-1 backward data, which is a forward) by F(2×2, 3×3), the backward weight by F(3×3, 2×2)
/// (<see cref="BackwardWeightWinograd"/>); in 3-d, a kd×3×3 kernel is kd such sums over depth shifts of the same
/// transformed planes. Each 2×2 block of outputs ("tile") of output channel co is
/// <code>
/// Y = Aᵀ [ Σ_c U_{co,c} ⊙ V_{c,tile} ] A,   U = G g Gᵀ (4×4, from the 3×3 filter g),   V = Bᵀ d B (4×4, from the tile's 4×4 input patch d)
/// Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1],   G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1],   Aᵀ = [1 1 1 0; 0 1 −1 −1]
/// </code>
/// so the sum over input channels (and depth taps) is 16 independent GEMMs, one per element ξ of the 4×4 transform
/// domain: M_ξ[co, tile] = Σ_(c, kz) U_ξ[co, (c, kz)]·V_ξ[(c, plane + kz), tile], 16·Cout·Cin multiply-adds per tile of 4
/// outputs against the direct 36: 2.25× fewer. The GEMMs run on the implicit GEMM's 8×32 tile (<see cref="Kernel8x32"/>:
/// 8 output channels × 32 tiles, B rows read through the offsets c·16·Lz + kz·(tiles per plane) into V).
/// <para>Layout. 2-d: a work item is (group, a run of whole tile rows), numbered flat over (sample, tile row, tile column),
/// so a 32-tile strip may span tile rows and samples; an item holds at most 8192/Cg tiles (its V stays in L2) and as many
/// tile rows as waste the least of the last strip. 3-d: an item is (group, sample, block of output planes), its V the
/// planes those read. Per item: the input transform writes V[c][ξ][tile] (each tile row's 4 input rows read in place by
/// AND-masked or masked loads, zero outside the input, the row transform on even/odd columns split by permutes, the column
/// transform in registers, 16 tiles per vector); then per strip (per group of strips when U passes 4 MiB, so that U is
/// read once per group) the 16 GEMMs into M[ξ][co][strip] and the output transform (16 tiles per vector, bias and ReLU,
/// each output row's pairs interleaved and stored with a mask per run of tiles of one tile row). The filter transform
/// U[group][ξ][co][(c, kz)] is computed once per call on the calling thread, in double.</para>
/// <para>Numerics: the transforms add and subtract (and halve, for U) before and after the products, so results differ from
/// the direct sum by a few ulps of the inputs' magnitudes (well inside the tests' 1e-4 + 1e-4·|ref|); they are
/// deterministic and independent of the thread count (each output is one tile's sums in a fixed order; the backward
/// weight's parts are fixed by the shape). A non-finite input spreads to the whole 2×2 tile (and its neighbours sharing
/// the patch), not only to the outputs whose window holds it.</para>
/// </summary>
public static unsafe partial class ConvSimd
{
    /// <summary>Testing and probing hook: when true, the forward never takes Winograd's F(2×2, 3×3).</summary>
    [ThreadStatic] internal static bool NoWinograd;
    [ThreadStatic] private static float* t_winogradV;
    [ThreadStatic] private static long t_winogradVFloats;

    /// <summary>
    /// Whether <see cref="Forward"/> takes Winograd's F(2×2, 3×3): Vector512, a 3×3 kernel in height and width (2-d, or
    /// 3-d with any depth kernel at depth stride and dilation 1), stride 1, dilation 1, any padding, at least 8 input and 8
    /// output channels per group. Large channel counts too (U, 16·Coutg·Cg·kd floats, then comes from L3; past 4 MiB the
    /// strips run in groups, see <see cref="ForwardWinograd"/>): before the groups, [64,256,7,7] → 256 already ran 1.17×
    /// and [64,512,4,4] → 512 1.6× faster than the implicit GEMM (2026-12-02, Zen 4, one thread, two rounds: 45.3–46.3 →
    /// 38.5–40.7 ms, 89.8–97.8 → 55.8–56.6 ms).
    /// </summary>
    internal static bool UsesWinograd(in ConvGeometry g) =>
        !NoWinograd && !NoImplicit && SimdIsaSelect.Current == SimdIsa.V512 && g.Kh == 3 && g.Kw == 3 &&
        g.Sh == 1 && g.Sw == 1 && g.Dh == 1 && g.Dw == 1 && g.Sd == 1 && g.Dd == 1 &&
        g.Cg >= 8 && g.Coutg >= 8;

    /// <summary>Largest V of a 3-d work item, 2 Mi floats (8 MiB: two threads' fit the 32 MiB L3).</summary>
    private const long WinogradMaxV3d = 2L << 20;

    /// <summary>The tiles of one plane and the work items (see the type's summary).</summary>
    private readonly struct WinogradLayout
    {
        /// <summary>Tile rows and columns per output plane, tiles per plane; whether the work items are 3-d.</summary>
        public readonly int Th, Tw, PlaneTiles;
        public readonly bool Is3d;
        /// <summary>2-d: tile rows of the whole batch (flat over samples) and tile rows per item. 3-d: output planes per
        /// item and items per sample. Items per group; the most V tile rows of an item; V's row stride.</summary>
        public readonly int Rows, ChunkRows, DepthBlock, DepthBlocks, Chunks, VRows, Lz;

        /// <param name="g">The convolution.</param>
        /// <param name="threads">At least this many items per group where the tiles allow it.</param>
        /// <param name="cap2d">Most tiles of a 2-d item (the forward: 8192/Cg, so that V stays in L2).</param>
        public WinogradLayout(in ConvGeometry g, int threads, int cap2d)
        {
            Th = (g.Ho + 1) / 2;
            Tw = (g.Wo + 1) / 2;
            PlaneTiles = Th * Tw;
            Is3d = g.D > 1 || g.Kd > 1 || g.Pd > 0;
            int groups = g.Groups;
            Rows = ChunkRows = DepthBlock = DepthBlocks = 0;
            if (!Is3d)
            {
                // Tile rows of all samples, flat; per item, within the cap, the count that wastes the least of the last
                // 32-tile strip (ties: more rows), then fewer if the threads need items.
                Rows = g.N * Th;
                int cap = Math.Max(Strip, cap2d), best = 1;
                double bestWaste = double.MaxValue;
                for (int cr = 1; cr <= Rows; cr++)
                {
                    if (cr > 1 && (long)cr * Tw > cap) break;
                    int t = cr * Tw;
                    double waste = (double)((t + Strip - 1) / Strip * Strip) / t;
                    if (waste <= bestWaste + 1e-9) { best = cr; bestWaste = waste; }
                }
                while (best > 1 && (long)groups * ((Rows + best - 1) / best) < threads) best = (best + 1) / 2;
                ChunkRows = best;
                Chunks = (Rows + best - 1) / best;
                VRows = best;
            }
            else
            {
                // Per item, one sample's block of output planes and the kd − 1 more input planes they read, V within
                // WinogradMaxV3d (then fewer planes if the threads need items).
                long perPlane = 16L * g.Cg * PlaneTiles;
                int db = (int)Math.Clamp(WinogradMaxV3d / perPlane - (g.Kd - 1), 1, g.Do);
                while (db > 1 && (long)groups * g.N * ((g.Do + db - 1) / db) < threads) db = (db + 1) / 2;
                DepthBlock = db;
                DepthBlocks = (g.Do + db - 1) / db;
                Chunks = g.N * DepthBlocks;
                VRows = (db + g.Kd - 1) * Th;
            }
            // Reads of a strip reach 31 tiles past an item's last output tile, plus (kd − 1) planes; stores spill 15 past
            // its last V tile.
            Lz = (VRows * Tw + Strip + 16 + 15) / 16 * 16;
        }
    }

    /// <summary>The forward by Winograd's F(2×2, 3×3) (<see cref="UsesWinograd"/> must hold).</summary>
    private static void ForwardWinograd(float* y, float* x, float* w, float* b, in ConvGeometry g, bool relu, int threads)
    {
        int cg = g.Cg, coutg = g.Coutg, kd = g.Kd, k = cg * kd;
        // Up to 4 MiB of U: one strip at a time (V ≤ 512 KiB per item), U streamed from L2 or L3 for every strip. Larger:
        // groups of strips, so that each 8-row block of U_ξ is reused over the group from L1 (M ≤ 4 MiB). Measured
        // (2026-12-02, Zen 4, 1 thread, 3 rounds): [64,512,4,4] → 512 (U 16 MiB) 48.8–53.9 → 37.0–40.4 ms with groups;
        // [64,256,7,7] → 256 (U 4 MiB) 27.3–32.4 → 34.7–38.8, slower (M and V leave L2), so it keeps single strips. On 2
        // threads the 512 case is at parity within the noise (30.2–35.1 → 25.7–33.2 ms).
        int stripGroup = 16L * coutg * k * 4 <= 4L << 20 ? 1 : (int)Math.Clamp((4L << 20) / (16L * coutg * Strip * 4), 1, 8);
        var lay = new WinogradLayout(g, threads, stripGroup == 1 ? 8192 / cg : Strip * stripGroup);
        // U[group][ξ][co][c·kd + kz] and the B-row offsets of (c, kz) into V: on the calling thread, read by every part.
        float* u = ThreadScratch.Get(ScratchSlot.ConvWinogradU, (long)g.Groups * 16 * coutg * k);
        int* off = (int*)ThreadScratch.Get(ScratchSlot.ConvOffsets, k);
        for (int c = 0; c < cg; c++)
            for (int kz = 0; kz < kd; kz++) off[c * kd + kz] = c * 16 * lay.Lz + kz * lay.PlaneTiles;
        for (int grp = 0; grp < g.Groups; grp++)
            for (int co = 0; co < coutg; co++)
                for (int p = 0; p < k; p++)
                    FilterTransform(w + ((long)(grp * coutg + co) * k + p) * 9, u + (long)grp * 16 * coutg * k + (long)co * k + p, (long)coutg * k);
        var work = new WinogradWork { Y = y, X = x, U = u, B = b, Off = off, G = g, Lay = lay, Relu = relu, StripGroup = stripGroup };
        long items = (long)g.Groups * lay.Chunks;
        WorkSplit.Run(ref work, items, (int)Math.Min(items, Math.Max(1, threads)), threads);
    }

    /// <summary>U = G g Gᵀ of one 3×3 filter g (row-major), in double; element ξ = 4a + b goes to u[ξ·stride].</summary>
    private static void FilterTransform(float* g, float* u, long stride)
    {
        Span<double> t = stackalloc double[12];
        for (int j = 0; j < 3; j++)
        {
            double g0 = g[j], g1 = g[3 + j], g2 = g[6 + j];
            t[j] = g0;
            t[3 + j] = 0.5 * (g0 + g1 + g2);
            t[6 + j] = 0.5 * (g0 - g1 + g2);
            t[9 + j] = g2;
        }
        for (int a = 0; a < 4; a++)
        {
            double t0 = t[3 * a], t1 = t[3 * a + 1], t2 = t[3 * a + 2];
            u[(4 * a) * stride] = (float)t0;
            u[(4 * a + 1) * stride] = (float)(0.5 * (t0 + t1 + t2));
            u[(4 * a + 2) * stride] = (float)(0.5 * (t0 - t1 + t2));
            u[(4 * a + 3) * stride] = (float)t2;
        }
    }

    private struct WinogradWork : IPartWork
    {
        public float* Y, X, U, B;
        public int* Off;
        public ConvGeometry G;
        public WinogradLayout Lay;
        public bool Relu;
        public int StripGroup;

        public readonly void Run(int part, long start, long end)
        {
            for (long i = start; i < end; i++)
            {
                int grp = (int)(i / Lay.Chunks), chunk = (int)(i % Lay.Chunks);
                WinogradChunk(Y, X, U, B, Off, G, Lay, Relu, grp, chunk, StripGroup);
            }
        }
    }

    /// <summary>Even and odd lanes of a 32-float pair (lower, upper), and the interleaving of two 16-lane vectors.</summary>
    private static readonly Vector512<int> EvenLanes = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    private static readonly Vector512<int> OddLanes = Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    private static readonly Vector512<int> InterleaveLo = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    private static readonly Vector512<int> InterleaveHi = Vector512.Create(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);

    /// <summary>One work item's tiles: 2-d, tile rows R0.. of the batch (flat over samples), V rows = output rows; 3-d, sample
    /// N's output planes Oz0.., V rows over the input planes Oz0 − pd .. (kd − 1 more planes).</summary>
    private readonly struct WinogradItem
    {
        public readonly int R0, N, Oz0, VRows, OutRows;

        public WinogradItem(in ConvGeometry g, in WinogradLayout lay, int chunk)
        {
            R0 = N = Oz0 = 0;
            if (!lay.Is3d)
            {
                R0 = chunk * lay.ChunkRows;
                VRows = OutRows = Math.Min(lay.Rows, R0 + lay.ChunkRows) - R0;
            }
            else
            {
                N = chunk / lay.DepthBlocks;
                Oz0 = chunk % lay.DepthBlocks * lay.DepthBlock;
                int nOz = Math.Min(lay.DepthBlock, g.Do - Oz0);
                OutRows = nOz * lay.Th;
                VRows = (nOz + g.Kd - 1) * lay.Th;
            }
        }

        /// <summary>V tile row j of the item: its sample, input plane (outside [0, D) in 3-d: a zero plane) and tile row.</summary>
        public void VRow(in ConvGeometry g, in WinogradLayout lay, int j, out int n, out int z, out int ty)
        {
            if (!lay.Is3d)
            {
                OutRow(g, lay, j, out n, out z, out ty);
                return;
            }
            int zl = j / lay.Th;
            n = N;
            z = Oz0 + zl - g.Pd;
            ty = j - zl * lay.Th;
        }

        /// <summary>Output tile row i of the item: its sample, output plane and tile row.</summary>
        public void OutRow(in ConvGeometry g, in WinogradLayout lay, int i, out int n, out int oz, out int ty)
        {
            if (!lay.Is3d)
            {
                int r = R0 + i;
                n = r / lay.Th;
                ty = r - n * lay.Th;
                oz = 0;
            }
            else
            {
                int ozl = i / lay.Th;
                n = N;
                oz = Oz0 + ozl;
                ty = i - ozl * lay.Th;
            }
        }
    }

    /// <summary>The calling thread's V for items of <paramref name="lay"/>: 16·Cg·Lz floats.</summary>
    private static float* WinogradV(in ConvGeometry g, in WinogradLayout lay)
    {
        long vFloats = 16L * g.Cg * lay.Lz;
        float* v = ThreadScratch.Get(ScratchSlot.ConvCol, vFloats);
        // The dropped columns of an item's last strip (past its last tile) are computed from whatever V holds there: the
        // last tile row's spill, later planes or an earlier item's values. Zeroed once per new buffer so that they are finite.
        if (v != t_winogradV || vFloats > t_winogradVFloats)
        {
            new Span<float>(v, checked((int)vFloats)).Clear();
            t_winogradV = v;
            t_winogradVFloats = vFloats;
        }
        return v;
    }

    /// <summary>
    /// The input transform of one item: V[c][ξ][j·Tw + tx] for V tile row j, each tile row's four input rows read in place
    /// (the masks, per vector of 16 tiles, keep the input's columns [0, W)).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WinogradInput(float* v, float* x, in ConvGeometry g, in WinogradLayout lay, in WinogradItem item, int grp)
    {
        int cg = g.Cg, tw = lay.Tw, lz = lay.Lz, vRows = item.VRows;
        int wd = g.W, hd = g.H, ph = g.Ph, pw = g.Pw, groupsOf16 = (tw + 15) / 16;
        long plane = (long)hd * wd;
        float* xEnd = x + g.XLength;
        var masks = stackalloc Vector512<float>[4 * groupsOf16];
        for (int q = 0; q < groupsOf16; q++)
            for (int kk = 0; kk < 4; kk++)
            {
                // Vector kk of the group: columns 2·tx0 − pw + (0, 16, 2, 18)[kk] + lane.
                int col = 32 * q - pw + kk % 2 * 16 + kk / 2 * 2;
                var cols = Vector512<int>.Indices + Vector512.Create(col);
                masks[4 * q + kk] = (Vector512.GreaterThanOrEqual(cols, Vector512<int>.Zero) & Vector512.LessThan(cols, Vector512.Create(wd))).AsSingle();
            }
        for (int c = 0; c < cg; c++)
        {
            float* vc = v + (long)c * 16 * lz;
            for (int j = 0; j < vRows; j++)
            {
                // The input plane of V row j (null: a depth outside the input, all zero) and its tile row.
                item.VRow(g, lay, j, out int n, out int z, out int ty);
                float* xc = (uint)z < (uint)g.D ? x + (((long)n * g.Cin + (long)grp * cg + c) * g.D + z) * plane : null;
                int iy = 2 * ty - ph;
                float* dst = vc + (long)j * tw;
                for (int q = 0; q < groupsOf16; q++)
                {
                    // Row a's patch columns start at input column 32·q − pw (null: a row outside the input, all zero).
                    float* p0 = xc != null && (uint)iy < (uint)hd ? xc + (long)iy * wd + 32 * q - pw : null;
                    float* p1 = xc != null && (uint)(iy + 1) < (uint)hd ? xc + (long)(iy + 1) * wd + 32 * q - pw : null;
                    float* p2 = xc != null && (uint)(iy + 2) < (uint)hd ? xc + (long)(iy + 2) * wd + 32 * q - pw : null;
                    float* p3 = xc != null && (uint)(iy + 3) < (uint)hd ? xc + (long)(iy + 3) * wd + 32 * q - pw : null;
                    InputTransform16(p0, p1, p2, p3, masks + 4 * q, x, xEnd, dst + 16 * q, lz);
                }
            }
        }
    }

    /// <summary>
    /// One work item of group grp: its V tile rows' input transform, then per 32-tile strip of its output tiles the 16
    /// GEMMs and the output transform. 2-d: tile rows r0..r1 of the batch (flat over samples), V rows = output rows. 3-d:
    /// sample n's output planes oz0..oz1, V rows over the input planes oz0 − pd .. oz1 − pd + kd − 1 (zero outside).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WinogradChunk(float* y, float* x, float* u, float* b, int* off, in ConvGeometry g, in WinogradLayout lay, bool relu,
        int grp, int chunk, int stripGroup)
    {
        int coutg = g.Coutg, tw = lay.Tw, th = lay.Th, lz = lay.Lz, k = g.Cg * g.Kd;
        var item = new WinogradItem(g, lay, chunk);
        int tiles = item.OutRows * tw;
        float* v = WinogradV(g, lay);
        WinogradInput(v, x, g, lay, item, grp);
        int ldm = Strip * stripGroup;
        float* m = ThreadScratch.Get(ScratchSlot.ConvOut, 16L * coutg * ldm);
        // The two interleaved output rows of a strip (its two halves one after the other, read 16 floats at a time up to
        // lane 31: 96 floats each).
        float* ob0 = ThreadScratch.Get(ScratchSlot.ConvWinogradRows, 2 * 96), ob1 = ob0 + 96;

        // Output tile row i's first output row: y row index (n, oc = 0, oz, 2·ty) in rows of Wo; oc adds Do·Ho rows.
        long ocRows = (long)g.Do * g.Ho;
        Span<long> seg = stackalloc long[5 * 40];
        for (int sg = 0; sg < tiles; sg += ldm)
        {
            int sgEnd = Math.Min(tiles, sg + ldm);
            // The 16 GEMMs over the group's strips: M[ξ][co][s − sg] = Σ_(c, kz) U_ξ[co, (c, kz)]·V_ξ[(c, plane + kz), s].
            for (int xi = 0; xi < 16; xi++)
            {
                float* uxi = u + ((long)grp * 16 + xi) * coutg * k;
                float* bxi = v + (long)xi * lz;
                float* mxi = m + (long)xi * coutg * ldm;
                for (int co = 0; co < coutg; co += 8)
                    for (int s0 = sg; s0 < sgEnd; s0 += Strip)
                        Kernel8x32(k, uxi + (long)co * k, k, off, bxi + s0, mxi + (long)co * ldm + (s0 - sg), ldm, Math.Min(8, coutg - co));
            }
            for (int s0 = sg; s0 < sgEnd; s0 += Strip)
            {
                // Runs of tiles of one tile row within each half strip: (first lane, tiles, first output row, output column,
                // whether the tiles' second output row exists).
                int nseg = 0;
                for (int h = 0; h < 2; h++)
                {
                    int f = s0 + 16 * h, fEnd = Math.Min(tiles, f + 16);
                    while (f < fEnd)
                    {
                        int i = f / tw, tx = f - i * tw, len = Math.Min(tw - tx, fEnd - f);
                        item.OutRow(g, lay, i, out int n, out int oz, out int ty);
                        long rowBase = (long)n * g.Cout * ocRows + (long)oz * g.Ho + 2 * ty;
                        seg[5 * nseg] = f - s0;
                        seg[5 * nseg + 1] = len;
                        seg[5 * nseg + 2] = rowBase;
                        seg[5 * nseg + 3] = 2 * tx;
                        seg[5 * nseg + 4] = 2 * ty + 1 < g.Ho ? 1 : 0;
                        nseg++;
                        f += len;
                    }
                }
                for (int co = 0; co < coutg; co++)
                {
                    int oc = grp * coutg + co;
                    var bias = Vector512.Create(b == null ? 0f : b[oc]);
                    for (int h = 0; h < 2 && s0 + 16 * h < tiles; h++)
                        OutputTransform16(m + (long)co * ldm + (s0 - sg) + 16 * h, (long)coutg * ldm, bias, relu, ob0, ob1, h);
                    for (int s = 0; s < nseg; s++)
                    {
                        int lane = (int)seg[5 * s], col = (int)seg[5 * s + 3];
                        int cols = Math.Min(2 * (int)seg[5 * s + 1], g.Wo - col);
                        float* dst = y + (seg[5 * s + 2] + oc * ocRows) * g.Wo + col;
                        // ob0 / ob1 hold the half strips one after the other: lane l at 2·l.
                        StoreRun(dst, ob0 + 2 * lane, cols);
                        if (seg[5 * s + 4] != 0) StoreRun(dst + g.Wo, ob1 + 2 * lane, cols);
                    }
                }
            }
        }
    }

    /// <summary>
    /// V = Bᵀ d B for 16 horizontally adjacent tiles whose 4×4 patches start at p0..p3 (tile t at column 2t; a null row
    /// is zero), loaded under the four masks (columns +0, +16, +2, +18): element ξ = 4a + b of tile t to dst[ξ·xiStride + t].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void InputTransform16(float* p0, float* p1, float* p2, float* p3, Vector512<float>* masks, float* lo, float* hi, float* dst,
        long xiStride)
    {
        RowTransform(p0, masks, lo, hi, out var u00, out var u01, out var u02, out var u03);
        RowTransform(p1, masks, lo, hi, out var u10, out var u11, out var u12, out var u13);
        RowTransform(p2, masks, lo, hi, out var u20, out var u21, out var u22, out var u23);
        RowTransform(p3, masks, lo, hi, out var u30, out var u31, out var u32, out var u33);
        // Column transform Bᵀ over the rows a.
        Vector512.Store(u00 - u20, dst); Vector512.Store(u01 - u21, dst + xiStride);
        Vector512.Store(u02 - u22, dst + 2 * xiStride); Vector512.Store(u03 - u23, dst + 3 * xiStride);
        Vector512.Store(u10 + u20, dst + 4 * xiStride); Vector512.Store(u11 + u21, dst + 5 * xiStride);
        Vector512.Store(u12 + u22, dst + 6 * xiStride); Vector512.Store(u13 + u23, dst + 7 * xiStride);
        Vector512.Store(u20 - u10, dst + 8 * xiStride); Vector512.Store(u21 - u11, dst + 9 * xiStride);
        Vector512.Store(u22 - u12, dst + 10 * xiStride); Vector512.Store(u23 - u13, dst + 11 * xiStride);
        Vector512.Store(u10 - u30, dst + 12 * xiStride); Vector512.Store(u11 - u31, dst + 13 * xiStride);
        Vector512.Store(u12 - u32, dst + 14 * xiStride); Vector512.Store(u13 - u33, dst + 15 * xiStride);
    }

    /// <summary>
    /// d·B along one row for 16 tiles: columns 2t..2t+3 of p (zero when p is null; columns outside the input zeroed by
    /// the masks) split into even / odd lanes. Where the 34 floats from p lie inside x ([lo, hi)), plain loads and an AND
    /// with the masks (the columns past a row's ends are the neighbouring rows' values, then zeroed); at the ends of x,
    /// masked loads (masked-off lanes never fault).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RowTransform(float* p, Vector512<float>* masks, float* lo, float* hi, out Vector512<float> r0, out Vector512<float> r1,
        out Vector512<float> r2, out Vector512<float> r3)
    {
        if (p == null)
        {
            r0 = r1 = r2 = r3 = Vector512<float>.Zero;
            return;
        }
        Vector512<float> a, b, a2, b2;
        if (p >= lo && p + 34 <= hi)
        {
            a = Vector512.Load(p) & masks[0];
            b = Vector512.Load(p + 16) & masks[1];
            a2 = Vector512.Load(p + 2) & masks[2];
            b2 = Vector512.Load(p + 18) & masks[3];
        }
        else
        {
            var z = Vector512<float>.Zero;
            a = Avx512F.MaskLoad(p, masks[0], z);
            b = Avx512F.MaskLoad(p + 16, masks[1], z);
            a2 = Avx512F.MaskLoad(p + 2, masks[2], z);
            b2 = Avx512F.MaskLoad(p + 18, masks[3], z);
        }
        var d0 = Avx512F.PermuteVar16x32x2(a, EvenLanes, b);
        var d1 = Avx512F.PermuteVar16x32x2(a, OddLanes, b);
        var d2 = Avx512F.PermuteVar16x32x2(a2, EvenLanes, b2);
        var d3 = Avx512F.PermuteVar16x32x2(a2, OddLanes, b2);
        r0 = d0 - d2;
        r1 = d1 + d2;
        r2 = d2 - d1;
        r3 = d1 - d3;
    }

    /// <summary>
    /// Y = Aᵀ m A (+ bias, ReLU) for 16 tiles, m element ξ at mt[ξ·xiStride + lane]; output row 0 of the tiles interleaved
    /// (tile t's two columns at 2t) into ob0 and row 1 into ob1, at 32·half.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void OutputTransform16(float* mt, long xiStride, Vector512<float> bias, bool relu, float* ob0, float* ob1, int half)
    {
        // Rows a of m A: s_a0 = m_a0 + m_a1 + m_a2, s_a1 = m_a1 − m_a2 − m_a3.
        var m1 = Vector512.Load(mt + xiStride);
        var m2 = Vector512.Load(mt + 2 * xiStride);
        var s00 = Vector512.Load(mt) + m1 + m2;
        var s01 = m1 - m2 - Vector512.Load(mt + 3 * xiStride);
        m1 = Vector512.Load(mt + 5 * xiStride);
        m2 = Vector512.Load(mt + 6 * xiStride);
        var s10 = Vector512.Load(mt + 4 * xiStride) + m1 + m2;
        var s11 = m1 - m2 - Vector512.Load(mt + 7 * xiStride);
        m1 = Vector512.Load(mt + 9 * xiStride);
        m2 = Vector512.Load(mt + 10 * xiStride);
        var s20 = Vector512.Load(mt + 8 * xiStride) + m1 + m2;
        var s21 = m1 - m2 - Vector512.Load(mt + 11 * xiStride);
        m1 = Vector512.Load(mt + 13 * xiStride);
        m2 = Vector512.Load(mt + 14 * xiStride);
        var s30 = Vector512.Load(mt + 12 * xiStride) + m1 + m2;
        var s31 = m1 - m2 - Vector512.Load(mt + 15 * xiStride);
        var y00 = s00 + s10 + s20 + bias;
        var y01 = s01 + s11 + s21 + bias;
        var y10 = s10 - s20 - s30 + bias;
        var y11 = s11 - s21 - s31 + bias;
        if (relu)
        {
            y00 = Vector512.Max(y00, Vector512<float>.Zero);
            y01 = Vector512.Max(y01, Vector512<float>.Zero);
            y10 = Vector512.Max(y10, Vector512<float>.Zero);
            y11 = Vector512.Max(y11, Vector512<float>.Zero);
        }
        float* o0 = ob0 + 32 * half, o1 = ob1 + 32 * half;
        Vector512.Store(Avx512F.PermuteVar16x32x2(y00, InterleaveLo, y01), o0);
        Vector512.Store(Avx512F.PermuteVar16x32x2(y00, InterleaveHi, y01), o0 + 16);
        Vector512.Store(Avx512F.PermuteVar16x32x2(y10, InterleaveLo, y11), o1);
        Vector512.Store(Avx512F.PermuteVar16x32x2(y10, InterleaveHi, y11), o1 + 16);
    }

    /// <summary>dst[0..n) = src[0..n), n ≤ 32, by masked stores (never touching dst past n).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRun(float* dst, float* src, int n)
    {
        if (n >= 16)
        {
            Vector512.Store(Vector512.Load(src), dst);
            src += 16; dst += 16; n -= 16;
            if (n == 0) return;
        }
        var mask = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(n)).AsSingle();
        Avx512F.MaskStore(dst, mask, Vector512.Load(src));
    }

    /// <summary>Tile parts of the backward weight per group (each a partial sum of the 16 GEMMs), at most; fixed, so that dW does
    /// not depend on the thread count.</summary>
    private const int WinogradWeightParts = 8;

    /// <summary>Largest total of the parts' partial sums, 16 Mi floats (64 MiB): fewer parts for large channel counts.</summary>
    private const long WinogradWeightMaxAcc = 16L << 20;

    /// <summary>
    /// The backward weight by Winograd's F(3×3, 2×2) (<see cref="UsesWinograd"/> must hold): each 2×2 tile of dy and its 4×4
    /// input patch d (the forward's) add the 3×3 correlation of d with the tile to dW, which is
    /// <code>
    /// dW[co, c] = A′ᵀ [ Σ_tiles (G′ dy_tile G′ᵀ) ⊙ (Bᵀ d B) ] A′,   G′ = [1 0; ½ ½; ½ −½; 0 −1],   A′ᵀ = [1 1 1 0; 0 1 −1 0; 0 1 1 1]
    /// </code>
    /// with the forward's Bᵀ and V (F(3, 2)'s own Bᵀ has the last row negated; the sign is moved into G′). So the sum over
    /// tiles is 16 GEMMs M_ξ[(c, kz), co] = Σ_t V_ξ[(c, plane + kz), t]·DY_ξ[t, co] of depth K = tiles, 16·Cout·Cin·kd
    /// multiply-adds per tile against the direct 36·kd. They run on the implicit backward weight's transposed 6×32 tile
    /// (<see cref="KernelT6x32"/>: six (c, kz) rows of V read in place through the offsets, 32 output channels of DYᵀ, dy
    /// transposed by 8×8 blocks and transformed 16 channels per vector). Work: (group, part), a part a fixed range of the
    /// items, summing into its own partial M; the parts' sums are added in part order and transformed back, 16 output
    /// channels per vector.
    /// </summary>
    private static void BackwardWeightWinograd(float* dw, float* dy, float* x, in ConvGeometry g, int threads)
    {
        // Parts: at most WinogradWeightParts per group, fewer when their partial sums would pass WinogradWeightMaxAcc; items
        // of up to 512 tiles (the GEMMs' depth), at least one per part. The split depends on the shape only.
        int cg = g.Cg, coutg = g.Coutg, kd = g.Kd, k = cg * kd, ldco = (coutg + Strip - 1) / Strip * Strip;
        long partFloats = 16L * k * ldco;
        int maxParts = (int)Math.Clamp(WinogradWeightMaxAcc / Math.Max(1, (long)g.Groups * partFloats), 1, WinogradWeightParts);
        var lay = new WinogradLayout(g, maxParts, 512);
        int parts = Math.Min(lay.Chunks, maxParts);
        float* acc = ThreadScratch.Get(ScratchSlot.ConvWinogradU, g.Groups * parts * partFloats);
        int* off = (int*)ThreadScratch.Get(ScratchSlot.ConvOffsets, k);
        for (int c = 0; c < cg; c++)
            for (int kz = 0; kz < kd; kz++) off[c * kd + kz] = c * 16 * lay.Lz + kz * lay.PlaneTiles;
        var work = new WinogradWeightWork { Acc = acc, Dy = dy, X = x, Off = off, G = g, Lay = lay, Parts = parts, Ldco = ldco };
        int items = g.Groups * parts;
        WorkSplit.Run(ref work, items, Math.Min(items, Math.Max(1, threads)), threads);
        // Σ_parts M, added in part order into part 0's; then dW[co, (c, kz), ky, kx] = A′ᵀ M A′, 16 output channels per vector.
        var outv = stackalloc float[9 * 16];
        for (int grp = 0; grp < g.Groups; grp++)
        {
            float* m0 = acc + (long)grp * parts * partFloats;
            for (int part = 1; part < parts; part++)
            {
                float* mp = m0 + part * partFloats;
                long e = 0;
                for (; e + 16 <= partFloats; e += 16) Vector512.Store(Vector512.Load(m0 + e) + Vector512.Load(mp + e), m0 + e);
                for (; e < partFloats; e++) m0[e] += mp[e];
            }
            long xs = (long)k * ldco;
            for (int p = 0; p < k; p++)
                for (int co0 = 0; co0 < coutg; co0 += 16)
                {
                    float* mq = m0 + (long)p * ldco + co0;
                    // Columns of each row a (s_a = m_a·A′), then the rows: out = A′ᵀ s.
                    WeightColumns(mq, xs, 0, out var s00, out var s01, out var s02);
                    WeightColumns(mq, xs, 1, out var s10, out var s11, out var s12);
                    WeightColumns(mq, xs, 2, out var s20, out var s21, out var s22);
                    WeightColumns(mq, xs, 3, out var s30, out var s31, out var s32);
                    Vector512.Store(s00 + s10 + s20, outv); Vector512.Store(s01 + s11 + s21, outv + 16); Vector512.Store(s02 + s12 + s22, outv + 32);
                    Vector512.Store(s10 - s20, outv + 48); Vector512.Store(s11 - s21, outv + 64); Vector512.Store(s12 - s22, outv + 80);
                    Vector512.Store(s10 + s20 + s30, outv + 96); Vector512.Store(s11 + s21 + s31, outv + 112); Vector512.Store(s12 + s22 + s32, outv + 128);
                    int lanes = Math.Min(16, coutg - co0);
                    for (int l = 0; l < lanes; l++)
                    {
                        float* dst = dw + ((long)(grp * coutg + co0 + l) * k + p) * 9;
                        for (int e9 = 0; e9 < 9; e9++) dst[e9] = outv[16 * e9 + l];
                    }
                }
        }
    }

    private struct WinogradWeightWork : IPartWork
    {
        public float* Acc, Dy, X;
        public int* Off;
        public ConvGeometry G;
        public WinogradLayout Lay;
        public int Parts, Ldco;

        public readonly void Run(int part, long start, long end)
        {
            for (long i = start; i < end; i++)
            {
                int grp = (int)(i / Parts), pt = (int)(i % Parts);
                int c0 = (int)((long)Lay.Chunks * pt / Parts), c1 = (int)((long)Lay.Chunks * (pt + 1) / Parts);
                float* acc = Acc + (long)i * 16 * G.Cg * G.Kd * Ldco;
                for (int chunk = c0; chunk < c1; chunk++)
                    WinogradWeightChunk(acc, Dy, X, Off, G, Lay, Ldco, grp, chunk, chunk == c0);
            }
        }
    }

    /// <summary>One item's contribution to a part's M[ξ][(c, kz)][co] (overwritten when first, else added).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WinogradWeightChunk(float* acc, float* dy, float* x, int* off, in ConvGeometry g, in WinogradLayout lay, int ldco,
        int grp, int chunk, bool first)
    {
        int coutg = g.Coutg, tw = lay.Tw, lz = lay.Lz, k = g.Cg * g.Kd, ho = g.Ho, wo = g.Wo, wop = 2 * tw;
        var item = new WinogradItem(g, lay, chunk);
        int outRows = item.OutRows, tiles = outRows * tw;
        float* v = WinogradV(g, lay);
        WinogradInput(v, x, g, lay, item, grp);
        // dyᵀ[(2i + a)·Wop + ox][co]: the item's two dy rows per tile row, columns padded to 2·Tw and channels to ldco with zeros.
        long dyTFloats = 2L * outRows * wop * ldco;
        float* dyT = ThreadScratch.Get(ScratchSlot.ConvWinogradDy, dyTFloats);
        new Span<float>(dyT, checked((int)dyTFloats)).Clear();
        long ocPlane = (long)g.Do * ho * wo;
        int co8 = coutg & ~7, wo8 = wo & ~7;
        for (int i = 0; i < outRows; i++)
        {
            item.OutRow(g, lay, i, out int n, out int oz, out int ty);
            for (int a = 0; a < 2 && 2 * ty + a < ho; a++)
            {
                float* src = dy + ((long)n * g.Cout + (long)grp * coutg) * ocPlane + ((long)oz * ho + 2 * ty + a) * wo;
                float* drow = dyT + (long)(2 * i + a) * wop * ldco;
                for (int co = 0; co < co8; co += 8)
                {
                    float* sc = src + co * ocPlane;
                    for (int ox = 0; ox < wo8; ox += 8)
                        GemmSimd.Transpose8x8(Vector256.Load(sc + ox), Vector256.Load(sc + ocPlane + ox), Vector256.Load(sc + 2 * ocPlane + ox),
                            Vector256.Load(sc + 3 * ocPlane + ox), Vector256.Load(sc + 4 * ocPlane + ox), Vector256.Load(sc + 5 * ocPlane + ox),
                            Vector256.Load(sc + 6 * ocPlane + ox), Vector256.Load(sc + 7 * ocPlane + ox), drow + (long)ox * ldco + co, ldco);
                    for (int ox = wo8; ox < wo; ox++)
                        for (int jj = 0; jj < 8; jj++) drow[(long)ox * ldco + co + jj] = sc[jj * ocPlane + ox];
                }
                for (int co = co8; co < coutg; co++)
                    for (int ox = 0; ox < wo; ox++) drow[(long)ox * ldco + co] = src[co * ocPlane + ox];
            }
        }
        // DYᵀ_ξ[t][co] = (G′ dy_t G′ᵀ)_ξ, 16 channels per vector.
        int tcap = lay.Is3d ? lay.DepthBlock * lay.Th * tw : lay.ChunkRows * tw;
        float* dyw = ThreadScratch.Get(ScratchSlot.ConvDyT, 16L * tcap * ldco);
        long xiStride = (long)tcap * ldco;
        var half = Vector512.Create(0.5f);
        for (int t = 0; t < tiles; t++)
        {
            int i = t / tw, tx = t - i * tw;
            float* r0 = dyT + ((long)(2 * i) * wop + 2 * tx) * ldco, r1 = r0 + (long)wop * ldco;
            float* dst = dyw + (long)t * ldco;
            for (int co = 0; co < ldco; co += 16)
            {
                var d00 = Vector512.Load(r0 + co); var d01 = Vector512.Load(r0 + ldco + co);
                var d10 = Vector512.Load(r1 + co); var d11 = Vector512.Load(r1 + ldco + co);
                // Columns: e_a0 = d_a0, e_a1 = ½(d_a0 + d_a1), e_a2 = ½(d_a0 − d_a1), e_a3 = −d_a1; then rows the same way.
                var e01 = (d00 + d01) * half; var e02 = (d00 - d01) * half;
                var e11 = (d10 + d11) * half; var e12 = (d10 - d11) * half;
                WeightRowsOut(d00, d10, half, dst + co, 0, xiStride);
                WeightRowsOut(e01, e11, half, dst + co, 1, xiStride);
                WeightRowsOut(e02, e12, half, dst + co, 2, xiStride);
                WeightRowsOut(-d01, -d11, half, dst + co, 3, xiStride);
            }
        }
        // The 16 GEMMs, six (c, kz) rows by 32 output channels per tile.
        for (int xi = 0; xi < 16; xi++)
        {
            float* vx = v + (long)xi * lz;
            float* bx = dyw + xi * xiStride;
            float* cx = acc + (long)xi * k * ldco;
            for (int p = 0; p < k; p += 6)
                for (int co = 0; co < ldco; co += Strip)
                    KernelT6x32(tiles, vx, off + p, Math.Min(6, k - p), bx + co, ldco, cx + (long)p * ldco + co, ldco, first ? 0f : 1f);
        }
    }

    /// <summary>Row a of M·A′ for 16 output channels, M's element ξ = 4a + b at mq[ξ·xs]: s0 = m_a0 + m_a1 + m_a2,
    /// s1 = m_a1 − m_a2, s2 = m_a1 + m_a2 + m_a3.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WeightColumns(float* mq, long xs, int a, out Vector512<float> s0, out Vector512<float> s1, out Vector512<float> s2)
    {
        var m0 = Vector512.Load(mq + 4 * a * xs);
        var m1 = Vector512.Load(mq + (4 * a + 1) * xs);
        var m2 = Vector512.Load(mq + (4 * a + 2) * xs);
        var m3 = Vector512.Load(mq + (4 * a + 3) * xs);
        s0 = m0 + m1 + m2;
        s1 = m1 - m2;
        s2 = m1 + m2 + m3;
    }

    /// <summary>Column b of G′ e G′ᵀ from its two rows e0, e1: ξ = (a, b) for a = 0..3 (e0, ½(e0 + e1), ½(e0 − e1), −e1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WeightRowsOut(Vector512<float> e0, Vector512<float> e1, Vector512<float> half, float* dst, int b, long xiStride)
    {
        Vector512.Store(e0, dst + b * xiStride);
        Vector512.Store((e0 + e1) * half, dst + (4 + b) * xiStride);
        Vector512.Store((e0 - e1) * half, dst + (8 + b) * xiStride);
        Vector512.Store(-e1, dst + (12 + b) * xiStride);
    }
}
