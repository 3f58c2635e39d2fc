using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MicroExpr.Kernels;

/// <summary>
/// The CPU pooling kernels (math in <see cref="PoolReference"/>): the planes [p0, p1) of P = N·C, the caller splits planes
/// over threads (planes are independent: the result does not depend on the split). One pass over the input and one over
/// the output; float accumulation within a window. Backward passes scatter within their own plane in a fixed order,
/// so they are deterministic. Average pooling's window loops are scalar.
/// </summary>
/// <remarks>
/// <para><b>Max pooling forward, Vector512.</b> The scalar loop (<see cref="MaxPoolScalar"/>: per output a k×k window of
/// compare-and-branch steps) ran ResNet's stem pool 3×3/2 [64, 64, 56, 56] at 0.55 GB/s on one thread on the quiet machine,
/// 60× below the copy bandwidth, while the backward's scatter ran at 20 GB/s: the loop, not memory, was the limit (on
/// random or ReLU data the running maximum changes at unpredictable taps: branch misses, and 9 dependent scalar steps per
/// output). The vector kernel computes 16 consecutive outputs of an output row at once, one lane each:
/// (1) each input row is copied once per plane into a per-thread buffer, padded with −∞ (Pw in front, a vector's reach
/// behind) and split into sw phases (padded column q at phase q mod sw, position q div sw), so that lane l's input at
/// tap kw, column (16c + l)·sw + kw, is one contiguous load at any stride and no load leaves the buffer;
/// (2) each input row of the window (clipping along D and H is the same for all lanes) is reduced over kw in its own
/// chain, (value, column) replaced branch-free where <c>v &gt; best ∨ isNaN(v)</c>, then the rows are folded in d, h
/// order with the same rule. Folding in scan order keeps the reference's result exactly: ties keep the first maximum in
/// d, h, w order, a NaN wins (the last NaN), as in PyTorch. Independent row chains shorten the dependency chain from
/// kh·kw steps to kw + kh. (3) Padding columns carry a large negative index; a lane whose index is still negative at the
/// end saw only −∞ inputs (padding was never beaten) and is recomputed by the scalar rule (rare).
/// Measured per CPU-second on one thread on the loaded 2-core machine, interleaved with the scalar loop, ReLU input:
/// scalar 0.64–0.71 GB/s; a first vector version (one chain of 9 steps per chunk, a validity mask per tap, two loads
/// and a permute per tap at stride 2) 3.8–4.7; with row chains and −∞ padding 6.8 (in cache); with the phase split 8.3
/// (in cache, 12× the scalar loop). Quiet-machine figures: benchmarks/RESULTS.md.
/// Rejected: separable pooling (column maxima over kh rows, then a max over kw of those) does fewer compares, but its
/// ties between columns resolve in w-then-h order, not the reference's h-then-w order, and ReLU outputs (the stem pool's
/// input) are full of tied zeros; it needs a second compare on the index per step, which costs what it saves.
/// Without Vector512 (and for rows narrower than 8 outputs, where most lanes would idle) the scalar loop runs.</para>
/// </remarks>
public static unsafe class PoolCpu
{
    /// <summary>Testing hook: when true, max pooling takes the scalar loop.</summary>
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
        int wd = g.W, hgt = g.H, hw = g.H * g.W, rows = g.D * g.H, inPlane = g.InPlane, outPlane = g.OutPlane;
        int kw = g.Kw, sw = g.Sw, pw = g.Pw, wo = g.Wo, ho = g.Ho, dO = g.Do;
        int chunks = (wo + L - 1) / L;
        // A padded row q = Pw + w (−∞ outside the inputs) is stored as sw phases, phase φ holding q = m·sw + φ at m, so
        // that lane l of chunk c at tap t, q = (16c + l)·sw + t, is phase t mod sw at 16c + l + t div sw: one contiguous
        // load per tap at any stride. Phase width: the last chunk's reach plus a vector of slack.
        int phase = (chunks * L + (kw + sw - 1) / sw + L + 15) / 16 * 16, wb = sw * phase;
        float* buf = ThreadScratch.Get(ScratchSlot.PoolRows, (long)rows * wb);
        new Span<float>(buf, rows * wb).Fill(float.NegativeInfinity);
        // Per (chunk, kw): the lanes' input columns col = ow·sw − Pw + kw, or a large negative number where col is
        // outside [0, W) (padding), so that an index that comes from padding stays negative. Then the taps' offsets.
        int* lanes = (int*)ThreadScratch.Get(ScratchSlot.PoolLanes, (long)chunks * kw * L + kw);
        for (int c = 0; c < chunks; c++)
            for (int t = 0; t < kw; t++)
                for (int l = 0; l < L; l++)
                {
                    int w = (c * L + l) * sw - pw + t;
                    lanes[(c * kw + t) * L + l] = (uint)w < (uint)wd ? w : int.MinValue / 2;
                }
        int* tapOffset = lanes + (long)chunks * kw * L;
        for (int t = 0; t < kw; t++) tapOffset[t] = t % sw * phase + t / sw;
        // Row windows along D and H, the same for every plane.
        int* bounds = stackalloc int[2 * (dO + ho)];
        for (int o = 0; o < dO; o++) PoolGeometry.Window(o, g.D, dO, g.Kd, g.Sd, g.Pd, false, out bounds[2 * o], out bounds[2 * o + 1], out _);
        for (int o = 0; o < ho; o++) PoolGeometry.Window(o, hgt, ho, g.Kh, g.Sh, g.Ph, false, out bounds[2 * (dO + o)], out bounds[2 * (dO + o) + 1], out _);
        float* tailV = stackalloc float[L];
        int* tailI = stackalloc int[L];
        for (int p = p0; p < p1; p++)
        {
            float* xp = x + (long)p * inPlane;
            for (int r = 0; r < rows; r++) CopyRowPhases(buf + (long)r * wb, phase, xp + (long)r * wd, wd, pw, sw);
            float* yp = y + (long)p * outPlane;
            int* ip = idx + (long)p * outPlane;
            for (int od = 0; od < dO; od++)
            {
                int d0 = bounds[2 * od], d1 = bounds[2 * od + 1];
                for (int oh = 0; oh < ho; oh++)
                {
                    int h0 = bounds[2 * (dO + oh)], h1 = bounds[2 * (dO + oh) + 1];
                    int orow = (od * ho + oh) * wo;
                    for (int c = 0; c < chunks; c++)
                    {
                        // Each input row of the window is reduced over kw on its own (independent chains), then the rows are
                        // folded in order: the fold keeps scan order, so the reference's rule (later wins on > or NaN) holds.
                        var best = Vector512.Create(float.NegativeInfinity);
                        var arg = Vector512.Create(int.MinValue / 2);
                        int* cols = lanes + c * kw * L;
                        for (int d = d0; d < d1; d++)
                            for (int h = h0; h < h1; h++)
                            {
                                float* row = buf + (long)(d * hgt + h) * wb + c * L;
                                var rb = Vector512.Load(row);
                                var ra = Vector512.Load(cols);
                                for (int t = 1; t < kw; t++)
                                {
                                    var v = Vector512.Load(row + tapOffset[t]);
                                    var take = Vector512.GreaterThan(v, rb) | ~Vector512.Equals(v, v);
                                    rb = Vector512.ConditionalSelect(take, v, rb);
                                    ra = Vector512.ConditionalSelect(take.AsInt32(), Vector512.Load(cols + t * L), ra);
                                }
                                var takeRow = Vector512.GreaterThan(rb, best) | ~Vector512.Equals(rb, rb);
                                best = Vector512.ConditionalSelect(takeRow, rb, best);
                                arg = Vector512.ConditionalSelect(takeRow.AsInt32(), ra + Vector512.Create(d * hw + h * wd), arg);
                            }
                        int ow0 = c * L, n = Math.Min(L, wo - ow0);
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
    /// Input row src[0..n) into the phases of its padded row (position q = pad + w goes to dst[(q mod sw)·phase + q div sw];
    /// the padding slots keep their −∞). Stride 1 is a copy; stride 2 splits 32 inputs into evens and odds with two
    /// permutes; other strides are scalar.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyRowPhases(float* dst, int phase, float* src, int n, int pad, int sw)
    {
        int i = 0;
        if (sw == 1)
        {
            float* d = dst + pad;
            for (; i + 16 <= n; i += 16) Vector512.Store(Vector512.Load(src + i), d + i);
            if (i + 8 <= n) { Vector256.Store(Vector256.Load(src + i), d + i); i += 8; }
            if (i + 4 <= n) { Vector128.Store(Vector128.Load(src + i), d + i); i += 4; }
            for (; i < n; i++) d[i] = src[i];
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
                Vector512.Store(Avx512F.PermuteVar16x32x2(lo, e, hi), evens + i / 2);
                Vector512.Store(Avx512F.PermuteVar16x32x2(lo, o, hi), odds + i / 2);
                i += 32;
                // The last block may overlap the one before (same values written twice); it starts at an even input.
                next = i + 32 <= n || i >= (n & ~1) ? i : (n & ~1) - 32;
            }
            for (; i + 2 <= n; i += 2)
            {
                evens[i / 2] = src[i];
                odds[i / 2] = src[i + 1];
            }
            if (i < n) evens[i / 2] = src[i];
            return;
        }
        // q = pad + i = m·sw + φ, walked without division.
        int phi = pad % sw, m = pad / sw;
        for (; i < n; i++)
        {
            dst[phi * phase + m] = src[i];
            if (++phi == sw) { phi = 0; m++; }
        }
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

    /// <summary>Average pooling forward (<paramref name="backward"/> false: y from x) or backward (true: dx from dy, dx
    /// overwritten), planes [p0, p1).</summary>
    public static void AvgPool(float* y, float* x, in PoolGeometry g, bool backward, int p0, int p1)
    {
        int inPlane = g.InPlane, outPlane = g.OutPlane;
        bool ad = g.Adaptive != 0;
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
