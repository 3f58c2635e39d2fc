using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace MicroExpr.Kernels;

/// <summary>
/// Convolutions on the CPU (2-d and 3-d, groups, stride, padding, dilation; shapes and the GEMM view in
/// <see cref="ConvGeometry"/>; the literal version is <see cref="ConvReference"/>). On Vector512, a 3×3 (or kd×3×3) kernel at
/// stride 1 and dilation 1 (at least 8 channels per group in and out) runs its forward and its
/// backward data by Winograd's F(2×2, 3×3) (Conv.Simd.Winograd.cs). Otherwise, on Vector512 or Vector256 (with at least 8
/// output channels per group, not pointwise) the forward, the backward weight and the stride-1 backward data run as an
/// implicit GEMM over stride phases (Conv.Simd.Implicit.cs); otherwise im2col + the packed SIMD GEMM (<see cref="GemmSimd"/>,
/// Vector512 6×32 micro-kernel with its Vector256 6×16 path), over chunks of output positions, described below.
/// </summary>
/// <remarks>
/// <para><b>Winograd for 3×3 stride 1 (the default on Vector512).</b> The direct tile was at 87–91 % of the FMA peak counting
/// its dropped work (below), so no further tile change could reach the goals. Winograd's F(2×2, 3×3) (forward, and
/// backward data, which is a forward) and F(3×3, 2×2) (backward weight) do 2.25× fewer multiply-adds (16 per 2×2 outputs
/// and input channel instead of 36) on the same tiles (the forward's 8×32, the backward weight's transposed 6×32), for
/// input and output transforms of a few adds per element; a kd×3×3 kernel in 3-d is kd such sums over depth shifts of
/// the same transformed planes. Chosen from these measurements (2026-12-02, this day's machine: AMD EPYC Zen 4, family
/// 0x19, whose Vector512 FMA is half Zen 5's, so the ratios below are not the reference machine's; the old and new builds
/// alternated, `microexpr bench conv2d|conv3d|resnet18`, medians, two or three rounds, min–max over the rounds): 3×3
/// [64,64,28,28] → 64 forward, 1 thread 37.9–45.7 → 22.9–27.5 ms (per round 1.38–1.99×), forward + backward 116.6–136.7 → 77.4–81.5
/// (1.43–1.75×); [64,128,14,14] → 128 forward, 2 threads 20.3–24.0 → 12.4–14.2 (1.61–1.93×); conv3d 3×3×3
/// [8,64,8,28,28] → 64 forward, 1 thread 125.7–144.7 → 84.2–86.5 (1.49–1.67×), forward + backward at 2 threads 191–198 →
/// 131–141; ResNet-18 [64,3,112,112] at 2 threads inference 520–526 → 423–429 ms, SGD training step 1773–1805 →
/// 1181–1222 ms (1.45–1.53×; ReLU's backward vectorised in the same change). In one process, rounds interleaved
/// (`bench conv2d|conv3d --compare algo=winograd,implicit`), Winograd's time over the implicit GEMM's: 28 px forward 0.59 on
/// 1 thread and 0.66 on 2, forward + backward 0.67 and 0.69; 14 px forward on 2 threads 0.55; conv3d forward 0.75,
/// forward + backward 0.63 (benchmarks/RESULTS.md). GFLOP/s figures still count the direct
/// convolution's FLOPs (2·N·Cout·P·Kg), as cuDNN's and oneDNN's benchmarks do for Winograd, so they can pass the FMA
/// peak. Where the forward's time goes (28 px, 1 thread, each phase skipped in turn): input transform about 4.5 ms,
/// GEMMs 15 ms (about 110 GFLOP/s of real work; this machine's FMA peak was not measured), output transform 2 ms, of 23. Rounding: a few ulps of the
/// inputs' magnitudes (tests: 1e-4 + 1e-4·|ref| against double). Not tried: F(4×4, 3×3) (4× fewer multiplies, larger
/// transforms, worse rounding) and a Vector256 Winograd (Vector256 keeps the implicit GEMM).</para>
/// <para><b>The implicit phase GEMM (the default on Vector512).</b> Per sample and group the zero-padded input is split
/// once into its sd·sh·sw stride phases (a stride-1 convolution has one phase: the padded input), so that im2col row
/// k = (c, kz, ky, kx) at output positions q..q+31 of the phase grid (rows Wph = Wo + ⌊(kw − 1)·dw/sw⌋ wide) is one
/// contiguous run at xph + off[k] + q. An 8×32 register tile (8 output channels × 32 grid positions, 16 Vector512
/// accumulators; on Vector256 two 6×16 halves; the 8×32 was chosen over the first 6×32, figures below) then runs over all of K with w read in place and B read in place through the tap offsets: no im2col
/// buffer, no packing of B, no K slices (C written once); the few grid positions past Wo are computed and dropped (7 % at
/// 28 px, 14 % at 14 px), and the valid ones are copied into y with the bias and ReLU. Backward data at stride 1 is the
/// same forward on dy with the kernel's taps reversed and its channels swapped (padding d·(k − 1) − p); backward weight is
/// dWᵀ[k, co] = Σ_q xph[off[k] + q]·dyᵀ[q, co] by a 6×32 tile of six k rows (read in place) by 32 output channels (dy
/// transposed onto the grid). Stride-2 backward data (the stem, the downsampling 3×3/2 and 1×1/2) stays on GEMM + col2im:
/// doing it on the phase GEMM by stride residues (each residue class of dx a stride-1 convolution of dy with the taps of
/// that class, written to every s-th input position; commit "Conv backward data at stride > 1 by stride residues" on
/// branch convperf) measured 0.84× and 1.08× of GEMM + col2im on the 3×3/2 [8, 64, 28, 28] → 128 (per CPU-second, one
/// thread, two runs): four small GEMMs of K = 128–512 over 14×14 outputs, four phase splits of dy and strided writes eat
/// the gain, so it was not kept.</para>
/// <para><b>Choice and measurements.</b> The three candidates, measured as GFLOP per CPU-second on one thread,
/// the variants interleaved in one process (tools: a throwaway probe around <see cref="Forward"/>, NoImplicit toggled), on
/// the shared 2-core machine under load average 50–180, so only ratios within a run mean anything (N = 4 samples):
/// <list type="bullet">
/// <item>im2col + GEMM (before): 3×3 [64, 28, 28] → 64 forward 53–73, backward data 27, backward weight 58; 3×3
/// [128, 14, 14] → 128 forward 58–77, dx 37, dw 63; the 7×7/2 stem forward 33–39, dw 33; 3×3×3 [64, 8, 28, 28] → 64 forward 86, dx
/// 79, dw 86. Its gap to the bare GEMM (116–129) is im2col plus the GEMM's packing of col: about one cycle per im2col
/// element, amortised over only M = Cout = 64 rows.</item>
/// <item>(a) implicit GEMM packing im2col straight into the GEMM's packed-B strips: was already here (the packer below,
/// still used where the phase GEMM is not); the conv helper found it within the noise of plain im2col + GEMM (forward
/// 0.68–0.75 ms per sample against 0.67–0.71): it removes the copy into col, not the per-element im2col work.</item>
/// <item>(b) direct convolution with an output-channel-blocked register tile, taken here in the form above: the tile
/// reads its input straight from a padded, phase-split copy of x in NCHW (the layout the ops already use) rather than an
/// NHWC / NCHWc one, so no layout change of x, w or y is needed; the same tile serves 2-d and 3-d. Forward 102–139
/// (1.9× im2col) on the 3×3 at 28 px, 101–132 (1.8×) at 14 px, stem 73–95 (2.2–2.4×), conv3d 137 (1.6×); dx 100 (3.7×)
/// and 99 (2.7×), conv3d 140 (1.8×); dw 92 (1.6×), 96 (1.5×), stem 60 (1.8×; 95, 3.0×, once dyᵀ was walked in
/// L2-sized blocks of Q), conv3d 125 (1.4×).</item>
/// <item>(c) several images in one GEMM (large N): not tried. The phase grid already gives N ≈ 840 positions per sample
/// at 28 px and the tile has no per-GEMM packing to amortise; it would only pay for the 7×7 stride-2 backward data, which
/// stays on im2col.</item>
/// </list>
/// Quiet-machine figures at 1 and 2 threads: benchmarks/RESULTS.md.</para>
/// <para><b>Conv3d against conv2d, and the tile's limit.</b> Conv3d 3×3×3 [8, 64, 8, 28, 28] → 64 is at 0.73× libtorch
/// while the 3×3 conv2d at 28 px is at 1.23×, but not because its path is worse: on the quiet machine both run at 158
/// GFLOP/s on one thread, and the tile alone (a probe sweeping the then 6×32 tile over one sample's strips and
/// channel blocks with the real tap offsets, no phase split, no copy-out) runs at the same 171–180 GFLOP per CPU-second
/// on conv3d, conv2d 28 px and conv2d 14 px (128 → 128) in one run (70–73 % of the FMA peak); oneDNN is simply better on
/// conv3d (83 % of peak) than on conv2d (53 %). That conv3d's strip reads 3× the taps (its B rows for one strip, 110 KB,
/// do not fit L1; conv2d's 36 KB do) costs nothing measurable: the L2 streams keep up. Tried on the tile, the same
/// probe, old and new alternated: an 8×48 tile (24 accumulators, 3 B loads and 8 broadcasts per 24 FMAs instead of 2 and
/// 6 per 12) 1.03–1.08× on conv3d and at 28 px, 0.94–0.96× at 14 px (48-wide strips waste more of a 16-wide grid row);
/// the kx taps unrolled by 3 (one offset load per three taps) 0.94× and 1.02×. Neither kept.</para>
/// <para><b>Unaligned B loads: measured, not the limit.</b> Every kx tap shifts q by one float, so most Vector512 loads of
/// B span two cache lines. tools/conv-tile-probe (the tile sweep above; variants alternated in one process, 9 rounds of
/// 0.25 CPU-seconds each, one thread, loaded machine; per-round ratios to the real offsets, median and min–max): every
/// off[k] rounded down to a multiple of 16 floats (all B loads 64-byte aligned; wrong numbers, same work) 1.037×
/// (0.98–1.07) at 28 px, 1.024× (1.00–1.21) at 14 px, 1.076× (1.05–1.15) on conv3d; the same plus one float (every load
/// split, the same footprint) 0.997×, 0.988×, 0.986×: the split loads themselves cost 3–4 %, short of the 1.1× a layout
/// change would need. The aligned layout itself (kw copies of the phase planes, copy kx shifted by kx, rows padded to 16
/// floats: 30 → 32 at 28 px) measured 0.95×, 0.95× and 0.76×: three times the B lines per strip (conv2d's no longer fit
/// the 48 KiB L1) and 4 % more grid at 28 px outweigh the aligned loads. Not done. This VM exposes no hardware counters
/// (perf stat: cycles "not supported"), so the probe's controls stand in for them. With every off[k] = 0 (B hot and
/// aligned) the tile is only 1.03–1.10× faster than on the real offsets: the whole data side (L1, L2, alignment) is at most
/// 10 %. The rest is work computed and dropped: 864 grid columns for 784 outputs at 28 px (×1.10), 224 for 196 at 14 px and
/// 7168 for 6272 on conv3d (×1.14), and 6-row blocks computing 66 rows for 64 channels and 132 for 128 (×1.03). Counted
/// with that work, against the probe's own calibration (a register-only FMA loop: 204–226, median 219 GFLOP per
/// CPU-second on the loaded machine, not the quiet 246), the tile on the real offsets runs at 90 %, 91 % and 87 % of the
/// peak, and with off[k] = 0 at 95 %, 94 %, 94 % (a packed 6×32 GEMM loop on L1-hot data: 100 %). The levers left are
/// therefore the dropped work and the broadcasts: an 8×32 tile (16 accumulators; 8 broadcasts and 2 B loads per 16 FMAs;
/// 64 and 128 channels are whole 8-row blocks) measured 1.077× (1.01–1.14), 1.086× (0.95–1.27) and 1.088× (0.94–1.25) of
/// the 6×32 on the real offsets in the same probe: AVX-512 only (19 of 32 zmm registers; the Vector256 path would keep its
/// 6×16 halves, and since every element is the same sum in the same order the two widths would still agree). <b>Kept</b>
/// (<see cref="ConvSimd.ForwardTile"/>, Vector512 only): on the quiet machine, main and the 8×32 build alternated in
/// three rounds (2026-12-02 13:12 UTC, `microexpr bench conv2d|conv3d --threads 1|2 --runs 10|5`, median ms), one
/// thread: 3×3 [64,64,28,28] → 64 23.42–23.71 → 22.46–22.64 (1.04–1.05×), [64,128,14,14] → 128 23.63–23.72 → 22.18–22.79
/// (1.04–1.07×; one main round at 29.7 left out), conv3d 71.2–74.1 → 66.6–68.2 (1.04–1.11×); two threads 12.0–13.4 →
/// 11.4–13.9 at 28 px and 12.0–14.3 → 11.5–11.7 at 14 px. The backward data at stride 1 runs the same forward. The
/// backward weight keeps its 6×32 transposed tile.</para>
/// <para><b>im2col + GEMM (the fallback).</b></para>
/// <para><b>Forward.</b> For each sample n, group g and chunk of pc output positions, the im2col rows
/// col[Kg, pc] (row k = (c, kz, ky, kx): for stride 1 a contiguous copy of an input row with zeros at the padded ends,
/// otherwise a strided gather) are written into a per-thread buffer and y_ng[:, chunk] = W_g·col is one GEMM
/// (M = Coutg, N = pc, K = Kg; W read in place as row-major A). The chunk keeps col at ≤ <see cref="ColBudget"/> floats
/// (L2-resident for the GEMM's packing); pc is a multiple of the 32-column micro-tile. Bias and ReLU are applied to the
/// chunk's rows right after its GEMM, while they are in cache. <b>1×1, stride 1, padding 0</b> (pointwise) is a plain
/// GEMM straight on x (no im2col). Work items (sample, chunk) are split over the threads, each GEMM on one thread;
/// with fewer items than threads, each GEMM is split over the threads instead.</para>
/// <para><b>Backward data.</b> dcol[Kg, pc] = W_gᵀ·dy_ng[:, chunk] (one GEMM, transposed A), then col2im adds dcol into
/// dx_n (the reverse walk of im2col); pointwise: dx_ng = W_gᵀ·dy_ng directly. Split over samples (each owns its dx_n).</para>
/// <para><b>Backward weight.</b> dW_g[:, k0..k1] = Σ_n Σ_chunks dy_ng[:, chunk]·col[k0..k1, chunk]ᵀ (GEMM with transposed
/// B, accumulating with beta = 1 after the first chunk). Split over (group, block of im2col rows k0..k1): each thread
/// builds only its own rows of col and owns its columns of dW, so there are no partial sums to add and no redundant
/// im2col. db[co] = Σ_n Σ_p dy, split over channels, summed in double.</para>
/// <para>Every split depends only on the shape and the thread count: results are deterministic (the phase GEMM's do not
/// depend on the thread count either: each output or dW element is one tile's sum in a fixed order). Scratch (col, the
/// output-row segments of a chunk) is per thread, native, 64-byte aligned and reused: no allocation per call once warm.</para>
/// <para><b>Forward on the Vector512 path: implicit GEMM.</b> When a work item runs its GEMMs on one thread and the
/// GEMM takes its 6×32 Vector512 kernel, the im2col rows are not stored as a matrix: each is built in an L1 row buffer and
/// copied straight into the kernel's packed 32-column strips (<see cref="GemmSimd.TryRunPackedB{TPack}"/>), which removes
/// the GEMM's own packing pass over col. The Vector256 path and threaded GEMMs use im2col + <see cref="GemmSimd.Run"/>.</para>
/// </remarks>
[SkipLocalsInit]
public static unsafe partial class ConvSimd
{
    /// <summary>Largest im2col chunk in floats (Kg·pc): 96 Ki floats = 384 KiB, inside the 1 MiB L2 with the GEMM's packed B.</summary>
    internal const int ColBudget = 96 * 1024;

