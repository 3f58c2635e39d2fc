using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MicroExpr.Kernels;

namespace MicroExpr.Tensors.Cpu;

/// <summary>
/// Convolutions on the CPU (2-d and 3-d, groups, stride, padding, dilation; shapes and the GEMM view in
/// <see cref="ConvGeometry"/>; the literal version is <see cref="ConvReference"/>): im2col + the packed SIMD GEMM
/// (<see cref="GemmSimd"/>, Vector512 6×32 micro-kernel with its Vector256 6×16 path), over chunks of output positions.
/// </summary>
/// <remarks>
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
/// <para>Every split depends only on the shape and the thread count: results are deterministic. Scratch (col, the
/// output-row segments of a chunk) is per thread, native, 64-byte aligned and reused: no allocation per call once warm.</para>
/// <para><b>Choice and measurements.</b> See the notes at <see cref="ColBudget"/> (filled in from <c>microexpr bench conv2d</c>).</para>
/// </remarks>
[SkipLocalsInit]
public static unsafe class ConvSimd
{
    /// <summary>Largest im2col chunk in floats (Kg·pc): 96 Ki floats = 384 KiB, inside the 1 MiB L2 with the GEMM's packed B.</summary>
    internal const int ColBudget = 96 * 1024;

    private const int Tile = 32;

    /// <summary>Per-thread scratch: the im2col chunk and the row segments of a chunk.</summary>
    private sealed class Scratch
    {
        public float* Col;
        public long ColCap;
        public int* Seg;
        public int SegCap;

        ~Scratch()
        {
            if (Col != null) NativeMemory.AlignedFree(Col);
            if (Seg != null) NativeMemory.AlignedFree(Seg);
        }

        public float* EnsureCol(long floats)
        {
            if (floats > ColCap)
            {
                if (Col != null) NativeMemory.AlignedFree(Col);
                Col = (float*)NativeMemory.AlignedAlloc((nuint)(floats * 4), 64);
                ColCap = floats;
            }
            return Col;
        }

        public int* EnsureSeg(int ints)
        {
            if (ints > SegCap)
            {
                if (Seg != null) NativeMemory.AlignedFree(Seg);
                Seg = (int*)NativeMemory.AlignedAlloc((nuint)(ints * 4), 64);
                SegCap = ints;
            }
            return Seg;
        }
    }

    [ThreadStatic] private static Scratch? t_scratch;

    private static Scratch Local => t_scratch ??= new Scratch();

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
    private static void For(int n, int threads, Action<int, int> body)
    {
        int chunks = Math.Min(Math.Max(1, threads), n);
        if (chunks <= 1)
        {
            if (n > 0) body(0, n);
            return;
        }
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = chunks }, c =>
        {
            int start = (int)((long)n * c / chunks), end = (int)((long)n * (c + 1) / chunks);
            if (end > start) body(start, end);
        });
    }

    // ------------------------------------------------------------------ forward

    /// <summary>y = f(conv(x, w) + b) (b may be null; f = ReLU when relu).</summary>
    public static void Forward(float* y, float* x, float* w, float* b, in ConvGeometry g, bool relu, int threads)
    {
        if (g.N == 0) return;
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
                Im2col(col, xn + (long)grp * cg * g.Pin, g, 0, kg, p0, pc);
                GemmSimd.Run(yg, p, wg, kg, false, col, pc, false, coutg, pc, kg, 1f, 0f, threads);
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
        int kg = g.Kg;
        if (g.N == 0)
        {
            new Span<float>(dw, (int)g.WLength).Clear();
            if (db != null) new Span<float>(db, g.Cout).Clear();
            return;
        }
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
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Im2col(float* col, float* xg, in ConvGeometry g, int k0, int k1, int p0, int len)
    {
        int* seg = Local.EnsureSeg(4 * (len / Math.Max(1, g.Wo) + 3));
        int segs = Segments(seg, g, p0, len);
        int kvol = g.KVol, khw = g.Kh * g.Kw, pin = g.Pin, hw = g.H * g.W;
        for (int k = k0; k < k1; k++)
        {
            int c = k / kvol, r = k - c * kvol, kz = r / khw, r2 = r - kz * khw, ky = r2 / g.Kw, kx = r2 - ky * g.Kw;
            float* xc = xg + (long)c * pin;
            float* dst = col + (long)(k - k0) * len;
            int xoff = kx * g.Dw - g.Pw;
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
                    // Valid ox: 0 ≤ ox·sw + xoff < W.
                    int lo = ox0, hi = ox0 + count;
                    int vlo = xoff >= 0 ? 0 : (-xoff + g.Sw - 1) / g.Sw;
                    int vhi = g.W - 1 - xoff < 0 ? 0 : (g.W - 1 - xoff) / g.Sw + 1;
                    int a = Math.Clamp(vlo, lo, hi), e = Math.Clamp(vhi, a, hi);
                    int j = 0;
                    for (; j < a - lo; j++) dst[j] = 0f;
                    if (g.Sw == 1)
                    {
                        new ReadOnlySpan<float>(src + a + xoff, e - a).CopyTo(new Span<float>(dst + j, e - a));
                        j += e - a;
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
