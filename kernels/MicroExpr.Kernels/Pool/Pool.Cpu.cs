using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MicroExpr.Kernels;

/// <summary>
/// The CPU pooling kernels (math in <see cref="PoolReference"/>): the planes [p0, p1) of P = N·C, the caller splits planes
/// over threads (planes are independent: the result does not depend on the split). One pass over the input and one over
/// the output; float accumulation within a window. Backward passes scatter within their own plane in a fixed order,
/// so they are deterministic. Average pooling's forward has a Vector512 kernel of the same layout as max pooling's
/// (<see cref="AvgPool512"/>), global average pooling a vector sum; its backward and adaptive windows are scalar loops.
/// </summary>
/// <remarks>
/// <para><b>Max pooling forward, Vector512.</b> The scalar loop (<see cref="MaxPoolScalar"/>: per output a k×k window of
/// compare-and-branch steps) ran ResNet's stem pool 3×3/2 [64, 64, 56, 56] at 0.55 GB/s on one thread on the quiet machine,
/// 60× below the copy bandwidth, while the backward's scatter ran at 20 GB/s: the loop, not memory, was the limit (on
/// random or ReLU data the running maximum changes at unpredictable taps: branch misses, and 9 dependent scalar steps per
/// output). The vector kernel computes 16 consecutive outputs of an output row at once, one lane each, per plane:
/// (1) each input row is copied once into a per-thread buffer, padded with −∞ (Pw in front, a vector's reach behind) and
/// split into sw phases (padded column q at phase q mod sw, position q div sw), so that lane l's input at tap kw, column
/// (start + l)·sw + kw, is one contiguous load at any stride and no load leaves the buffer; the copy also notes NaNs;
/// (2) each input row is reduced over kw once (<see cref="ReduceRows"/>: value and flat index, replaced where
/// <c>v &gt; best</c>) into a per-thread buffer of row maxima, so the row a stride-2 window shares with the next is not
/// reduced twice; (3) per output row the window's row maxima are folded in d, h order with the same strict rule
/// (<see cref="FoldRows"/>). Folding in scan order keeps the reference's result exactly: ties keep the first maximum in
/// d, h, w order. A plane holding a NaN (the copy saw it) goes to the scalar loop, whose rule lets a NaN win (the last
/// NaN), as in PyTorch: the strict compare alone would not, and keeping <c>∨ isNaN(v)</c> in every step cost two more
/// instructions per tap for an input that signals a bug upstream. Padding columns carry a large negative index; a lane
/// whose index is still negative at the end saw only −∞ inputs (padding was never beaten) and is recomputed by the
/// scalar rule (rare). The last chunk of a row ends at Wo (it overlaps the one before and writes some outputs twice, the
/// same values), so every store is a full vector (Wo = 28: a partial chunk of 12 went through a scalar loop before).
/// The next plane's input is prefetched into L1 a few lines per output row while this plane is computed.
/// Choices, measured per CPU-second on one thread on the loaded 2-core machine, each variant alternated with the one
/// before in one process (a throwaway probe calling the kernels; the machine's load changed the absolute figures by
/// up to 2× between runs, the ratios within a run held): scalar 0.64–0.71 GB/s; a first vector version (one chain of 9
/// steps per chunk, a validity mask per tap) 3.8–4.7; with row chains and −∞ padding 6.8 (in cache); with the phase
/// split 8.3 (in cache, 12× the scalar loop; 6.2 GB/s on the quiet machine out of cache). Then, on [2, 64, 56, 56] (in
/// cache) against that version: rows reduced once, the strict compare, full-vector tail 1.4×; as small methods, so that
/// the JIT keeps the loop's vectors in registers (the one big method spilled them to the stack) 1.84×; blending the
/// index vectors as float bits with the value's mask (through AsInt32 the JIT moved the mask from a k register into a
/// vector and back on every step) 2.0× (15.6 against 7.5 GB/s). Out of cache ([64, 64, 56, 56]) the gain was only
/// 1.0–1.1× until the prefetch: then 1.6–1.9× (no prefetch 4.4–4.5 GB/s, prefetch into L2 6.2–6.5, L3 6.2–6.7, L1
/// 6.5–7.5, the old kernel 3.7–3.8, a memcpy of x 17–21, in the same runs). Quiet-machine figures: benchmarks/RESULTS.md.
/// Rejected: separable pooling (column maxima over kh rows, then a max over kw of those) does fewer compares, but its
/// ties between columns resolve in w-then-h order, not the reference's h-then-w order, and ReLU outputs (the stem pool's
/// input) are full of tied zeros; it needs a second compare on the index per step, which costs what it saves (rows
/// first, as here, keeps the order). Non-temporal stores of y and the indices were not tried: the next layer reads
/// them, and with them out of the way (stores to one plane only) the kernel was only 1.15× faster.
/// Without Vector512 (and for rows narrower than 8 outputs, where most lanes would idle) the scalar loop runs.</para>
/// </remarks>
public static unsafe class PoolCpu
{
    /// <summary>Testing hook: when true, max and average pooling take the scalar loops.</summary>
    [ThreadStatic] internal static bool ForceScalar;