    private const int Tile = 32;

    /// <summary>Per-thread scratch (the toolkit's <see cref="ThreadScratch"/>): the im2col chunk and the row segments of a chunk.</summary>
    private readonly struct Scratch
    {
        public float* EnsureCol(long floats) => ThreadScratch.Get(ScratchSlot.ConvCol, floats);
        public int* EnsureSeg(int ints) => (int*)ThreadScratch.Get(ScratchSlot.ConvSegments, ints);
    }

    private static Scratch Local => default;

    /// <summary>Output positions per chunk for im2col rows of depth <paramref name="rows"/>: equal chunks, multiples of 32.</summary>
    internal static int ChunkOf(int p, int rows)
    {
        long total = (long)rows * p;
        int chunks = (int)Math.Max(1, (total + ColBudget - 1) / ColBudget);
        int pc = (p + chunks - 1) / chunks;
        pc = (pc + Tile - 1) / Tile * Tile;
        return Math.Min(pc, p);
    }

    /// <summary>body(start, end) over [0, n) in min(threads, n) contiguous equal chunks (inline when one): deterministic.</summary>
    private static void For(int n, int threads, Action<int, int> body) => CpuThreads.For(n, Math.Min(Math.Max(1, threads), n), body, threads);

    // ------------------------------------------------------------------ forward

