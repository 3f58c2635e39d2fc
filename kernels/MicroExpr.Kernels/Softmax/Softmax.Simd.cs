using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MicroExpr.Kernels;

/// <summary>
/// Fused softmax and log-softmax over the last axis of x[rows, cols], SIMD.
/// <para>
/// Math, per row: m = max_j x_j, s = Σ_j exp(x_j − m).
/// Forward y = exp(x − m)/s; Backward dx = y·(dy − Σ_j dy_j·y_j);
/// LogForward y = x − m − ln s; LogBackward dx = dy − exp(y)·Σ_j dy_j.
/// </para>
/// <para>Shapes: x, y, dy, dx [rows, cols], row-major and contiguous; the reduction runs over cols.</para>
/// <para>
/// Strategy. Rows of at most 64 columns (cols = 50 is the common case) take a branch-free Vector512 path that keeps
/// the whole row in registers: four masked loads (lanes past the row end read as −∞ or 0 and are never stored), max,
/// exp, sum and scale in registers, four masked stores — x is read once and y written once, with no scalar tail and
/// no per-row setup; the forward kernels run two rows per iteration with interleaved statements so that the two
/// latency chains (max → exp → sum → 1/s or ln s → output) overlap. Longer rows: a max pass, a fused exp + sum pass
/// (Forward stores exp(x − m) into y), then a scale pass (Forward y·(1/s); LogForward x − (m + ln s)), the row staying
/// in L1; backward: one dot/sum pass and one output pass; two accumulators per reduction, the tail one AVX-512 masked
/// load/store. exp is our own (<see cref="Simd.Exp(System.Runtime.Intrinsics.Vector512{float})"/>: Cody–Waite
/// reduction, degree-5 minimax polynomial, vscalefps; measured much faster than Vector512.Exp, which widens to
/// double), ln s is an inline scalar series (no libm call, which would spill the live vector registers).
/// Lanes: each kernel is written once, generic over the toolkit's <see cref="ISimd{TV}"/>, and run at Vector512,
/// Vector256 or Vector128 (<see cref="SimdIsaSelect"/>); the in-register path for short rows is taken at Vector512
/// only (at Vector256 four vectors hold 32 columns, below the rows that matter here). Rows are split into fixed contiguous parts (one per thread)
/// taken by the caller and <c>threads</c> − 1 pool workers (<see cref="RowSplit"/>; inline when threads ≤ 1 or
/// rows·cols &lt; 32K); y may alias x and dx may alias dy. No allocation on the hot path.
/// </para>
/// </summary>
public static unsafe class SoftmaxSimd
{
    /// <summary>Rows up to this many vectors (64 columns at Vector512) are held in registers: one load, one store per element.</summary>
    private const int SmallVectors = 4;

    private enum Kind { Forward, Backward, LogForward, LogBackward }

    /// <summary>y = softmax(x) over the last axis.</summary>
    public static void Forward(float* y, float* x, int rows, int cols, int threads) =>
        Dispatch(Kind.Forward, y, x, null, rows, cols, threads);

    /// <summary>dx = y·(dy − Σ dy·y), overwritten.</summary>
    public static void Backward(float* dx, float* y, float* dy, int rows, int cols, int threads) =>
        Dispatch(Kind.Backward, dx, y, dy, rows, cols, threads);

    /// <summary>y = x − max − ln Σ exp(x − max).</summary>
    public static void LogForward(float* y, float* x, int rows, int cols, int threads) =>
        Dispatch(Kind.LogForward, y, x, null, rows, cols, threads);

    /// <summary>dx = dy − exp(y)·Σ dy, overwritten.</summary>
    public static void LogBackward(float* dx, float* y, float* dy, int rows, int cols, int threads) =>
        Dispatch(Kind.LogBackward, dx, y, dy, rows, cols, threads);

