using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MicroExpr.Kernels;

/// <summary>
/// The CPU pooling kernels (math in <see cref="PoolReference"/>): the planes [p0, p1) of P = N·C, the caller splits planes
/// over threads (planes are independent: the result does not depend on the split). One pass over the input and one over
/// the output; float accumulation within a window. Backward passes scatter within their own plane in a fixed order,
/// so they are deterministic. Average pooling's forward has a Vector512 kernel of the same layout as max pooling's
/// (<see cref="AvgPoolVec{T, TV}"/>) and its backward the transpose of it (<see cref="AvgPoolBackwardVec{T, TV}"/>), global
/// average pooling a vector sum; adaptive windows are scalar loops.
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
/// (2) each input row is reduced over kw once (<see cref="ReduceRows{T, TV}"/>: value and flat index, replaced where
/// <c>v &gt; best</c>) into a per-thread buffer of row maxima, so the row a stride-2 window shares with the next is not
/// reduced twice; (3) per output row the window's row maxima are folded in d, h order with the same strict rule
/// (<see cref="FoldRows{T, TV}"/>). Folding in scan order keeps the reference's result exactly: ties keep the first maximum in
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
/// <para><b>Widths.</b> The kernels are written once over the lane operations of <see cref="IPoolLanes{TV}"/>
/// (<see cref="Lanes512"/>: 16 lanes; <see cref="Lanes256"/>: 8 lanes, AVX2, chosen by <see cref="SimdIsaSelect"/> where
/// AVX-512 is missing and forced in the tests); the generic Vector512 instance measured 1.06–1.11× the hand-written one
/// it replaced (same probe), the Vector256 one 0.80–0.93× of it on this AVX-512 machine. Rows narrower than half a
/// vector (Wo &lt; 8 at 16 lanes, &lt; 4 at 8), where most lanes would idle, and machines without AVX2 take the scalar loop.</para>
/// </remarks>
public static unsafe class PoolCpu
{
    /// <summary>Testing hook: when true, max and average pooling take the scalar loops.</summary>
    [ThreadStatic] internal static bool ForceScalar;