    /// <summary>y = f(conv(x, w) + b) (b may be null; f = ReLU when relu).</summary>
    public static void Forward(float* y, float* x, float* w, float* b, in ConvGeometry g, bool relu, int threads)
    {
        if (g.N == 0) return;
        if (UsesWinograd(g))
        {
            ForwardWinograd(y, x, w, b, g, relu, threads);
            return;
        }
        if (UsesImplicit(g))
        {
            ForwardImplicit(y, x, w, b, g, relu, threads);
            return;
        }
        var geo = g;
        int p = g.P, pc = g.IsPointwise ? ChunkOf(p, 8) : ChunkOf(p, g.Kg);
        int chunks = (p + pc - 1) / pc;
        int items = g.N * chunks;
        if (threads <= 1 || items >= threads)
        {
            For(items, threads, (s, e) =>
            {
                for (int i = s; i < e; i++) ForwardItem(y, x, w, b, geo, relu, i / chunks, (i % chunks) * pc, pc, 1);
            });
        }
        else
        {
            for (int i = 0; i < items; i++) ForwardItem(y, x, w, b, geo, relu, i / chunks, (i % chunks) * pc, pc, threads);
        }
    }

    private static void ForwardItem(float* y, float* x, float* w, float* b, in ConvGeometry g, bool relu, int n, int p0, int pcMax,
        int threads)
    {
        int p = g.P, pc = Math.Min(pcMax, p - p0), kg = g.Kg, cg = g.Cg, coutg = g.Coutg;
        float* yn = y + (long)n * g.Cout * p;
        float* xn = x + (long)n * g.Cin * g.Pin;
        float* col = g.IsPointwise ? null : Local.EnsureCol((long)kg * pc);
        int* seg = g.IsPointwise ? null : Local.EnsureSeg(4 * (pc / Math.Max(1, g.Wo) + 3));
        for (int grp = 0; grp < g.Groups; grp++)
        {
            float* wg = w + (long)grp * coutg * kg;
            float* yg = yn + (long)grp * coutg * p + p0;
            if (g.IsPointwise)
            {
                GemmSimd.Run(yg, p, wg, kg, false, xn + (long)grp * cg * p + p0, p, false, coutg, pc, kg, 1f, 0f, threads);
            }
            else
            {
                float* xg = xn + (long)grp * cg * g.Pin;
                var packer = new Im2colPacker { Xg = xg, Row = col, Seg = seg, G = g, P0 = p0 };
                if (threads > 1 || !GemmSimd.TryRunPackedB(ref packer, yg, p, wg, kg, coutg, pc, kg, 0f, pc))
                {
                    Im2col(col, xg, g, 0, kg, p0, pc);
                    GemmSimd.Run(yg, p, wg, kg, false, col, pc, false, coutg, pc, kg, 1f, 0f, threads);
                }
            }
        }
        if (b == null && !relu) return;
        for (int co = 0; co < g.Cout; co++)
        {
            var row = new Span<float>(yn + (long)co * p + p0, pc);
            if (b != null) TensorPrimitives.Add(row, b[co], row);
            if (relu) TensorPrimitives.Max(row, 0f, row);
        }
    }