    private static void Dispatch(Kind kind, float* o, float* i0, float* i1, int rows, int cols, int threads)
    {
        if (rows <= 0 || cols <= 0) return;
        var a = new RowArgs { P0 = o, P1 = i0, P2 = i1, Rows = rows, Cols = cols };
        var fn = SimdIsaSelect.Current switch
        {
            SimdIsa.V512 => cols <= SmallVectors * 16 ? Small<Simd512, Vector512<float>>(kind) : Long<Simd512, Vector512<float>>(kind),
            SimdIsa.V256 => Long<Simd256, Vector256<float>>(kind),
            _ => Long<Simd128, Vector128<float>>(kind),
        };
        int t = RowSplit.Threads(rows, cols, threads);
        RowSplit.Run(fn, ref a, RowSplit.Parts(rows, t), t);
    }

    private static delegate*<ref RowArgs, int, int, int, void> Long<TS, TV>(Kind kind) where TS : struct, ISimd<TV> where TV : struct =>
        kind switch
        {
            Kind.Forward => &Forward<TS, TV>,
            Kind.Backward => &Backward<TS, TV>,
            Kind.LogForward => &LogForward<TS, TV>,
            _ => &LogBackward<TS, TV>,
        };

    private static delegate*<ref RowArgs, int, int, int, void> Small<TS, TV>(Kind kind) where TS : struct, ISimd<TV> where TV : struct =>
        kind switch
        {
            Kind.Forward => &ForwardSmall<TS, TV>,
            Kind.Backward => &BackwardSmall<TS, TV>,
            Kind.LogForward => &LogForwardSmall<TS, TV>,
            _ => &LogBackwardSmall<TS, TV>,
        };

    // ---------------------------------------------------------------- rows of any length

    /// <summary>
    /// m = max of the row: two accumulators over pairs of full vectors, one more full vector, and the masked tail
    /// (lanes past the row end read −∞), which is returned for the passes that follow.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float RowMax<TS, TV>(float* xr, int n, int full, TV mask, out TV tail) where TS : struct, ISimd<TV> where TV : struct
    {
        int w = TS.Count;
        var ninf = TS.Splat(float.NegativeInfinity);
        TV m0 = ninf, m1 = ninf;
        int i = 0;
        for (; i + 2 * w <= n; i += 2 * w)
        {
            m0 = TS.MaxNative(m0, TS.Load(xr + i));
            m1 = TS.MaxNative(m1, TS.Load(xr + i + w));
        }
        if (i < full) m0 = TS.MaxNative(m0, TS.Load(xr + i));
        tail = full < n ? TS.LoadMasked(xr + full, mask, ninf) : ninf;
        return TS.HMaxNative(TS.MaxNative(TS.MaxNative(m0, m1), tail));
    }

    private static void Forward<TS, TV>(ref RowArgs a, int part, int r0, int r1) where TS : struct, ISimd<TV> where TV : struct
    {
        float* y = a.P0, x = a.P1;
        int n = a.Cols, w = TS.Count;
        int full = n & ~(w - 1), rem = n - full;
        var mask = TS.FirstMask(rem);
        for (int r = r0; r < r1; r++)
        {
            float* xr = x + (long)r * n, yr = y + (long)r * n;
            var vm = TS.Splat(RowMax<TS, TV>(xr, n, full, mask, out var tail));
            TV s0 = default, s1 = default;
            int i = 0;
            for (; i + 2 * w <= n; i += 2 * w)
            {
                var e0 = TS.Exp(TS.Sub(TS.Load(xr + i), vm));
                var e1 = TS.Exp(TS.Sub(TS.Load(xr + i + w), vm));
                TS.Store(yr + i, e0);
                TS.Store(yr + i + w, e1);
                s0 = TS.Add(s0, e0);
                s1 = TS.Add(s1, e1);
            }
            if (i < full)
            {
                var e0 = TS.Exp(TS.Sub(TS.Load(xr + i), vm));
                TS.Store(yr + i, e0);
                s0 = TS.Add(s0, e0);
            }
            TV et = default;
            if (rem != 0)
            {
                et = TS.Select(mask, TS.Exp(TS.Sub(tail, vm)), default);
                s1 = TS.Add(s1, et);
            }
            var inv = TS.Splat(1f / TS.HSum(TS.Add(s0, s1)));
            for (i = 0; i < full; i += w) TS.Store(yr + i, TS.Mul(TS.Load(yr + i), inv));
            if (rem != 0) TS.StoreMasked(yr + full, mask, TS.Mul(et, inv));
        }
    }