    public static void MaxPool(float* y, int* idx, float* x, in PoolGeometry g, int p0, int p1)
    {
        if (p0 >= p1) return;
        var isa = ForceScalar ? SimdIsa.Scalar : SimdIsaSelect.Current;
        if (isa == SimdIsa.V512 && g.Wo >= 8) MaxPoolVec<Lanes512, Vector512<float>>(y, idx, x, g, p0, p1);
        else if (isa >= SimdIsa.V256 && g.Wo >= 4) MaxPoolVec<Lanes256, Vector256<float>>(y, idx, x, g, p0, p1);
        else MaxPoolScalar(y, idx, x, g, p0, p1);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MaxPoolVec<T, TV>(float* y, int* idx, float* x, in PoolGeometry geo, int p0, int p1)
        where T : struct, IPoolLanes<TV> where TV : struct
    {
        int L = T.Count;
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
        int phase = (chunks * L + (kw + sw - 1) / sw + 2 * L + 15) / 16 * 16, wb = sw * phase;
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
            var nan = T.Zero;
            for (int r = 0; r < rows; r++) CopyRowPhases<T, TV>(buf + (long)r * wb, phase, xp + (long)r * wd, wd, pw, sw, ref nan);
            if (T.Any(nan))
            {
                // A NaN in the plane: the branch-free rule below (strict >) would not let it win; the scalar loop keeps
                // the reference's rule (the last NaN of the window wins). Rare: NaN inputs are a bug upstream.
                MaxPoolScalar(y, idx, x, g, p, p + 1);
                continue;
            }
            // (1) Each input row's maxima over kw (first maximum in w order: strict >), once per row: the rows a
            // stride-2 window shares with the next are not reduced twice.
            for (int c = 0; c < chunks; c++)
                ReduceRows<T, TV>(rowMax + c * 2 * L, rowStride, buf + starts[c], wb, rows, wd, lanes + c * kw * L, tapOffset, kw);
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
                        FoldRows<T, TV>(src0 + c * 2 * L, rowStride, d1 - d0, h1 - h0, hgt * rowStride, out var best, out var arg);
                        int ow0 = starts[c], n = Math.Min(L, wo - ow0);
                        // A negative index: padding (−∞) was never beaten, i.e. every input of the window is −∞; the
                        // first of them is the answer (rare: recomputed by the scalar rule).
                        uint pad = T.SignBits(arg) & ((1u << n) - 1);
                        if (n == L && pad == 0)
                        {
                            T.Store(yp + orow + ow0, best);
                            T.Store((float*)ip + orow + ow0, arg);
                            continue;
                        }
                        T.Store(tailV, best);
                        T.Store((float*)tailI, arg);
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
    /// One chunk of L output columns (L = T.Count lanes), every input row r of the plane: dst[r·rowStride + (0..L)] = max over the kw taps
    /// of the row (first maximum: strict &gt;), dst[r·rowStride + (L..2L)] = its flat index r·W + column (negative where
    /// only padding was seen). src: the chunk's first column in the phase-split buffer (rows wb apart); cols [kw, L]: the
    /// lanes' columns per tap; tapOffset[t]: tap t's offset in the buffer. Its own method, with kw = 3 unrolled, so that
    /// the JIT keeps the loop's vectors in registers (inlined into the plane loop it spilled them).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ReduceRows<T, TV>(float* dst, int rowStride, float* src, int wb, int rows, int wd, int* cols, int* tapOffset, int kw)
        where T : struct, IPoolLanes<TV> where TV : struct
    {
        int L = T.Count;
        // The index vectors travel as float bits: a blend is bitwise, and blending them with the value's own mask (as
        // float) lets the JIT keep the mask in a k register (through AsInt32 it converted the mask to a vector and back).
        var rowBase = T.Zero;
        var step = T.SplatInt(wd);
        if (kw == 3)
        {
            int o1 = tapOffset[1], o2 = tapOffset[2];
            var c0 = T.Load((float*)cols);
            var c1 = T.Load((float*)cols + L);
            var c2 = T.Load((float*)cols + 2 * L);
            for (int r = 0; r < rows; r++, src += wb, dst += rowStride, rowBase = T.AddInt(rowBase, step))
            {
                var v0 = T.Load(src);
                var v1 = T.Load(src + o1);
                var v2 = T.Load(src + o2);
                var t1 = T.Greater(v1, v0);
                var b = T.Blend(v0, v1, t1);
                var a = T.Blend(c0, c1, t1);
                var t2 = T.Greater(v2, b);
                T.Store(dst, T.Blend(b, v2, t2));
                T.Store(dst + L, T.AddInt(T.Blend(a, c2, t2), rowBase));
            }
            return;
        }
        for (int r = 0; r < rows; r++, src += wb, dst += rowStride, rowBase = T.AddInt(rowBase, step))
        {
            var b = T.Load(src);
            var a = T.Load((float*)cols);
            for (int t = 1; t < kw; t++)
            {
                var v = T.Load(src + tapOffset[t]);
                var take = T.Greater(v, b);
                b = T.Blend(b, v, take);
                a = T.Blend(a, T.Load((float*)cols + t * L), take);
            }
            T.Store(dst, b);
            T.Store(dst + L, T.AddInt(a, rowBase));
        }
    }

    /// <summary>
    /// The window's nd × nh row maxima of <see cref="ReduceRows{T, TV}"/> (rows rowStride apart, planes along D dStride apart)
    /// folded in d, h order with strict &gt; (the first maximum in d, h, w order); the common case of one plane of 3 rows
    /// unrolled.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FoldRows<T, TV>(float* src, int rowStride, int nd, int nh, int dStride, out TV best, out TV arg)
        where T : struct, IPoolLanes<TV> where TV : struct
    {
        int L = T.Count;
        if (nd == 1 && nh == 3)
        {
            var b0 = T.Load(src);
            var b1 = T.Load(src + rowStride);
            var b2 = T.Load(src + 2 * rowStride);
            var t1 = T.Greater(b1, b0);
            var b = T.Blend(b0, b1, t1);
            var a = T.Blend(T.Load(src + L), T.Load(src + rowStride + L), t1);
            var t2 = T.Greater(b2, b);
            best = T.Blend(b, b2, t2);
            arg = T.Blend(a, T.Load(src + 2 * rowStride + L), t2);
            return;
        }
        best = T.Splat(float.NegativeInfinity);
        var ar = T.SplatInt(int.MinValue / 2);
        for (int d = 0; d < nd; d++)
        {
            float* row = src + (long)d * dStride;
            for (int h = 0; h < nh; h++, row += rowStride)
            {
                var rb = T.Load(row);
                var take = T.Greater(rb, best);
                best = T.Blend(best, rb, take);
                ar = T.Blend(ar, T.Load(row + L), take);
            }
        }
        arg = ar;
    }

    /// <summary>
    /// Input row src[0..n) into the phases of its padded row (position q = pad + w goes to dst[(q mod sw)·phase + q div sw];
    /// the padding slots keep their −∞). Stride 1 is a copy; stride 2 splits 2L inputs into evens and odds
    /// (<see cref="IPoolLanes{TV}.Deinterleave"/>); other strides are scalar. <paramref name="nan"/> gets lanes set where
    /// an input is a NaN.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyRowPhases<T, TV>(float* dst, int phase, float* src, int n, int pad, int sw, ref TV nan)
        where T : struct, IPoolLanes<TV> where TV : struct
    {
        int L = T.Count, i = 0;
        if (sw == 1)
        {
            float* d = dst + pad;
            for (; i + L <= n; i += L)
            {
                var v = T.Load(src + i);
                nan = T.OrNaN(nan, v);
                T.Store(d + i, v);
            }
            for (; i < n; i++) Copy1<T, TV>(d + i, src[i], ref nan);
            return;
        }
        if (sw == 2)
        {
            // w even → q = pad + w: phase pad mod 2 at (pad + w) div 2; w odd → the other phase.
            float* evens = dst + (pad & 1) * phase + pad / 2;
            float* odds = dst + ((pad + 1) & 1) * phase + (pad + 1) / 2;
            for (int next = 0; next + 2 * L <= n; )
            {
                i = next;
                var lo = T.Load(src + i);
                var hi = T.Load(src + i + L);
                nan = T.OrNaN(T.OrNaN(nan, lo), hi);
                T.Deinterleave(lo, hi, out var e, out var o);
                T.Store(evens + i / 2, e);
                T.Store(odds + i / 2, o);
                i += 2 * L;
                // The last block may overlap the one before (same values written twice); it starts at an even input.
                next = i + 2 * L <= n || i >= (n & ~1) ? i : (n & ~1) - 2 * L;
            }
            for (; i + 2 <= n; i += 2)
            {
                Copy1<T, TV>(evens + i / 2, src[i], ref nan);
                Copy1<T, TV>(odds + i / 2, src[i + 1], ref nan);
            }
            if (i < n) Copy1<T, TV>(evens + i / 2, src[i], ref nan);
            return;
        }
        // q = pad + i = m·sw + φ, walked without division.
        int phi = pad % sw, m = pad / sw;
        for (; i < n; i++)
        {
            Copy1<T, TV>(dst + phi * phase + m, src[i], ref nan);
            if (++phi == sw) { phi = 0; m++; }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Copy1<T, TV>(float* dst, float v, ref TV nan) where T : struct, IPoolLanes<TV> where TV : struct
    {
        *dst = v;
        if (float.IsNaN(v)) nan = T.Splat(float.NaN);
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
    /// Average pooling forward, T.Count = L lanes: the max kernel's layout (<see cref="MaxPoolVec{T, TV}"/>: 16 outputs of a row per
    /// vector, rows copied once into stride phases, here padded with zeros, each input row summed over kw once, then the
    /// window's rows added in d, h order) and one division per output by its count (per lane along W, per row along D
    /// and H). Rows of fewer than L outputs take the scalar loop. FDP's pool, 2×2/2 ceil mode without count_include_pad
    /// on [64, 64, 32, 32], per CPU-second on one thread, alternated with the scalar loop in one process on the loaded
    /// machine: 20–23 GB/s against 2.9 (7.0–7.8×); in cache ([2, 64, 32, 32]) the same ratio.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AvgPoolVec<T, TV>(float* y, float* x, in PoolGeometry geo, int p0, int p1)
        where T : struct, IPoolLanes<TV> where TV : struct
    {
        int L = T.Count;
        var g = geo;
        int wd = g.W, hgt = g.H, rows = g.D * g.H, inPlane = g.InPlane, outPlane = g.OutPlane;
        int kw = g.Kw, sw = g.Sw, pw = g.Pw, wo = g.Wo, ho = g.Ho, dO = g.Do;
        bool include = g.CountIncludePad != 0;
        int chunks = (wo + L - 1) / L, last = wo - L;
        int phase = (chunks * L + (kw + sw - 1) / sw + 2 * L + 15) / 16 * 16, wb = sw * phase;
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
        var nan = T.Zero;   // unused: sums carry NaNs by themselves
        for (int p = p0; p < p1; p++)
        {
            float* xp = x + (long)p * inPlane;
            for (int r = 0; r < rows; r++) CopyRowPhases<T, TV>(buf + (long)r * wb, phase, xp + (long)r * wd, wd, pw, sw, ref nan);
            for (int c = 0; c < chunks; c++)
            {
                float* src = buf + starts[c], dst = rowSum + c * L;
                for (int r = 0; r < rows; r++, src += wb, dst += rowStride)
                {
                    var sum = T.Load(src);
                    for (int t = 1; t < kw; t++) sum = T.Add(sum, T.Load(src + tapOffset[t]));
                    T.Store(dst, sum);
                }
            }
            float* yp = y + (long)p * outPlane;
            for (int od = 0; od < dO; od++)
            {
                PoolGeometry.Window(od, g.D, dO, g.Kd, g.Sd, g.Pd, false, out int d0, out int d1, out int pd);
                for (int oh = 0; oh < ho; oh++)
                {
                    PoolGeometry.Window(oh, hgt, ho, g.Kh, g.Sh, g.Ph, false, out int h0, out int h1, out int ph);
                    var rowsCount = T.Splat(include ? pd * ph : (d1 - d0) * (h1 - h0));
                    float* yrow = yp + (od * ho + oh) * wo;
                    for (int c = 0; c < chunks; c++)
                    {
                        var sum = T.Zero;
                        for (int d = d0; d < d1; d++)
                        {
                            float* src = rowSum + (long)(d * hgt + h0) * rowStride + c * L;
                            for (int h = h0; h < h1; h++, src += rowStride) sum = T.Add(sum, T.Load(src));
                        }
                        T.Store(yrow + starts[c], T.Div(sum, T.Mul(rowsCount, T.Load(lanes + c * L))));
                    }
                }
            }
        }
    }

    /// <summary>
    /// Average pooling backward, T.Count = L lanes: the transpose of <see cref="AvgPoolVec{T, TV}"/>, one write of dx.
    /// Per plane: g = dy / count once (outputs [Do·Ho, Wo]); per input row (d, h) the rows of g whose windows hold it
    /// (<see cref="PoolGeometry.Covering"/>) summed into G [Wo] (zeros around it); then, in the forward's stride phases of
    /// the padded row, phase φ at position m = Σ_j G[m − j] over the taps t = φ + j·sw &lt; kw (loads only: a scatter-add
    /// per tap would store and reload overlapping vectors); then the phases interleaved back into the dx row (stride 1: a
    /// copy; stride 2: <see cref="IPoolLanes{TV}.Interleave"/>; others scalar). Rows of fewer than L outputs take the
    /// scalar loop. Sums run in another order than the scalar loop's (per input, over its windows), within float rounding.
    /// FDP's 2×2/2 on [64, 64, 32, 32], measured as the forward: 10.7–11.0 GB/s per CPU-second against the scalar loop's
    /// 2.7–2.8 (4.0×); the scalar loop clears dx and then adds into it window by window.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AvgPoolBackwardVec<T, TV>(float* dx, float* dy, in PoolGeometry geo, int p0, int p1)
        where T : struct, IPoolLanes<TV> where TV : struct
    {
        int L = T.Count;
        var g = geo;
        int wd = g.W, hgt = g.H, inPlane = g.InPlane, outPlane = g.OutPlane;
        int kw = g.Kw, sw = g.Sw, pw = g.Pw, wo = g.Wo, ho = g.Ho, dO = g.Do;
        bool include = g.CountIncludePad != 0;
        int chunks = (wo + L - 1) / L, last = wo - L;
        int jMax = (kw - 1) / sw, padL = (jMax + 15) / 16 * 16;
        int m = (pw + wd + sw - 1) / sw;                                   // phase positions that reach the input
        int gLen = padL + Math.Max(wo, m) + 2 * L + 16;                    // G with zeros in front and behind
        int phase = (m + L + 15) / 16 * 16;
        float* gScaled = ThreadScratch.Get(ScratchSlot.PoolRows, (long)outPlane + gLen + sw * phase);
        float* gRow = gScaled + outPlane, z = gRow + gLen;
        new Span<float>(gRow, gLen).Clear();
        // Per chunk: its first output and the lanes' counts along W; then the taps' reach per phase.
        float* lanes = ThreadScratch.Get(ScratchSlot.PoolLanes, (long)chunks * L + chunks);
        int* starts = (int*)lanes + chunks * L;
        for (int c = 0; c < chunks; c++)
        {
            starts[c] = c == chunks - 1 ? last : c * L;
            for (int l = 0; l < L; l++)
            {
                PoolGeometry.Window(starts[c] + l, wd, wo, kw, sw, pw, false, out int w0, out int w1, out int padded);
                lanes[c * L + l] = include ? padded : w1 - w0;
            }
        }
        for (int p = p0; p < p1; p++)
        {
            float* dyp = dy + (long)p * outPlane;
            // g = dy / count.
            for (int od = 0; od < dO; od++)
            {
                PoolGeometry.Window(od, g.D, dO, g.Kd, g.Sd, g.Pd, false, out int d0, out int d1, out int pd);
                for (int oh = 0; oh < ho; oh++)
                {
                    PoolGeometry.Window(oh, hgt, ho, g.Kh, g.Sh, g.Ph, false, out int h0, out int h1, out int ph);
                    var rowsCount = T.Splat(include ? pd * ph : (d1 - d0) * (h1 - h0));
                    int o = (od * ho + oh) * wo;
                    for (int c = 0; c < chunks; c++)
                        T.Store(gScaled + o + starts[c], T.Div(T.Load(dyp + o + starts[c]), T.Mul(rowsCount, T.Load(lanes + c * L))));
                }
            }
            float* dxp = dx + (long)p * inPlane;
            for (int d = 0; d < g.D; d++)
            {
                PoolGeometry.Covering(d, dO, g.Kd, g.Sd, g.Pd, out int odLo, out int odHi);
                for (int h = 0; h < hgt; h++)
                {
                    PoolGeometry.Covering(h, ho, g.Kh, g.Sh, g.Ph, out int ohLo, out int ohHi);
                    // G = Σ of the covering output rows (in od, oh order).
                    for (int c = 0; c < chunks; c++)
                    {
                        var sum = T.Zero;
                        for (int od = odLo; od <= odHi; od++)
                            for (int oh = ohLo; oh <= ohHi; oh++) sum = T.Add(sum, T.Load(gScaled + (od * ho + oh) * wo + starts[c]));
                        T.Store(gRow + padL + starts[c], sum);
                    }
                    // The phases of the padded row: z[φ·phase + m] = Σ_j G[m − j], t = φ + j·sw < kw.
                    for (int phi = 0; phi < sw; phi++)
                    {
                        float* zp = z + phi * phase;
                        int nj = phi < kw ? (kw - 1 - phi) / sw + 1 : 0;
                        for (int q = 0; q < m; q += L)
                        {
                            var acc = T.Zero;
                            float* src = gRow + padL + q;
                            for (int j = 0; j < nj; j++) acc = T.Add(acc, T.Load(src - j));
                            T.Store(zp + q, acc);
                        }
                    }
                    PhasesToRow<T, TV>(dxp + (long)(d * hgt + h) * wd, z, phase, wd, pw, sw);
                }
            }
        }
    }

    /// <summary>The inverse of <see cref="CopyRowPhases{T, TV}"/> without the padding: dst[w] = src[(q mod sw)·phase + q div sw],
    /// q = pad + w, for w &lt; n.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PhasesToRow<T, TV>(float* dst, float* src, int phase, int n, int pad, int sw)
        where T : struct, IPoolLanes<TV> where TV : struct
    {
        int L = T.Count, i = 0;
        if (sw == 1)
        {
            float* s0 = src + pad;
            for (; i + L <= n; i += L) T.Store(dst + i, T.Load(s0 + i));
            for (; i < n; i++) dst[i] = s0[i];
            return;
        }
        if (sw == 2)
        {
            float* evens = src + (pad & 1) * phase + pad / 2;
            float* odds = src + ((pad + 1) & 1) * phase + (pad + 1) / 2;
            for (; i + 2 * L <= n; i += 2 * L)
            {
                T.Interleave(T.Load(evens + i / 2), T.Load(odds + i / 2), out var lo, out var hi);
                T.Store(dst + i, lo);
                T.Store(dst + i + L, hi);
            }
            for (; i + 2 <= n; i += 2)
            {
                dst[i] = evens[i / 2];
                dst[i + 1] = odds[i / 2];
            }
            if (i < n) dst[i] = evens[i / 2];
            return;
        }
        int phi = pad % sw, q = pad / sw;
        for (; i < n; i++)
        {
            dst[i] = src[phi * phase + q];
            if (++phi == sw) { phi = 0; q++; }
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
        var isa = ForceScalar ? SimdIsa.Scalar : SimdIsaSelect.Current;
        if (!backward && !ad && isa == SimdIsa.V512 && g.Wo >= 16)
        {
            AvgPoolVec<Lanes512, Vector512<float>>(y, x, g, p0, p1);
            return;
        }
        if (!backward && !ad && isa >= SimdIsa.V256 && g.Wo >= 8)
        {
            AvgPoolVec<Lanes256, Vector256<float>>(y, x, g, p0, p1);
            return;
        }
        // Backward: x is dx (written), y is dy.
        if (backward && !ad && isa == SimdIsa.V512 && g.Wo >= 16)
        {
            AvgPoolBackwardVec<Lanes512, Vector512<float>>(x, y, g, p0, p1);
            return;
        }
        if (backward && !ad && isa >= SimdIsa.V256 && g.Wo >= 8)
        {
            AvgPoolBackwardVec<Lanes256, Vector256<float>>(x, y, g, p0, p1);
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

/// <summary>
/// The lane operations of the pooling kernels, one struct per width (<see cref="Lanes512"/>, <see cref="Lanes256"/>), so
/// that each kernel is written once and specialised by the JIT. Index vectors travel as float bits (a blend is bitwise):
/// blending them with the value's own compare mask keeps the mask in a k register on AVX-512 (through AsInt32 the JIT
/// converted it to a vector and back on every step, and <c>ConditionalSelect</c> of a compare became vpmovm2d +
/// vpternlogd). Kept beside the pooling kernels rather than in <see cref="ISimd{TV}"/>: these are the only kernels that
/// need an integer add and a sign-bit mask on float bits.
/// </summary>
internal unsafe interface IPoolLanes<TV> where TV : struct
{
    static abstract int Count { get; }
    static abstract TV Zero { get; }
    static abstract TV Load(float* p);
    static abstract void Store(float* p, TV v);
    static abstract TV Splat(float x);
    /// <summary>All lanes the bits of the int i.</summary>
    static abstract TV SplatInt(int i);
    /// <summary>Lane-wise a &gt; b (ordered: false where either is NaN), as a mask for <see cref="Blend"/>.</summary>
    static abstract TV Greater(TV a, TV b);
    /// <summary>mask ? b : a, per lane (bitwise, so int bits pass through).</summary>
    static abstract TV Blend(TV a, TV b, TV mask);
    /// <summary>The lanes as int32, added.</summary>
    static abstract TV AddInt(TV a, TV b);
    /// <summary>The lanes' sign bits (of an int index: negative), lane l at bit l.</summary>
    static abstract uint SignBits(TV v);
    /// <summary>acc with the lanes set (all bits) where v is a NaN.</summary>
    static abstract TV OrNaN(TV acc, TV v);
    static abstract bool Any(TV v);
    static abstract TV Add(TV a, TV b);
    static abstract TV Mul(TV a, TV b);
    static abstract TV Div(TV a, TV b);
    /// <summary>The even and the odd elements of the 2·Count floats lo, hi, in order.</summary>
    static abstract void Deinterleave(TV lo, TV hi, out TV evens, out TV odds);
    /// <summary>The inverse of <see cref="Deinterleave"/>: evens and odds merged into the 2·Count floats lo, hi.</summary>
    static abstract void Interleave(TV evens, TV odds, out TV lo, out TV hi);
}

/// <summary>Vector512 lanes (AVX-512F: compares into k registers, vblendmps, two-source permutes).</summary>
internal readonly unsafe struct Lanes512 : IPoolLanes<Vector512<float>>
{
    public static int Count => 16;
    public static Vector512<float> Zero => Vector512<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(float* p) => Vector512.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector512<float> v) => Vector512.Store(v, p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Splat(float x) => Vector512.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> SplatInt(int i) => Vector512.Create(i).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Greater(Vector512<float> a, Vector512<float> b) => Avx512F.CompareGreaterThan(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Blend(Vector512<float> a, Vector512<float> b, Vector512<float> mask) => Avx512F.BlendVariable(a, b, mask);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> AddInt(Vector512<float> a, Vector512<float> b) => (a.AsInt32() + b.AsInt32()).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static uint SignBits(Vector512<float> v) => (uint)v.ExtractMostSignificantBits();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> OrNaN(Vector512<float> acc, Vector512<float> v) => acc | ~Vector512.Equals(v, v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static bool Any(Vector512<float> v) => v.AsInt32() != Vector512<int>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Mul(Vector512<float> a, Vector512<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Div(Vector512<float> a, Vector512<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Deinterleave(Vector512<float> lo, Vector512<float> hi, out Vector512<float> evens, out Vector512<float> odds)
    {
        evens = Avx512F.PermuteVar16x32x2(lo, Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), hi);
        odds = Avx512F.PermuteVar16x32x2(lo, Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), hi);
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Interleave(Vector512<float> evens, Vector512<float> odds, out Vector512<float> lo, out Vector512<float> hi)
    {
        lo = Avx512F.PermuteVar16x32x2(evens, Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), odds);
        hi = Avx512F.PermuteVar16x32x2(evens, Vector512.Create(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), odds);
    }
}

/// <summary>Vector256 lanes (AVX/AVX2: vcmpps into a vector mask, vblendvps, in-lane shuffles then a cross-lane permute).</summary>
internal readonly unsafe struct Lanes256 : IPoolLanes<Vector256<float>>
{
    public static int Count => 8;
    public static Vector256<float> Zero => Vector256<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(float* p) => Vector256.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector256<float> v) => Vector256.Store(v, p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Splat(float x) => Vector256.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> SplatInt(int i) => Vector256.Create(i).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Greater(Vector256<float> a, Vector256<float> b) => Avx.CompareGreaterThan(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Blend(Vector256<float> a, Vector256<float> b, Vector256<float> mask) => Avx.BlendVariable(a, b, mask);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> AddInt(Vector256<float> a, Vector256<float> b) => (a.AsInt32() + b.AsInt32()).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static uint SignBits(Vector256<float> v) => v.ExtractMostSignificantBits();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> OrNaN(Vector256<float> acc, Vector256<float> v) => acc | ~Vector256.Equals(v, v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static bool Any(Vector256<float> v) => v.AsInt32() != Vector256<int>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Mul(Vector256<float> a, Vector256<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Div(Vector256<float> a, Vector256<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Deinterleave(Vector256<float> lo, Vector256<float> hi, out Vector256<float> evens, out Vector256<float> odds)
    {
        // In-lane shuffles give [lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6]; the 64-bit permute (0, 2, 1, 3) puts them in order.
        evens = Avx2.Permute4x64(Avx.Shuffle(lo, hi, 0b10_00_10_00).AsDouble(), 0b11_01_10_00).AsSingle();
        odds = Avx2.Permute4x64(Avx.Shuffle(lo, hi, 0b11_01_11_01).AsDouble(), 0b11_01_10_00).AsSingle();
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Interleave(Vector256<float> evens, Vector256<float> odds, out Vector256<float> lo, out Vector256<float> hi)
    {
        // Unpacks give [e0 o0 e1 o1 | e4 o4 e5 o5] and [e2 o2 e3 o3 | e6 o6 e7 o7]; the 128-bit permutes put them in order.
        var a = Avx.UnpackLow(evens, odds);
        var b = Avx.UnpackHigh(evens, odds);
        lo = Avx.Permute2x128(a, b, 0x20);
        hi = Avx.Permute2x128(a, b, 0x31);
    }
}