    // ------------------------------------------------------------------ backward data

    /// <summary>dx overwritten from dy and w.</summary>
    public static void BackwardData(float* dx, float* dy, float* w, in ConvGeometry g, int threads)
    {
        if (g.N == 0) return;
        if (TryBackwardDataImplicit(dx, dy, w, g, threads)) return;
        var geo = g;
        if (threads <= 1 || g.N >= threads)
            For(g.N, threads, (s, e) =>
            {
                for (int n = s; n < e; n++) BackwardDataSample(dx, dy, w, geo, n, 1);
            });
        else
            for (int n = 0; n < g.N; n++) BackwardDataSample(dx, dy, w, geo, n, threads);
    }

    private static void BackwardDataSample(float* dx, float* dy, float* w, in ConvGeometry g, int n, int threads)
    {
        int p = g.P, pin = g.Pin, kg = g.Kg, cg = g.Cg, coutg = g.Coutg;
        float* dxn = dx + (long)n * g.Cin * pin;
        float* dyn = dy + (long)n * g.Cout * p;
        if (g.IsPointwise)
        {
            for (int grp = 0; grp < g.Groups; grp++)
                GemmSimd.Run(dxn + (long)grp * cg * pin, pin, w + (long)grp * coutg * kg, kg, true, dyn + (long)grp * coutg * p, p, false,
                    cg, p, coutg, 1f, 0f, threads);
            return;
        }
        new Span<float>(dxn, g.Cin * pin).Clear();
        int pc = ChunkOf(p, kg);
        float* col = Local.EnsureCol((long)kg * pc);
        for (int grp = 0; grp < g.Groups; grp++)
        {
            float* wg = w + (long)grp * coutg * kg;
            float* dyg = dyn + (long)grp * coutg * p;
            for (int p0 = 0; p0 < p; p0 += pc)
            {
                int len = Math.Min(pc, p - p0);
                GemmSimd.Run(col, len, wg, kg, true, dyg + p0, p, false, kg, len, coutg, 1f, 0f, threads);
                Col2imAdd(dxn + (long)grp * cg * pin, col, g, p0, len);
            }
        }
    }