    private static void LogForward<TS, TV>(ref RowArgs a, int part, int r0, int r1) where TS : struct, ISimd<TV> where TV : struct
    {
        float* y = a.P0, x = a.P1;
        int n = a.Cols, w = TS.Count;
        int full = n & ~(w - 1), rem = n - full;
        var mask = TS.FirstMask(rem);
        for (int r = r0; r < r1; r++)
        {
            float* xr = x + (long)r * n, yr = y + (long)r * n;
            float mx = RowMax<TS, TV>(xr, n, full, mask, out var tail);
            var vm = TS.Splat(mx);
            TV s0 = default, s1 = default;
            int i = 0;
            for (; i + 2 * w <= n; i += 2 * w)
            {
                s0 = TS.Add(s0, TS.Exp(TS.Sub(TS.Load(xr + i), vm)));
                s1 = TS.Add(s1, TS.Exp(TS.Sub(TS.Load(xr + i + w), vm)));
            }
            if (i < full) s0 = TS.Add(s0, TS.Exp(TS.Sub(TS.Load(xr + i), vm)));
            if (rem != 0) s1 = TS.Add(s1, TS.Select(mask, TS.Exp(TS.Sub(tail, vm)), default));
            var sh = TS.Splat(mx + Simd.Log(TS.HSum(TS.Add(s0, s1))));
            for (i = 0; i < full; i += w) TS.Store(yr + i, TS.Sub(TS.Load(xr + i), sh));
            if (rem != 0) TS.StoreMasked(yr + full, mask, TS.Sub(tail, sh));
        }
    }

    private static void Backward<TS, TV>(ref RowArgs a, int part, int r0, int r1) where TS : struct, ISimd<TV> where TV : struct
    {
        float* dx = a.P0, y = a.P1, dy = a.P2;
        int n = a.Cols, w = TS.Count;
        int full = n & ~(w - 1), rem = n - full;
        var mask = TS.FirstMask(rem);
        for (int r = r0; r < r1; r++)
        {
            float* yr = y + (long)r * n, dyr = dy + (long)r * n, dxr = dx + (long)r * n;
            TV s0 = default, s1 = default, ty = default, tdy = default;
            int i = 0;
            for (; i + 2 * w <= n; i += 2 * w)
            {
                s0 = TS.Fma(TS.Load(yr + i), TS.Load(dyr + i), s0);
                s1 = TS.Fma(TS.Load(yr + i + w), TS.Load(dyr + i + w), s1);
            }
            if (i < full) s0 = TS.Fma(TS.Load(yr + i), TS.Load(dyr + i), s0);
            if (rem != 0)
            {
                // Read the tail before any dx store so that dx may alias dy.
                ty = TS.LoadMasked(yr + full, mask, default);
                tdy = TS.LoadMasked(dyr + full, mask, default);
                s1 = TS.Fma(ty, tdy, s1);
            }
            var dot = TS.Splat(TS.HSum(TS.Add(s0, s1)));
            for (i = 0; i < full; i += w) TS.Store(dxr + i, TS.Mul(TS.Load(yr + i), TS.Sub(TS.Load(dyr + i), dot)));
            if (rem != 0) TS.StoreMasked(dxr + full, mask, TS.Mul(ty, TS.Sub(tdy, dot)));
        }
    }