    public static void MaxPool(float* y, int* idx, float* x, in PoolGeometry g, int p0, int p1)
    {
        if (p0 >= p1) return;
        if (!ForceScalar && Vector512.IsHardwareAccelerated && Avx512F.IsSupported && g.Wo >= 8) MaxPool512(y, idx, x, g, p0, p1);
        else MaxPoolScalar(y, idx, x, g, p0, p1);
    }

    private const int L = 16;   // lanes of Vector512<float>

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MaxPool512(float* y, int* idx, float* x, in PoolGeometry geo, int p0, int p1)
    {
        var g = geo;   // a local copy: stores through y and idx cannot alias it, so its fields stay in registers
        int wd = g.W, hgt = g.H, rows = g.D * g.H, inPlane = g.InPlane, outPlane = g.OutPlane;
        int kw = g.Kw, sw = g.Sw, pw = g.Pw, wo = g.Wo, ho = g.Ho, dO = g.Do;
        int chunks = (wo + L - 1) / L;
        // Chunk c covers outputs [start_c, start_c + 16): 16c, except that the last one ends at Wo (it overlaps the one
        // before and writes some outputs twice with the same values) so that every store is a full vector; only rows of
        // fewer than 16 outputs have a partial chunk.
        int last = wo >= L ? wo - L : 0;
        // A padded row q = Pw + w (−∞ outside the inputs) is stored as sw phases, phase φ holding q = m·sw + φ at m, so
        // that lane l of chunk c at tap t, q = (start_c + l)·sw + t, is phase t mod sw at start_c + l + t div sw: one
        // contiguous load per tap at any stride. Phase width: the last chunk's reach plus a vector of slack.
        int phase = (chunks * L + (kw + sw - 1) / sw + L + 15) / 16 * 16, wb = sw * phase;
        float* buf = ThreadScratch.Get(ScratchSlot.PoolRows, (long)rows * wb);
        new Span<float>(buf, rows * wb).Fill(float.NegativeInfinity);
        // Per input row and chunk, the row's maxima over kw and their flat indices: values then indices, 16 each.
        float* rowMax = ThreadScratch.Get(ScratchSlot.PoolRowMax, (long)rows * chunks * 2 * L);
        // Per (chunk, kw): the lanes' input columns col = ow·sw − Pw + kw, or a large negative number where col is
        // outside [0, W) (padding), so that an index that comes from padding stays negative. Then the taps' offsets.
        int* lanes = (int*)ThreadScratch.Get(ScratchSlot.PoolLanes, (long)chunks * kw * L + kw + chunks);
        int* starts = lanes + (long)chunks * kw * L + kw;
        for (int c = 0; c < chunks; c++)
        {
            starts[c] = c == chunks - 1 ? last : c * L;
            for (int t = 0; t < kw; t++)
                for (int l = 0; l < L; l++)
                {
                    int w = (starts[c] + l) * sw - pw + t;
                    lanes[(c * kw + t) * L + l] = (uint)w < (uint)wd ? w : int.MinValue / 2;
                }
        }
        int* tapOffset = lanes + (long)chunks * kw * L;
        for (int t = 0; t < kw; t++) tapOffset[t] = t % sw * phase + t / sw;
        // Row windows along D and H, the same for every plane.
        int* bounds = stackalloc int[2 * (dO + ho)];
        for (int o = 0; o < dO; o++) PoolGeometry.Window(o, g.D, dO, g.Kd, g.Sd, g.Pd, false, out bounds[2 * o], out bounds[2 * o + 1], out _);
        for (int o = 0; o < ho; o++) PoolGeometry.Window(o, hgt, ho, g.Kh, g.Sh, g.Ph, false, out bounds[2 * (dO + o)], out bounds[2 * (dO + o) + 1], out _);
        float* tailV = stackalloc float[L];
        int* tailI = stackalloc int[L];
        int rowStride = chunks * 2 * L;
        int pfPerRow = (inPlane / 16 + dO * ho) / (dO * ho) + 1;   // cache lines of a plane per output row, rounded up
        for (int p = p0; p < p1; p++)
        {
            float* xp = x + (long)p * inPlane;
            // The next plane's input is prefetched into L1 while this one is computed, a few lines per output row:
            // issued at once they would fill the miss buffers and stall; without them the loads wait for DRAM.
            float* pf = xp + inPlane, pfEnd = p + 1 < p1 ? pf + inPlane : pf;
            var nan = Vector512<float>.Zero;
            for (int r = 0; r < rows; r++) CopyRowPhases(buf + (long)r * wb, phase, xp + (long)r * wd, wd, pw, sw, ref nan);
            if (nan != Vector512<float>.Zero)
            {
                // A NaN in the plane: the branch-free rule below (strict >) would not let it win; the scalar loop keeps
                // the reference's rule (the last NaN of the window wins). Rare: NaN inputs are a bug upstream.
                MaxPoolScalar(y, idx, x, g, p, p + 1);
                continue;
            }
            // (1) Each input row's maxima over kw (first maximum in w order: strict >), once per row: the rows a
            // stride-2 window shares with the next are not reduced twice.
            for (int c = 0; c < chunks; c++)
                ReduceRows(rowMax + c * 2 * L, rowStride, buf + starts[c], wb, rows, wd, lanes + c * kw * L, tapOffset, kw);
            // (2) Per output row, the window's rows folded in d, h order (strict >: the first maximum in d, h, w order).
            float* yp = y + (long)p * outPlane;
            int* ip = idx + (long)p * outPlane;
            for (int od = 0; od < dO; od++)
            {
                int d0 = bounds[2 * od], d1 = bounds[2 * od + 1];
                for (int oh = 0; oh < ho; oh++)
                {
                    int h0 = bounds[2 * (dO + oh)], h1 = bounds[2 * (dO + oh) + 1];
                    int orow = (od * ho + oh) * wo;
                    for (int k = 0; k < pfPerRow && pf < pfEnd; k++, pf += 16) Sse.Prefetch0(pf);
                    float* src0 = rowMax + (long)(d0 * hgt + h0) * rowStride;
                    for (int c = 0; c < chunks; c++)
                    {
                        FoldRows(src0 + c * 2 * L, rowStride, d1 - d0, h1 - h0, hgt * rowStride, out var best, out var arg);
                        int ow0 = starts[c], n = Math.Min(L, wo - ow0);
                        // A negative index: padding (−∞) was never beaten, i.e. every input of the window is −∞; the
                        // first of them is the answer (rare: recomputed by the scalar rule).
                        uint pad = (uint)Vector512.LessThan(arg, Vector512<int>.Zero).ExtractMostSignificantBits() & (n == L ? 0xFFFFu : (1u << n) - 1);
                        if (n == L && pad == 0)
                        {
                            Vector512.Store(best, yp + orow + ow0);
                            Vector512.Store(arg, ip + orow + ow0);
                            continue;
                        }
                        Vector512.Store(best, tailV);
                        Vector512.Store(arg, tailI);
                        for (int l = 0; l < n; l++)
                        {
                            if ((pad >> l & 1) != 0) FirstMax(xp, g, d0, d1, h0, h1, ow0 + l, out tailV[l], out tailI[l]);
                            yp[orow + ow0 + l] = tailV[l];
                            ip[orow + ow0 + l] = tailI[l];
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// One chunk of 16 output columns, every input row r of the plane: dst[r·rowStride + (0..16)] = max over the kw taps
    /// of the row (first maximum: strict &gt;), dst[r·rowStride + (16..32)] = its flat index r·W + column (negative where
    /// only padding was seen). src: the chunk's first column in the phase-split buffer (rows wb apart); cols [kw, 16]: the
    /// lanes' columns per tap; tapOffset[t]: tap t's offset in the buffer. Its own method, with kw = 3 unrolled, so that
    /// the JIT keeps the loop's vectors in registers (inlined into the plane loop it spilled them).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ReduceRows(float* dst, int rowStride, float* src, int wb, int rows, int wd, int* cols, int* tapOffset, int kw)
    {
        // The index vectors travel as float bits: a blend is bitwise, and blending them with the value's own mask (as
        // float) lets the JIT keep the mask in a k register (through AsInt32 it converted the mask to a vector and back).
        var rowBase = Vector512<int>.Zero;
        var step = Vector512.Create(wd);
        if (kw == 3)
        {
            int o1 = tapOffset[1], o2 = tapOffset[2];
            var c0 = Vector512.Load((float*)cols);
            var c1 = Vector512.Load((float*)cols + L);
            var c2 = Vector512.Load((float*)cols + 2 * L);
            for (int r = 0; r < rows; r++, src += wb, dst += rowStride, rowBase += step)
            {
                var v0 = Vector512.Load(src);
                var v1 = Vector512.Load(src + o1);
                var v2 = Vector512.Load(src + o2);
                var t1 = Avx512F.CompareGreaterThan(v1, v0);
                var b = Avx512F.BlendVariable(v0, v1, t1);
                var a = Avx512F.BlendVariable(c0, c1, t1);
                var t2 = Avx512F.CompareGreaterThan(v2, b);
                Vector512.Store(Avx512F.BlendVariable(b, v2, t2), dst);
                Vector512.Store(Avx512F.BlendVariable(a, c2, t2).AsInt32() + rowBase, (int*)dst + L);
            }
            return;
        }
        for (int r = 0; r < rows; r++, src += wb, dst += rowStride, rowBase += step)
        {
            var b = Vector512.Load(src);
            var a = Vector512.Load((float*)cols);
            for (int t = 1; t < kw; t++)
            {
                var v = Vector512.Load(src + tapOffset[t]);
                var take = Avx512F.CompareGreaterThan(v, b);
                b = Avx512F.BlendVariable(b, v, take);
                a = Avx512F.BlendVariable(a, Vector512.Load((float*)cols + t * L), take);
            }
            Vector512.Store(b, dst);
            Vector512.Store(a.AsInt32() + rowBase, (int*)dst + L);
        }
    }

    /// <summary>
    /// The window's nd × nh row maxima of <see cref="ReduceRows"/> (rows rowStride apart, planes along D dStride apart)
    /// folded in d, h order with strict &gt; (the first maximum in d, h, w order); the common case of one plane of 3 rows
    /// unrolled.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FoldRows(float* src, int rowStride, int nd, int nh, int dStride, out Vector512<float> best, out Vector512<int> arg)
    {
        if (nd == 1 && nh == 3)
        {
            var b0 = Vector512.Load(src);
            var b1 = Vector512.Load(src + rowStride);
            var b2 = Vector512.Load(src + 2 * rowStride);
            var t1 = Avx512F.CompareGreaterThan(b1, b0);
            var b = Avx512F.BlendVariable(b0, b1, t1);
            var a = Avx512F.BlendVariable(Vector512.Load(src + L), Vector512.Load(src + rowStride + L), t1);
            var t2 = Avx512F.CompareGreaterThan(b2, b);
            best = Avx512F.BlendVariable(b, b2, t2);
            arg = Avx512F.BlendVariable(a, Vector512.Load(src + 2 * rowStride + L), t2).AsInt32();
            return;
        }
        best = Vector512.Create(float.NegativeInfinity);
        var ar = Vector512.Create(int.MinValue / 2).AsSingle();
        for (int d = 0; d < nd; d++)
        {
            float* row = src + (long)d * dStride;
            for (int h = 0; h < nh; h++, row += rowStride)
            {
                var rb = Vector512.Load(row);
                var take = Avx512F.CompareGreaterThan(rb, best);
                best = Avx512F.BlendVariable(best, rb, take);
                ar = Avx512F.BlendVariable(ar, Vector512.Load(row + L), take);
            }
        }
        arg = ar.AsInt32();
    }

    /// <summary>
    /// Input row src[0..n) into the phases of its padded row (position q = pad + w goes to dst[(q mod sw)·phase + q div sw];
    /// the padding slots keep their −∞). Stride 1 is a copy; stride 2 splits 32 inputs into evens and odds with two
    /// permutes; other strides are scalar. <paramref name="nan"/> gets lanes set where an input is a NaN.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyRowPhases(float* dst, int phase, float* src, int n, int pad, int sw, ref Vector512<float> nan)
    {
        int i = 0;
        if (sw == 1)
        {
            float* d = dst + pad;
            for (; i + 16 <= n; i += 16)
            {
                var v = Vector512.Load(src + i);
                nan |= ~Vector512.Equals(v, v);
                Vector512.Store(v, d + i);
            }
            for (; i < n; i++) Copy1(d + i, src[i], ref nan);
            return;
        }
        if (sw == 2)
        {
            // w even → q = pad + w: phase pad mod 2 at (pad + w) div 2; w odd → the other phase.
            float* evens = dst + (pad & 1) * phase + pad / 2;
            float* odds = dst + ((pad + 1) & 1) * phase + (pad + 1) / 2;
            var e = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            var o = Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
            for (int next = 0; next + 32 <= n; )
            {
                i = next;
                var lo = Vector512.Load(src + i);
                var hi = Vector512.Load(src + i + 16);
                nan |= ~Vector512.Equals(lo, lo) | ~Vector512.Equals(hi, hi);
                Vector512.Store(Avx512F.PermuteVar16x32x2(lo, e, hi), evens + i / 2);
                Vector512.Store(Avx512F.PermuteVar16x32x2(lo, o, hi), odds + i / 2);
                i += 32;
                // The last block may overlap the one before (same values written twice); it starts at an even input.
                next = i + 32 <= n || i >= (n & ~1) ? i : (n & ~1) - 32;
            }
            for (; i + 2 <= n; i += 2)
            {
                Copy1(evens + i / 2, src[i], ref nan);
                Copy1(odds + i / 2, src[i + 1], ref nan);
            }
            if (i < n) Copy1(evens + i / 2, src[i], ref nan);
            return;
        }
        // q = pad + i = m·sw + φ, walked without division.
        int phi = pad % sw, m = pad / sw;
        for (; i < n; i++)
        {
            Copy1(dst + phi * phase + m, src[i], ref nan);
            if (++phi == sw) { phi = 0; m++; }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Copy1(float* dst, float v, ref Vector512<float> nan)
    {
        *dst = v;
        if (float.IsNaN(v)) nan = Vector512<float>.AllBitsSet;
    }

    /// <summary>The reference's rule for output column ow of rows [d0, d1) × [h0, h1) of plane xp.</summary>
    private static void FirstMax(float* xp, in PoolGeometry g, int d0, int d1, int h0, int h1, int ow, out float value, out int index)
    {
        PoolGeometry.Window(ow, g.W, g.Wo, g.Kw, g.Sw, g.Pw, false, out int w0, out int w1, out _);
        int arg = -1;
        float best = float.NegativeInfinity;
        for (int d = d0; d < d1; d++)
            for (int h = h0; h < h1; h++)
                for (int w = w0; w < w1; w++)
                {
                    int i = (d * g.H + h) * g.W + w;
                    float v = xp[i];
                    if (arg < 0 || v > best || float.IsNaN(v)) { best = v; arg = i; }
                }
        value = best;
        index = arg;
    }

    /// <summary>The scalar max pooling loop (the fallback and the reference's rule, in float).</summary>
    internal static void MaxPoolScalar(float* y, int* idx, float* x, in PoolGeometry g, int p0, int p1)
    {
        int inPlane = g.InPlane, outPlane = g.OutPlane, wd = g.W, hw = g.H * g.W;
        // The windows along each axis, computed once per call (the same for every plane).
        Span<int> bounds = stackalloc int[2 * (g.Do + g.Ho + g.Wo)];
        Span<int> bd = bounds[..(2 * g.Do)], bh = bounds.Slice(2 * g.Do, 2 * g.Ho), bw = bounds[(2 * (g.Do + g.Ho))..];
        for (int o = 0; o < g.Do; o++) PoolGeometry.Window(o, g.D, g.Do, g.Kd, g.Sd, g.Pd, false, out bd[2 * o], out bd[2 * o + 1], out _);
        for (int o = 0; o < g.Ho; o++) PoolGeometry.Window(o, g.H, g.Ho, g.Kh, g.Sh, g.Ph, false, out bh[2 * o], out bh[2 * o + 1], out _);
        for (int o = 0; o < g.Wo; o++) PoolGeometry.Window(o, g.W, g.Wo, g.Kw, g.Sw, g.Pw, false, out bw[2 * o], out bw[2 * o + 1], out _);
        int dO = g.Do, hO = g.Ho, wO = g.Wo;
        for (int p = p0; p < p1; p++)
        {
            float* xp = x + (long)p * inPlane;
            float* yp = y + (long)p * outPlane;
            int* ip = idx + (long)p * outPlane;
            int o = 0;
            for (int od = 0; od < dO; od++)
            {
                int d0 = bd[2 * od], d1 = bd[2 * od + 1];
                for (int oh = 0; oh < hO; oh++)
                {
                    int h0 = bh[2 * oh], h1 = bh[2 * oh + 1];
                    for (int ow = 0; ow < wO; ow++, o++)
                    {
                        int w0 = bw[2 * ow], w1 = bw[2 * ow + 1];
                        int arg = d0 * hw + h0 * wd + w0;
                        float best = xp[arg];
                        for (int d = d0; d < d1; d++)
                            for (int h = h0; h < h1; h++)
                            {
                                int row = d * hw + h * wd;
                                for (int w = w0; w < w1; w++)
                                {
                                    float v = xp[row + w];
                                    if (v > best || float.IsNaN(v)) { best = v; arg = row + w; }
                                }
                            }
                        yp[o] = best;
                        ip[o] = arg;
                    }
                }
            }
        }
    }

    /// <summary>dx[p, ·] = 0, then dx[p, idx[p, o]] += dy[p, o] in output order (max-pool backward; dx [P, n], dy, idx [P, m]).</summary>
    public static void ScatterAdd(float* dx, float* dy, int* idx, int m, int n, int p0, int p1)
    {
        for (int p = p0; p < p1; p++)
        {
            float* d = dx + (long)p * n;
            new Span<float>(d, n).Clear();
            long b = (long)p * m;
            for (int j = 0; j < m; j++) d[idx[b + j]] += dy[b + j];
        }
    }

    /// <summary>y[p, ·] = 0, then y[p, idx[p, j]] = x[p, j] (max-unpool; y [P, n], x, idx [P, m]; later j win on repeats).</summary>
    public static void Scatter(float* y, float* x, int* idx, int m, int n, int p0, int p1)
    {
        for (int p = p0; p < p1; p++)
        {
            float* d = y + (long)p * n;
            new Span<float>(d, n).Clear();
            long b = (long)p * m;
            for (int j = 0; j < m; j++) d[idx[b + j]] = x[b + j];
        }
    }

    /// <summary>dx[p, j] = dy[p, idx[p, j]] (max-unpool backward; dx, idx [P, m], dy [P, n]).</summary>
    public static void Gather(float* dx, float* dy, int* idx, int m, int n, int p0, int p1)
    {
        for (int p = p0; p < p1; p++)
        {
            long b = (long)p * m;
            float* s = dy + (long)p * n;
            for (int j = 0; j < m; j++) dx[b + j] = s[idx[b + j]];
        }
    }

    /// <summary>
    /// Average pooling forward, Vector512: the max kernel's layout (<see cref="MaxPool512"/>: 16 outputs of a row per
    /// vector, rows copied once into stride phases, here padded with zeros, each input row summed over kw once, then the
    /// window's rows added in d, h order) and one division per output by its count (per lane along W, per row along D
    /// and H). Rows of fewer than 16 outputs take the scalar loop.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AvgPool512(float* y, float* x, in PoolGeometry geo, int p0, int p1)
    {
        var g = geo;
        int wd = g.W, hgt = g.H, rows = g.D * g.H, inPlane = g.InPlane, outPlane = g.OutPlane;
        int kw = g.Kw, sw = g.Sw, pw = g.Pw, wo = g.Wo, ho = g.Ho, dO = g.Do;
        bool include = g.CountIncludePad != 0;
        int chunks = (wo + L - 1) / L, last = wo - L;
        int phase = (chunks * L + (kw + sw - 1) / sw + L + 15) / 16 * 16, wb = sw * phase;
        float* buf = ThreadScratch.Get(ScratchSlot.PoolRows, (long)rows * wb);
        new Span<float>(buf, rows * wb).Clear();
        int rowStride = chunks * L;
        float* rowSum = ThreadScratch.Get(ScratchSlot.PoolRowMax, (long)rows * rowStride);
        // Per chunk: its first output and the lanes' counts along W; then the taps' offsets.
        float* lanes = ThreadScratch.Get(ScratchSlot.PoolLanes, (long)chunks * L + kw + chunks);
        int* tapOffset = (int*)lanes + chunks * L;
        int* starts = tapOffset + kw;
        for (int c = 0; c < chunks; c++)
        {
            starts[c] = c == chunks - 1 ? last : c * L;
            for (int l = 0; l < L; l++)
            {
                PoolGeometry.Window(starts[c] + l, wd, wo, kw, sw, pw, false, out int w0, out int w1, out int padded);
                lanes[c * L + l] = include ? padded : w1 - w0;
            }
        }
        for (int t = 0; t < kw; t++) tapOffset[t] = t % sw * phase + t / sw;
        var nan = Vector512<float>.Zero;   // unused: sums carry NaNs by themselves
        for (int p = p0; p < p1; p++)
        {
            float* xp = x + (long)p * inPlane;
            for (int r = 0; r < rows; r++) CopyRowPhases(buf + (long)r * wb, phase, xp + (long)r * wd, wd, pw, sw, ref nan);
            for (int c = 0; c < chunks; c++)
            {
                float* src = buf + starts[c], dst = rowSum + c * L;
                for (int r = 0; r < rows; r++, src += wb, dst += rowStride)
                {
                    var sum = Vector512.Load(src);
                    for (int t = 1; t < kw; t++) sum += Vector512.Load(src + tapOffset[t]);
                    Vector512.Store(sum, dst);
                }
            }
            float* yp = y + (long)p * outPlane;
            for (int od = 0; od < dO; od++)
            {
                PoolGeometry.Window(od, g.D, dO, g.Kd, g.Sd, g.Pd, false, out int d0, out int d1, out int pd);
                for (int oh = 0; oh < ho; oh++)
                {
                    PoolGeometry.Window(oh, hgt, ho, g.Kh, g.Sh, g.Ph, false, out int h0, out int h1, out int ph);
                    var rowsCount = Vector512.Create((float)(include ? pd * ph : (d1 - d0) * (h1 - h0)));
                    float* yrow = yp + (od * ho + oh) * wo;
                    for (int c = 0; c < chunks; c++)
                    {
                        var sum = Vector512<float>.Zero;
                        for (int d = d0; d < d1; d++)
                        {
                            float* src = rowSum + (long)(d * hgt + h0) * rowStride + c * L;
                            for (int h = h0; h < h1; h++, src += rowStride) sum += Vector512.Load(src);
                        }
                        Vector512.Store(sum / (rowsCount * Vector512.Load(lanes + c * L)), yrow + starts[c]);
                    }
                }
            }
        }
    }

    /// <summary>Average pooling forward (<paramref name="backward"/> false: y from x) or backward (true: dx from dy, dx
    /// overwritten), planes [p0, p1).</summary>
    public static void AvgPool(float* y, float* x, in PoolGeometry g, bool backward, int p0, int p1)
    {
        if (p0 >= p1) return;
        int inPlane = g.InPlane, outPlane = g.OutPlane;
        bool ad = g.Adaptive != 0;
        if (ad && outPlane == 1 && !ForceScalar)
        {
            // Global average pooling: one window, the whole plane (a vector sum; the scalar loop is one dependent chain).
            float inv = 1f / inPlane;
            for (int p = p0; p < p1; p++)
            {
                var plane = new Span<float>(x + (long)p * inPlane, inPlane);
                if (backward) plane.Fill(y[p] * inv);
                else y[p] = System.Numerics.Tensors.TensorPrimitives.Sum<float>(plane) * inv;
            }
            return;
        }
        if (!backward && !ad && !ForceScalar && Vector512.IsHardwareAccelerated && Avx512F.IsSupported && g.Wo >= L)
        {
            AvgPool512(y, x, g, p0, p1);
            return;
        }
        for (int p = p0; p < p1; p++)
        {
            float* xp = x + (long)p * inPlane;
            if (backward) new Span<float>(xp, inPlane).Clear();
            int o = p * outPlane;
            for (int od = 0; od < g.Do; od++)
            {
                PoolGeometry.Window(od, g.D, g.Do, g.Kd, g.Sd, g.Pd, ad, out int d0, out int d1, out int pd);
                for (int oh = 0; oh < g.Ho; oh++)
                {
                    PoolGeometry.Window(oh, g.H, g.Ho, g.Kh, g.Sh, g.Ph, ad, out int h0, out int h1, out int ph);
                    for (int ow = 0; ow < g.Wo; ow++, o++)
                    {
                        PoolGeometry.Window(ow, g.W, g.Wo, g.Kw, g.Sw, g.Pw, ad, out int w0, out int w1, out int pw);
                        int count = g.CountIncludePad != 0 && !ad ? pd * ph * pw : (d1 - d0) * (h1 - h0) * (w1 - w0);
                        float inv = 1f / count;
                        if (backward)
                        {
                            float v = y[o] * inv;
                            for (int d = d0; d < d1; d++)
                                for (int h = h0; h < h1; h++)
                                {
                                    float* row = xp + (d * g.H + h) * g.W;
                                    for (int w = w0; w < w1; w++) row[w] += v;
                                }
                        }
                        else
                        {
                            float sum = 0f;
                            for (int d = d0; d < d1; d++)
                                for (int h = h0; h < h1; h++)
                                {
                                    float* row = xp + (d * g.H + h) * g.W;
                                    for (int w = w0; w < w1; w++) sum += row[w];
                                }
                            y[o] = sum * inv;
                        }
                    }
                }
            }
        }
    }
}