    // ------------------------------------------------------------------ backward weight

    /// <summary>dw (and db when not null) overwritten from dy and x.</summary>
    public static void BackwardWeight(float* dw, float* db, float* dy, float* x, in ConvGeometry g, int threads)
    {
        var geo = g;
        if (g.N == 0)
        {
            new Span<float>(dw, (int)g.WLength).Clear();
            if (db != null) new Span<float>(db, g.Cout).Clear();
            return;
        }
        if (UsesWinograd(geo)) BackwardWeightWinograd(dw, dy, x, geo, threads);
        else if (UsesImplicit(geo)) BackwardWeightImplicit(dw, dy, x, geo, threads);
        else BackwardWeightIm2col(dw, dy, x, geo, threads);
        if (db == null) return;
        int cout = g.Cout, p = g.P, nn = g.N;
        For(cout, threads, (s, e) =>
        {
            for (int co = s; co < e; co++)
            {
                double acc = 0;
                for (int n = 0; n < nn; n++) acc += TensorPrimitives.Sum(new ReadOnlySpan<float>(dy + ((long)n * cout + co) * p, p));
                db[co] = (float)acc;
            }
        });
    }

    private static void BackwardWeightIm2col(float* dw, float* dy, float* x, in ConvGeometry g, int threads)
    {
        var geo = g;
        int kg = g.Kg;
        // Blocks of im2col rows per group: enough items for the threads, each a multiple of the 32-column tile.
        int blocksPerGroup = Math.Max(1, Math.Min((kg + Tile - 1) / Tile, (threads + g.Groups - 1) / g.Groups));
        int rowsPerBlock = ((kg + blocksPerGroup - 1) / blocksPerGroup + Tile - 1) / Tile * Tile;
        blocksPerGroup = (kg + rowsPerBlock - 1) / rowsPerBlock;
        int items = g.Groups * blocksPerGroup;
        For(items, threads, (s, e) =>
        {
            for (int i = s; i < e; i++)
            {
                int grp = i / blocksPerGroup, k0 = (i % blocksPerGroup) * rowsPerBlock;
                WeightBlock(dw, dy, x, geo, grp, k0, Math.Min(kg, k0 + rowsPerBlock));
            }
        });
    }