    private static void LogBackward<TS, TV>(ref RowArgs a, int part, int r0, int r1) where TS : struct, ISimd<TV> where TV : struct
    {
        float* dx = a.P0, y = a.P1, dy = a.P2;
        int n = a.Cols, w = TS.Count;
        int full = n & ~(w - 1), rem = n - full;
        var mask = TS.FirstMask(rem);
        for (int r = r0; r < r1; r++)
        {
            float* yr = y + (long)r * n, dyr = dy + (long)r * n, dxr = dx + (long)r * n;
            TV s0 = default, s1 = default, ty = default, tdy = default;
            int i = 0;
            for (; i + 2 * w <= n; i += 2 * w)
            {
                s0 = TS.Add(s0, TS.Load(dyr + i));
                s1 = TS.Add(s1, TS.Load(dyr + i + w));
            }
            if (i < full) s0 = TS.Add(s0, TS.Load(dyr + i));
            if (rem != 0)
            {
                ty = TS.LoadMasked(yr + full, mask, default);
                tdy = TS.LoadMasked(dyr + full, mask, default);
                s1 = TS.Add(s1, tdy);
            }
            var ns = TS.Splat(-TS.HSum(TS.Add(s0, s1)));
            for (i = 0; i < full; i += w) TS.Store(dxr + i, TS.Fma(TS.Exp(TS.Load(yr + i)), ns, TS.Load(dyr + i)));
            if (rem != 0) TS.StoreMasked(dxr + full, mask, TS.Fma(TS.Exp(ty), ns, tdy));
        }
    }

    // ---------------------------------------------------------------- rows of at most SmallVectors vectors

    /// <summary>The masks of a row's four vectors: lane l of vector j is set when Count·j + l &lt; n.</summary>
    private struct Masks<TV> where TV : struct
    {
        public TV K0, K1, K2, K3;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Masks<TV> SmallMasks<TS, TV>(int n) where TS : struct, ISimd<TV> where TV : struct => new()
    {
        K0 = TS.FirstMask(n), K1 = TS.FirstMask(n - TS.Count), K2 = TS.FirstMask(n - 2 * TS.Count), K3 = TS.FirstMask(n - 3 * TS.Count),
    };

    /// <summary>
    /// Two rows per iteration with their statements interleaved, so that the two latency chains (max → exp → sum →
    /// scale) overlap. An odd last row is run as a pair with itself: every load precedes every store, so the duplicate
    /// writes the same values (also when y aliases x), and no second copy of the body is needed for it.
    /// </summary>
    private static void ForwardSmall<TS, TV>(ref RowArgs a, int part, int r0, int r1) where TS : struct, ISimd<TV> where TV : struct
    {
        float* y = a.P0, x = a.P1;
        int n = a.Cols, w = TS.Count;
        var k = SmallMasks<TS, TV>(n);
        var ninf = TS.Splat(float.NegativeInfinity);
        for (int r = r0; r < r1; r += 2)
        {
            long ob = r + 1 < r1 ? n : 0; // offset of row b from row a: the next row, or row a again
            float* xr = x + (long)r * n, yr = y + (long)r * n;
            var v0a = TS.LoadMasked(xr, k.K0, ninf);
            var v0b = TS.LoadMasked(xr + ob, k.K0, ninf);
            var v1a = TS.LoadMasked(xr + w, k.K1, ninf);
            var v1b = TS.LoadMasked(xr + ob + w, k.K1, ninf);
            var v2a = TS.LoadMasked(xr + 2 * w, k.K2, ninf);
            var v2b = TS.LoadMasked(xr + ob + 2 * w, k.K2, ninf);
            var v3a = TS.LoadMasked(xr + 3 * w, k.K3, ninf);
            var v3b = TS.LoadMasked(xr + ob + 3 * w, k.K3, ninf);
            var vma = TS.Splat(TS.HMaxNative(TS.MaxNative(TS.MaxNative(v0a, v1a), TS.MaxNative(v2a, v3a))));
            var vmb = TS.Splat(TS.HMaxNative(TS.MaxNative(TS.MaxNative(v0b, v1b), TS.MaxNative(v2b, v3b))));
            var e0a = TS.Exp(TS.Sub(v0a, vma)); // lanes past the row end: exp(−∞) = 0
            var e0b = TS.Exp(TS.Sub(v0b, vmb));
            var e1a = TS.Exp(TS.Sub(v1a, vma));
            var e1b = TS.Exp(TS.Sub(v1b, vmb));
            var e2a = TS.Exp(TS.Sub(v2a, vma));
            var e2b = TS.Exp(TS.Sub(v2b, vmb));
            var e3a = TS.Exp(TS.Sub(v3a, vma));
            var e3b = TS.Exp(TS.Sub(v3b, vmb));
            var inva = TS.Splat(1f / TS.HSum(TS.Add(TS.Add(e0a, e1a), TS.Add(e2a, e3a))));
            var invb = TS.Splat(1f / TS.HSum(TS.Add(TS.Add(e0b, e1b), TS.Add(e2b, e3b))));
            TS.StoreMasked(yr, k.K0, TS.Mul(e0a, inva));
            TS.StoreMasked(yr + ob, k.K0, TS.Mul(e0b, invb));
            TS.StoreMasked(yr + w, k.K1, TS.Mul(e1a, inva));
            TS.StoreMasked(yr + ob + w, k.K1, TS.Mul(e1b, invb));
            TS.StoreMasked(yr + 2 * w, k.K2, TS.Mul(e2a, inva));
            TS.StoreMasked(yr + ob + 2 * w, k.K2, TS.Mul(e2b, invb));
            TS.StoreMasked(yr + 3 * w, k.K3, TS.Mul(e3a, inva));
            TS.StoreMasked(yr + ob + 3 * w, k.K3, TS.Mul(e3b, invb));
        }
    }

