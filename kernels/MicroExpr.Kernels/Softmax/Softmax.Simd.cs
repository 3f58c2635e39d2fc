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

    /// <summary>
    /// Σ_j exp(x_j − m) over the row as a vector of partial sums (two accumulators); with <paramref name="store"/> each
    /// exp(x − m) of the full vectors is also written to yr. <paramref name="et"/> is the tail's exp(x − m), 0 past the
    /// row end. store is a constant at every call, so the JIT drops the branch from the inlined loop.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV ExpSum<TS, TV>(float* xr, float* yr, int n, int full, TV mask, TV tail, TV vm, bool store, out TV et)
        where TS : struct, ISimd<TV> where TV : struct
    {
        int w = TS.Count;
        TV s0 = default, s1 = default;
        int i = 0;
        for (; i + 2 * w <= n; i += 2 * w)
        {
            var e0 = TS.Exp(TS.Sub(TS.Load(xr + i), vm));
            var e1 = TS.Exp(TS.Sub(TS.Load(xr + i + w), vm));
            if (store)
            {
                TS.Store(yr + i, e0);
                TS.Store(yr + i + w, e1);
            }
            s0 = TS.Add(s0, e0);
            s1 = TS.Add(s1, e1);
        }
        if (i < full)
        {
            var e0 = TS.Exp(TS.Sub(TS.Load(xr + i), vm));
            if (store) TS.Store(yr + i, e0);
            s0 = TS.Add(s0, e0);
        }
        et = default;
        if (full < n)
        {
            et = TS.Select(mask, TS.Exp(TS.Sub(tail, vm)), default);
            s1 = TS.Add(s1, et);
        }
        return TS.Add(s0, s1);
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
            var inv = TS.Splat(1f / TS.HSum(ExpSum<TS, TV>(xr, yr, n, full, mask, tail, vm, store: true, out var et)));
            for (int i = 0; i < full; i += w) TS.Store(yr + i, TS.Mul(TS.Load(yr + i), inv));
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
            var sum = ExpSum<TS, TV>(xr, null, n, full, mask, tail, TS.Splat(mx), store: false, out _);
            var sh = TS.Splat(mx + Simd.Log(TS.HSum(sum)));
            for (int i = 0; i < full; i += w) TS.Store(yr + i, TS.Sub(TS.Load(xr + i), sh));
            if (rem != 0) TS.StoreMasked(yr + full, mask, TS.Sub(tail, sh));
        }
    }

    /// <summary>
    /// Σ_j y_j·dy_j over the row (<paramref name="weighted"/>) or Σ_j dy_j, two accumulators; the tails of y and dy are
    /// read once, into ty and tdy (0 past the row end), before the caller stores any dx, so that dx may alias dy.
    /// weighted is a constant at every call.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float RowDot<TS, TV>(float* yr, float* dyr, int n, int full, TV mask, bool weighted, out TV ty, out TV tdy)
        where TS : struct, ISimd<TV> where TV : struct
    {
        int w = TS.Count;
        TV s0 = default, s1 = default;
        int i = 0;
        for (; i + 2 * w <= n; i += 2 * w)
        {
            s0 = weighted ? TS.Fma(TS.Load(yr + i), TS.Load(dyr + i), s0) : TS.Add(s0, TS.Load(dyr + i));
            s1 = weighted ? TS.Fma(TS.Load(yr + i + w), TS.Load(dyr + i + w), s1) : TS.Add(s1, TS.Load(dyr + i + w));
        }
        if (i < full) s0 = weighted ? TS.Fma(TS.Load(yr + i), TS.Load(dyr + i), s0) : TS.Add(s0, TS.Load(dyr + i));
        ty = tdy = default;
        if (full < n)
        {
            ty = TS.LoadMasked(yr + full, mask, default);
            tdy = TS.LoadMasked(dyr + full, mask, default);
            s1 = weighted ? TS.Fma(ty, tdy, s1) : TS.Add(s1, tdy);
        }
        return TS.HSum(TS.Add(s0, s1));
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
            var dot = TS.Splat(RowDot<TS, TV>(yr, dyr, n, full, mask, weighted: true, out var ty, out var tdy));
            for (int i = 0; i < full; i += w) TS.Store(dxr + i, TS.Mul(TS.Load(yr + i), TS.Sub(TS.Load(dyr + i), dot)));
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
            var ns = TS.Splat(-RowDot<TS, TV>(yr, dyr, n, full, mask, weighted: false, out var ty, out var tdy));
            for (int i = 0; i < full; i += w) TS.Store(dxr + i, TS.Fma(TS.Exp(TS.Load(yr + i)), ns, TS.Load(dyr + i)));
            if (rem != 0) TS.StoreMasked(dxr + full, mask, TS.Fma(TS.Exp(ty), ns, tdy));
        }
    }

    // ---------------------------------------------------------------- rows of at most SmallVectors vectors

    /// <summary>A row of at most four vectors held in registers (or their masks: lane l of vector j set when Count·j + l &lt; n).</summary>
    private struct Row4<TV> where TV : struct
    {
        public TV V0, V1, V2, V3;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Row4<TV> SmallMasks<TS, TV>(int n) where TS : struct, ISimd<TV> where TV : struct => new()
    {
        V0 = TS.FirstMask(n), V1 = TS.FirstMask(n - TS.Count), V2 = TS.FirstMask(n - 2 * TS.Count), V3 = TS.FirstMask(n - 3 * TS.Count),
    };

    /// <summary>The row at p; lanes past its end read <paramref name="fill"/> (and are not read from memory).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Row4<TV> Load4<TS, TV>(float* p, in Row4<TV> k, TV fill) where TS : struct, ISimd<TV> where TV : struct => new()
    {
        V0 = TS.LoadMasked(p, k.V0, fill), V1 = TS.LoadMasked(p + TS.Count, k.V1, fill),
        V2 = TS.LoadMasked(p + 2 * TS.Count, k.V2, fill), V3 = TS.LoadMasked(p + 3 * TS.Count, k.V3, fill),
    };

    /// <summary>Stores the row's lanes inside it, each vector times <paramref name="scale"/> plus <paramref name="shift"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store4<TS, TV>(float* p, in Row4<TV> k, in Row4<TV> v, TV scale, TV shift) where TS : struct, ISimd<TV> where TV : struct
    {
        TS.StoreMasked(p, k.V0, TS.Fma(v.V0, scale, shift));
        TS.StoreMasked(p + TS.Count, k.V1, TS.Fma(v.V1, scale, shift));
        TS.StoreMasked(p + 2 * TS.Count, k.V2, TS.Fma(v.V2, scale, shift));
        TS.StoreMasked(p + 3 * TS.Count, k.V3, TS.Fma(v.V3, scale, shift));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Max4<TS, TV>(in Row4<TV> v) where TS : struct, ISimd<TV> where TV : struct =>
        TS.HMaxNative(TS.MaxNative(TS.MaxNative(v.V0, v.V1), TS.MaxNative(v.V2, v.V3)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Sum4<TS, TV>(in Row4<TV> v) where TS : struct, ISimd<TV> where TV : struct =>
        TS.HSum(TS.Add(TS.Add(v.V0, v.V1), TS.Add(v.V2, v.V3)));

    /// <summary>exp(v − m) per lane (lanes past the row end, −∞, give 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Row4<TV> ExpShifted4<TS, TV>(in Row4<TV> v, TV m) where TS : struct, ISimd<TV> where TV : struct => new()
    {
        V0 = TS.Exp(TS.Sub(v.V0, m)), V1 = TS.Exp(TS.Sub(v.V1, m)), V2 = TS.Exp(TS.Sub(v.V2, m)), V3 = TS.Exp(TS.Sub(v.V3, m)),
    };

    /// <summary>
    /// Two rows per iteration, a and b, so that their two latency chains (max → exp → sum → scale) overlap. An odd last
    /// row is run as a pair with itself: every load precedes every store, so the duplicate writes the same values (also
    /// when y aliases x), and no second copy of the body is needed for it.
    /// </summary>
    private static void ForwardSmall<TS, TV>(ref RowArgs a, int part, int r0, int r1) where TS : struct, ISimd<TV> where TV : struct
    {
        float* y = a.P0, x = a.P1;
        int n = a.Cols;
        var k = SmallMasks<TS, TV>(n);
        var ninf = TS.Splat(float.NegativeInfinity);
        for (int r = r0; r < r1; r += 2)
        {
            long ob = r + 1 < r1 ? n : 0; // offset of row b from row a: the next row, or row a again
            float* xr = x + (long)r * n, yr = y + (long)r * n;
            var va = Load4<TS, TV>(xr, k, ninf);
            var vb = Load4<TS, TV>(xr + ob, k, ninf);
            var ea = ExpShifted4<TS, TV>(va, TS.Splat(Max4<TS, TV>(va)));
            var eb = ExpShifted4<TS, TV>(vb, TS.Splat(Max4<TS, TV>(vb)));
            float sa = Sum4<TS, TV>(ea), sb = Sum4<TS, TV>(eb);
            Store4<TS, TV>(yr, k, ea, TS.Splat(1f / sa), default);
            Store4<TS, TV>(yr + ob, k, eb, TS.Splat(1f / sb), default);
        }
    }

    /// <summary>Two rows per iteration (an odd last row paired with itself) as in <see cref="ForwardSmall"/>.</summary>
    private static void LogForwardSmall<TS, TV>(ref RowArgs a, int part, int r0, int r1) where TS : struct, ISimd<TV> where TV : struct
    {
        float* y = a.P0, x = a.P1;
        int n = a.Cols;
        var k = SmallMasks<TS, TV>(n);
        var ninf = TS.Splat(float.NegativeInfinity);
        var one = TS.Splat(1f);
        for (int r = r0; r < r1; r += 2)
        {
            long ob = r + 1 < r1 ? n : 0;
            float* xr = x + (long)r * n, yr = y + (long)r * n;
            var va = Load4<TS, TV>(xr, k, ninf);
            var vb = Load4<TS, TV>(xr + ob, k, ninf);
            float ma = Max4<TS, TV>(va), mb = Max4<TS, TV>(vb);
            float sa = Sum4<TS, TV>(ExpShifted4<TS, TV>(va, TS.Splat(ma)));
            float sb = Sum4<TS, TV>(ExpShifted4<TS, TV>(vb, TS.Splat(mb)));
            Store4<TS, TV>(yr, k, va, one, TS.Splat(-(ma + Simd.Log(sa))));
            Store4<TS, TV>(yr + ob, k, vb, one, TS.Splat(-(mb + Simd.Log(sb))));
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
            var yv = Load4<TS, TV>(y + o, k, default);
            var d = Load4<TS, TV>(dy + o, k, default);
            var dot = TS.Splat(TS.HSum(TS.Add(TS.Fma(yv.V0, d.V0, TS.Mul(yv.V1, d.V1)), TS.Fma(yv.V2, d.V2, TS.Mul(yv.V3, d.V3)))));
            float* dxr = dx + o;
            TS.StoreMasked(dxr, k.V0, TS.Mul(yv.V0, TS.Sub(d.V0, dot)));
            TS.StoreMasked(dxr + w, k.V1, TS.Mul(yv.V1, TS.Sub(d.V1, dot)));
            TS.StoreMasked(dxr + 2 * w, k.V2, TS.Mul(yv.V2, TS.Sub(d.V2, dot)));
            TS.StoreMasked(dxr + 3 * w, k.V3, TS.Mul(yv.V3, TS.Sub(d.V3, dot)));
        }
    }

    private static void LogBackwardSmall<TS, TV>(ref RowArgs a, int part, int r0, int r1) where TS : struct, ISimd<TV> where TV : struct
    {
        float* dx = a.P0, y = a.P1, dy = a.P2;
        int n = a.Cols;
        var k = SmallMasks<TS, TV>(n);
        for (int r = r0; r < r1; r++)
        {
            long o = (long)r * n;
            var d = Load4<TS, TV>(dy + o, k, default);
            var ns = TS.Splat(-Sum4<TS, TV>(d));
            // Lanes past the row end are never stored, so y there may read as anything finite (0 here).
            var e = ExpShifted4<TS, TV>(Load4<TS, TV>(y + o, k, default), default);
            float* dxr = dx + o;
            int w = TS.Count;
            TS.StoreMasked(dxr, k.V0, TS.Fma(e.V0, ns, d.V0));
            TS.StoreMasked(dxr + w, k.V1, TS.Fma(e.V1, ns, d.V1));
            TS.StoreMasked(dxr + 2 * w, k.V2, TS.Fma(e.V2, ns, d.V2));
            TS.StoreMasked(dxr + 3 * w, k.V3, TS.Fma(e.V3, ns, d.V3));
        }
    }
}