    private static void WeightBlock(float* dw, float* dy, float* x, in ConvGeometry g, int grp, int k0, int k1)
    {
        int p = g.P, kg = g.Kg, cg = g.Cg, coutg = g.Coutg, rows = k1 - k0;
        float* dwg = dw + (long)grp * coutg * kg + k0;
        int pc = g.IsPointwise ? p : ChunkOf(p, rows);
        float* col = g.IsPointwise ? null : Local.EnsureCol((long)rows * pc);
        bool first = true;
        for (int n = 0; n < g.N; n++)
        {
            float* dyg = dy + ((long)n * g.Cout + grp * coutg) * p;
            float* xg = x + ((long)n * g.Cin + grp * cg) * g.Pin;
            for (int p0 = 0; p0 < p; p0 += pc)
            {
                int len = Math.Min(pc, p - p0);
                float beta = first ? 0f : 1f;
                first = false;
                if (g.IsPointwise)
                    GemmSimd.Run(dwg, kg, dyg + p0, p, false, xg + (long)k0 * p + p0, p, true, coutg, rows, len, 1f, beta, 1);
                else
                {
                    Im2col(col, xg, g, k0, k1, p0, len);
                    GemmSimd.Run(dwg, kg, dyg + p0, p, false, col, len, true, coutg, rows, len, 1f, beta, 1);
                }
            }
        }
    }