    /// <summary>Two rows per iteration, interleaved (an odd last row paired with itself) as in <see cref="ForwardSmall"/>.</summary>
    private static void LogForwardSmall<TS, TV>(ref RowArgs a, int part, int r0, int r1) where TS : struct, ISimd<TV> where TV : struct
    {
        float* y = a.P0, x = a.P1;
        int n = a.Cols, w = TS.Count;
        var k = SmallMasks<TS, TV>(n);
        var ninf = TS.Splat(float.NegativeInfinity);
        for (int r = r0; r < r1; r += 2)
        {
            long ob = r + 1 < r1 ? n : 0;
            float* xr = x + (long)r * n, yr = y + (long)r * n;
            var v0a = TS.LoadMasked(xr, k.K0, ninf);
            var v0b = TS.LoadMasked(xr + ob, k.K0, ninf);
            var v1a = TS.LoadMasked(xr + w, k.K1, ninf);
            var v1b = TS.LoadMasked(xr + ob + w, k.K1, ninf);
            var v2a = TS.LoadMasked(xr + 2 * w, k.K2, ninf);
            var v2b = TS.LoadMasked(xr + ob + 2 * w, k.K2, ninf);
            var v3a = TS.LoadMasked(xr + 3 * w, k.K3, ninf);
            var v3b = TS.LoadMasked(xr + ob + 3 * w, k.K3, ninf);
            float mxa = TS.HMaxNative(TS.MaxNative(TS.MaxNative(v0a, v1a), TS.MaxNative(v2a, v3a)));
            float mxb = TS.HMaxNative(TS.MaxNative(TS.MaxNative(v0b, v1b), TS.MaxNative(v2b, v3b)));
            var vma = TS.Splat(mxa);
            var vmb = TS.Splat(mxb);
            var sa = TS.Add(TS.Add(TS.Exp(TS.Sub(v0a, vma)), TS.Exp(TS.Sub(v1a, vma))), TS.Add(TS.Exp(TS.Sub(v2a, vma)), TS.Exp(TS.Sub(v3a, vma))));
            var sb = TS.Add(TS.Add(TS.Exp(TS.Sub(v0b, vmb)), TS.Exp(TS.Sub(v1b, vmb))), TS.Add(TS.Exp(TS.Sub(v2b, vmb)), TS.Exp(TS.Sub(v3b, vmb))));
            var sha = TS.Splat(mxa + Simd.Log(TS.HSum(sa)));
            var shb = TS.Splat(mxb + Simd.Log(TS.HSum(sb)));
            TS.StoreMasked(yr, k.K0, TS.Sub(v0a, sha));
            TS.StoreMasked(yr + ob, k.K0, TS.Sub(v0b, shb));
            TS.StoreMasked(yr + w, k.K1, TS.Sub(v1a, sha));
            TS.StoreMasked(yr + ob + w, k.K1, TS.Sub(v1b, shb));
            TS.StoreMasked(yr + 2 * w, k.K2, TS.Sub(v2a, sha));
            TS.StoreMasked(yr + ob + 2 * w, k.K2, TS.Sub(v2b, shb));
            TS.StoreMasked(yr + 3 * w, k.K3, TS.Sub(v3a, sha));
            TS.StoreMasked(yr + ob + 3 * w, k.K3, TS.Sub(v3b, shb));
        }
    }