    // ------------------------------------------------------------------ im2col / col2im

    /// <summary>
    /// The row segments of output positions p0..p0+len: segment s covers positions (oz, oy, ox0 .. ox0+count) and starts at
    /// column j of the chunk; written as 4 ints (oz, oy, ox0, count) per segment, j implied by the running sum of counts.
    /// </summary>
    private static int Segments(int* seg, in ConvGeometry g, int p0, int len)
    {
        int hw = g.Ho * g.Wo, s = 0, pos = p0, end = p0 + len;
        while (pos < end)
        {
            int oz = pos / hw, rem = pos - oz * hw, oy = rem / g.Wo, ox = rem - oy * g.Wo;
            int count = Math.Min(g.Wo - ox, end - pos);
            seg[4 * s] = oz; seg[4 * s + 1] = oy; seg[4 * s + 2] = ox; seg[4 * s + 3] = count;
            s++;
            pos += count;
        }
        return s;
    }

    /// <summary>col[(k − k0)·len + j] = im2col row k (k0 ≤ k &lt; k1) at chunk column j (positions p0 + j); xg is x of the group's first channel.</summary>
    internal static void Im2col(float* col, float* xg, in ConvGeometry g, int k0, int k1, int p0, int len)
    {
        int* seg = Local.EnsureSeg(4 * (len / Math.Max(1, g.Wo) + 3));
        int segs = Segments(seg, g, p0, len);
        for (int k = k0; k < k1; k++) Im2colRow(col + (long)(k - k0) * len, xg, g, k, seg, segs);
    }

    /// <summary>dst[j] = im2col row k at the positions of the <paramref name="segs"/> row segments (see <see cref="Segments"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Im2colRow(float* dst, float* xg, in ConvGeometry g, int k, int* seg, int segs)
    {
        int kvol = g.KVol, khw = g.Kh * g.Kw;
        int c = k / kvol, r = k - c * kvol, kz = r / khw, r2 = r - kz * khw, ky = r2 / g.Kw, kx = r2 - ky * g.Kw;
        float* xc = xg + (long)c * g.Pin;
        int xoff = kx * g.Dw - g.Pw, hw = g.H * g.W;
        // Valid ox: 0 ≤ ox·sw + xoff < W.
        int vlo = xoff >= 0 ? 0 : (-xoff + g.Sw - 1) / g.Sw;
        int vhi = g.W - 1 - xoff < 0 ? 0 : (g.W - 1 - xoff) / g.Sw + 1;
        for (int s = 0; s < segs; s++)
        {
            int oz = seg[4 * s], oy = seg[4 * s + 1], ox0 = seg[4 * s + 2], count = seg[4 * s + 3];
            int iz = oz * g.Sd - g.Pd + kz * g.Dd, iy = oy * g.Sh - g.Ph + ky * g.Dh;
            if ((uint)iz >= (uint)g.D || (uint)iy >= (uint)g.H)
            {
                new Span<float>(dst, count).Clear();
            }
            else
            {
                float* src = xc + (long)iz * hw + (long)iy * g.W;
                int lo = ox0, hi = ox0 + count;
                int a = Math.Clamp(vlo, lo, hi), e = Math.Clamp(vhi, a, hi);
                int j = 0;
                for (; j < a - lo; j++) dst[j] = 0f;
                if (g.Sw == 1)
                {
                    float* from = src + a + xoff;
                    int len = e - a, q = 0;
                    // A row is short (28 floats at 28 px): 16-, 8- and 4-wide steps before the scalar tail.
                    if (Vector512.IsHardwareAccelerated)
                        for (; q + 16 <= len; q += 16) Vector512.Store(Vector512.Load(from + q), dst + j + q);
                    if (Vector256.IsHardwareAccelerated)
                        for (; q + 8 <= len; q += 8) Vector256.Store(Vector256.Load(from + q), dst + j + q);
                    if (Vector128.IsHardwareAccelerated)
                        for (; q + 4 <= len; q += 4) Vector128.Store(Vector128.Load(from + q), dst + j + q);
                    for (; q < len; q++) dst[j + q] = from[q];
                    j += len;
                }
                else
                {
                    for (int ox = a; ox < e; ox++) dst[j++] = src[ox * g.Sw + xoff];
                }
                for (; j < count; j++) dst[j] = 0f;
            }
            dst += count;
        }
    }