    private static void BackwardSmall<TS, TV>(ref RowArgs a, int part, int r0, int r1) where TS : struct, ISimd<TV> where TV : struct
    {
        float* dx = a.P0, y = a.P1, dy = a.P2;
        int n = a.Cols, w = TS.Count;
        var k = SmallMasks<TS, TV>(n);
        for (int r = r0; r < r1; r++)
        {
            long o = (long)r * n;
            float* yr = y + o, dyr = dy + o, dxr = dx + o;
            var y0 = TS.LoadMasked(yr, k.K0, default);
            var y1 = TS.LoadMasked(yr + w, k.K1, default);
            var y2 = TS.LoadMasked(yr + 2 * w, k.K2, default);
            var y3 = TS.LoadMasked(yr + 3 * w, k.K3, default);
            var d0 = TS.LoadMasked(dyr, k.K0, default);
            var d1 = TS.LoadMasked(dyr + w, k.K1, default);
            var d2 = TS.LoadMasked(dyr + 2 * w, k.K2, default);
            var d3 = TS.LoadMasked(dyr + 3 * w, k.K3, default);
            var dot = TS.Splat(TS.HSum(TS.Add(TS.Fma(y0, d0, TS.Mul(y1, d1)), TS.Fma(y2, d2, TS.Mul(y3, d3)))));
            TS.StoreMasked(dxr, k.K0, TS.Mul(y0, TS.Sub(d0, dot)));
            TS.StoreMasked(dxr + w, k.K1, TS.Mul(y1, TS.Sub(d1, dot)));
            TS.StoreMasked(dxr + 2 * w, k.K2, TS.Mul(y2, TS.Sub(d2, dot)));
            TS.StoreMasked(dxr + 3 * w, k.K3, TS.Mul(y3, TS.Sub(d3, dot)));
        }
    }

    private static void LogBackwardSmall<TS, TV>(ref RowArgs a, int part, int r0, int r1) where TS : struct, ISimd<TV> where TV : struct
    {
        float* dx = a.P0, y = a.P1, dy = a.P2;
        int n = a.Cols, w = TS.Count;
        var k = SmallMasks<TS, TV>(n);
        for (int r = r0; r < r1; r++)
        {
            long o = (long)r * n;
            float* yr = y + o, dyr = dy + o, dxr = dx + o;
            var d0 = TS.LoadMasked(dyr, k.K0, default);
            var d1 = TS.LoadMasked(dyr + w, k.K1, default);
            var d2 = TS.LoadMasked(dyr + 2 * w, k.K2, default);
            var d3 = TS.LoadMasked(dyr + 3 * w, k.K3, default);
            var ns = TS.Splat(-TS.HSum(TS.Add(TS.Add(d0, d1), TS.Add(d2, d3))));
            // Lanes past the row end are never stored, so y there may read as anything finite (0 here).
            TS.StoreMasked(dxr, k.K0, TS.Fma(TS.Exp(TS.LoadMasked(yr, k.K0, default)), ns, d0));
            TS.StoreMasked(dxr + w, k.K1, TS.Fma(TS.Exp(TS.LoadMasked(yr + w, k.K1, default)), ns, d1));
            TS.StoreMasked(dxr + 2 * w, k.K2, TS.Fma(TS.Exp(TS.LoadMasked(yr + 2 * w, k.K2, default)), ns, d2));
            TS.StoreMasked(dxr + 3 * w, k.K3, TS.Fma(TS.Exp(TS.LoadMasked(yr + 3 * w, k.K3, default)), ns, d3));
        }
    }
}