    /// <summary>
    /// Packs im2col panels straight into the GEMM's 32-column strips (<see cref="IPackB"/>): GEMM column j is output position
    /// P0 + j of the sample whose group's input starts at Xg. Each im2col row is built in an L1 row buffer, then copied
    /// into the strips.
    /// </summary>
    private struct Im2colPacker : IPackB
    {
        public float* Xg, Row;
        public int* Seg;
        public ConvGeometry G;
        public int P0;

        public readonly void Pack(float* dst, int p0, int kc, int j0, int nc)
        {
            int segs = Segments(Seg, G, P0 + j0, nc);
            const int nr = GemmSimd.PackedBStrip;
            int fullStrips = nc / nr, rest = nc - fullStrips * nr;
            for (int k = p0; k < p0 + kc; k++)
            {
                Im2colRow(Row, Xg, G, k, Seg, segs);
                float* d = dst + (long)(k - p0) * nr;
                float* src = Row;
                for (int s = 0; s < fullStrips; s++, src += nr, d += (long)kc * nr)
                {
                    Vector512.Store(Vector512.Load(src), d);
                    Vector512.Store(Vector512.Load(src + 16), d + 16);
                }
                if (rest > 0)
                {
                    int j = 0;
                    for (; j < rest; j++) d[j] = src[j];
                    for (; j < nr; j++) d[j] = 0f;
                }
            }
        }
    }

    /// <summary>dxg[c, i] += Σ over the chunk's columns of dcol[k, j] where im2col row k, column j reads input position i.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Col2imAdd(float* dxg, float* dcol, in ConvGeometry g, int p0, int len)
    {
        int* seg = Local.EnsureSeg(4 * (len / Math.Max(1, g.Wo) + 3));
        int segs = Segments(seg, g, p0, len);
        int kvol = g.KVol, khw = g.Kh * g.Kw, pin = g.Pin, hw = g.H * g.W, kg = g.Kg;
        for (int k = 0; k < kg; k++)
        {
            int c = k / kvol, r = k - c * kvol, kz = r / khw, r2 = r - kz * khw, ky = r2 / g.Kw, kx = r2 - ky * g.Kw;
            float* xc = dxg + (long)c * pin;
            float* src = dcol + (long)k * len;
            int xoff = kx * g.Dw - g.Pw;
            for (int s = 0; s < segs; s++)
            {
                int oz = seg[4 * s], oy = seg[4 * s + 1], ox0 = seg[4 * s + 2], count = seg[4 * s + 3];
                int iz = oz * g.Sd - g.Pd + kz * g.Dd, iy = oy * g.Sh - g.Ph + ky * g.Dh;
                if ((uint)iz < (uint)g.D && (uint)iy < (uint)g.H)
                {
                    float* dst = xc + (long)iz * hw + (long)iy * g.W;
                    int lo = ox0, hi = ox0 + count;
                    int vlo = xoff >= 0 ? 0 : (-xoff + g.Sw - 1) / g.Sw;
                    int vhi = g.W - 1 - xoff < 0 ? 0 : (g.W - 1 - xoff) / g.Sw + 1;
                    int a = Math.Clamp(vlo, lo, hi), e = Math.Clamp(vhi, a, hi);
                    float* sj = src + (a - lo);
                    if (g.Sw == 1)
                    {
                        var d = new Span<float>(dst + a + xoff, e - a);
                        TensorPrimitives.Add(d, new ReadOnlySpan<float>(sj, e - a), d);
                    }
                    else
                    {
                        for (int ox = a; ox < e; ox++) dst[ox * g.Sw + xoff] += *sj++;
                    }
                }
                src += count;
            }
        }
    }
}
