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
/// Vector256 + AVX masked moves when Vector512 is not accelerated; scalar otherwise. Rows are split into fixed contiguous parts (one per thread)
/// taken by the caller and <c>threads</c> − 1 pool workers (<see cref="RowSplit"/>; inline when threads ≤ 1 or
/// rows·cols &lt; 32K); y may alias x and dx may alias dy. No allocation on the hot path.
/// </para>
/// </summary>
public static unsafe class SoftmaxSimd
{
    /// <summary>Rows up to this many columns (four Vector512) are held in registers: one load, one store per element.</summary>
    private const int SmallCols = 64;

    /// <summary>y = softmax(x) over the last axis.</summary>
    public static void Forward(float* y, float* x, int rows, int cols, int threads) =>
        Dispatch(y, x, null, rows, cols, threads, &ForwardSmall512, &Forward512, &Forward256, &ForwardScalar);

    /// <summary>dx = y·(dy − Σ dy·y), overwritten.</summary>
    public static void Backward(float* dx, float* y, float* dy, int rows, int cols, int threads) =>
        Dispatch(dx, y, dy, rows, cols, threads, &BackwardSmall512, &Backward512, &Backward256, &BackwardScalar);

    /// <summary>y = x − max − ln Σ exp(x − max).</summary>
    public static void LogForward(float* y, float* x, int rows, int cols, int threads) =>
        Dispatch(y, x, null, rows, cols, threads, &LogForwardSmall512, &LogForward512, &LogForward256, &LogForwardScalar);

    /// <summary>dx = dy − exp(y)·Σ dy, overwritten.</summary>
    public static void LogBackward(float* dx, float* y, float* dy, int rows, int cols, int threads) =>
        Dispatch(dx, y, dy, rows, cols, threads, &LogBackwardSmall512, &LogBackward512, &LogBackward256, &LogBackwardScalar);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Dispatch(float* o, float* i0, float* i1, int rows, int cols, int threads,
        delegate*<ref RowArgs, int, int, int, void> fSmall512, delegate*<ref RowArgs, int, int, int, void> f512,
        delegate*<ref RowArgs, int, int, int, void> f256, delegate*<ref RowArgs, int, int, int, void> fScalar)
    {
        if (rows <= 0 || cols <= 0) return;
        var a = new RowArgs { P0 = o, P1 = i0, P2 = i1, Rows = rows, Cols = cols };
        var fn = SimdIsaSelect.Current switch
        {
            SimdIsa.V512 => cols <= SmallCols ? fSmall512 : f512,
            SimdIsa.V256 => f256,
            _ => fScalar,
        };
        int t = RowSplit.Threads(rows, cols, threads);
        RowSplit.Run(fn, ref a, RowSplit.Parts(rows, t), t);
    }

    // ---------------------------------------------------------------- Vector512

    private static void Forward512(ref RowArgs a, int part, int r0, int r1)
    {
        float* y = a.P0, x = a.P1;
        int n = a.Cols;
        const int W = 16;
        int full = n & ~(W - 1), rem = n - full;
        var mask = Simd.TailMask512(rem);
        var ninf = Vector512.Create(float.NegativeInfinity);
        for (int r = r0; r < r1; r++)
        {
            float* xr = x + (long)r * n, yr = y + (long)r * n;
            var m0 = ninf;
            var m1 = ninf;
            int i = 0;
            for (; i + 2 * W <= n; i += 2 * W)
            {
                m0 = Vector512.MaxNative(m0, Vector512.Load(xr + i));
                m1 = Vector512.MaxNative(m1, Vector512.Load(xr + i + W));
            }
            if (i < full) m0 = Vector512.MaxNative(m0, Vector512.Load(xr + i));
            var tail = rem != 0 ? Simd.LoadTail(xr + full, mask, ninf) : ninf;
            var vm = Vector512.Create(Simd.HMax(Vector512.MaxNative(Vector512.MaxNative(m0, m1), tail)));
            Vector512<float> s0 = default, s1 = default;
            for (i = 0; i + 2 * W <= n; i += 2 * W)
            {
                var e0 = Exp512(Vector512.Load(xr + i) - vm);
                var e1 = Exp512(Vector512.Load(xr + i + W) - vm);
                Vector512.Store(e0, yr + i);
                Vector512.Store(e1, yr + i + W);
                s0 += e0;
                s1 += e1;
            }
            if (i < full)
            {
                var e0 = Exp512(Vector512.Load(xr + i) - vm);
                Vector512.Store(e0, yr + i);
                s0 += e0;
            }
            Vector512<float> et = default;
            if (rem != 0)
            {
                et = Vector512.ConditionalSelect(mask, Exp512(tail - vm), default);
                s1 += et;
            }
            var inv = Vector512.Create(1f / Simd.HSum(s0 + s1));
            for (i = 0; i < full; i += W) Vector512.Store(Vector512.Load(yr + i) * inv, yr + i);
            if (rem != 0) Simd.StoreTail(yr + full, mask, et * inv);
        }
    }

    private static void LogForward512(ref RowArgs a, int part, int r0, int r1)
    {
        float* y = a.P0, x = a.P1;
        int n = a.Cols;
        const int W = 16;
        int full = n & ~(W - 1), rem = n - full;
        var mask = Simd.TailMask512(rem);
        var ninf = Vector512.Create(float.NegativeInfinity);
        for (int r = r0; r < r1; r++)
        {
            float* xr = x + (long)r * n, yr = y + (long)r * n;
            var m0 = ninf;
            var m1 = ninf;
            int i = 0;
            for (; i + 2 * W <= n; i += 2 * W)
            {
                m0 = Vector512.MaxNative(m0, Vector512.Load(xr + i));
                m1 = Vector512.MaxNative(m1, Vector512.Load(xr + i + W));
            }
            if (i < full) m0 = Vector512.MaxNative(m0, Vector512.Load(xr + i));
            var tail = rem != 0 ? Simd.LoadTail(xr + full, mask, ninf) : ninf;
            float mx = Simd.HMax(Vector512.MaxNative(Vector512.MaxNative(m0, m1), tail));
            var vm = Vector512.Create(mx);
            Vector512<float> s0 = default, s1 = default;
            for (i = 0; i + 2 * W <= n; i += 2 * W)
            {
                s0 += Exp512(Vector512.Load(xr + i) - vm);
                s1 += Exp512(Vector512.Load(xr + i + W) - vm);
            }
            if (i < full) s0 += Exp512(Vector512.Load(xr + i) - vm);
            if (rem != 0) s1 += Vector512.ConditionalSelect(mask, Exp512(tail - vm), default);
            var sh = Vector512.Create(mx + Simd.Log(Simd.HSum(s0 + s1)));
            for (i = 0; i < full; i += W) Vector512.Store(Vector512.Load(xr + i) - sh, yr + i);
            if (rem != 0) Simd.StoreTail(yr + full, mask, tail - sh);
        }
    }

    private static void Backward512(ref RowArgs a, int part, int r0, int r1)
    {
        float* dx = a.P0, y = a.P1, dy = a.P2;
        int n = a.Cols;
        const int W = 16;
        int full = n & ~(W - 1), rem = n - full;
        var mask = Simd.TailMask512(rem);
        for (int r = r0; r < r1; r++)
        {
            float* yr = y + (long)r * n, dyr = dy + (long)r * n, dxr = dx + (long)r * n;
            Vector512<float> s0 = default, s1 = default, ty = default, tdy = default;
            int i = 0;
            for (; i + 2 * W <= n; i += 2 * W)
            {
                s0 = Vector512.FusedMultiplyAdd(Vector512.Load(yr + i), Vector512.Load(dyr + i), s0);
                s1 = Vector512.FusedMultiplyAdd(Vector512.Load(yr + i + W), Vector512.Load(dyr + i + W), s1);
            }
            if (i < full) s0 = Vector512.FusedMultiplyAdd(Vector512.Load(yr + i), Vector512.Load(dyr + i), s0);
            if (rem != 0)
            {
                ty = Simd.LoadTail(yr + full, mask, default);
                tdy = Simd.LoadTail(dyr + full, mask, default);
                s1 = Vector512.FusedMultiplyAdd(ty, tdy, s1);
            }
            var dot = Vector512.Create(Simd.HSum(s0 + s1));
            for (i = 0; i < full; i += W)
            {
                var yv = Vector512.Load(yr + i);
                Vector512.Store(yv * (Vector512.Load(dyr + i) - dot), dxr + i);
            }
            if (rem != 0) Simd.StoreTail(dxr + full, mask, ty * (tdy - dot));
        }
    }

    private static void LogBackward512(ref RowArgs a, int part, int r0, int r1)
    {
        float* dx = a.P0, y = a.P1, dy = a.P2;
        int n = a.Cols;
        const int W = 16;
        int full = n & ~(W - 1), rem = n - full;
        var mask = Simd.TailMask512(rem);
        for (int r = r0; r < r1; r++)
        {
            float* yr = y + (long)r * n, dyr = dy + (long)r * n, dxr = dx + (long)r * n;
            Vector512<float> s0 = default, s1 = default, ty = default, tdy = default;
            int i = 0;
            for (; i + 2 * W <= n; i += 2 * W)
            {
                s0 += Vector512.Load(dyr + i);
                s1 += Vector512.Load(dyr + i + W);
            }
            if (i < full) s0 += Vector512.Load(dyr + i);
            if (rem != 0)
            {
                ty = Simd.LoadTail(yr + full, mask, default);
                tdy = Simd.LoadTail(dyr + full, mask, default);
                s1 += tdy;
            }
            var ns = Vector512.Create(-Simd.HSum(s0 + s1));
            for (i = 0; i < full; i += W)
                Vector512.Store(Vector512.FusedMultiplyAdd(Exp512(Vector512.Load(yr + i)), ns, Vector512.Load(dyr + i)), dxr + i);
            if (rem != 0) Simd.StoreTail(dxr + full, mask, Vector512.FusedMultiplyAdd(Exp512(ty), ns, tdy));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Exp512(Vector512<float> v) => Simd.Exp(v);

    // ---------------------------------------------------------------- Vector256

    private static void Forward256(ref RowArgs a, int part, int r0, int r1)
    {
        float* y = a.P0, x = a.P1;
        int n = a.Cols;
        const int W = 8;
        int full = n & ~(W - 1), rem = n - full;
        var mask = Simd.TailMask256(rem);
        var ninf = Vector256.Create(float.NegativeInfinity);
        for (int r = r0; r < r1; r++)
        {
            float* xr = x + (long)r * n, yr = y + (long)r * n;
            var m0 = ninf;
            var m1 = ninf;
            int i = 0;
            for (; i + 2 * W <= n; i += 2 * W)
            {
                m0 = Vector256.MaxNative(m0, Vector256.Load(xr + i));
                m1 = Vector256.MaxNative(m1, Vector256.Load(xr + i + W));
            }
            if (i < full) m0 = Vector256.MaxNative(m0, Vector256.Load(xr + i));
            var tail = rem != 0 ? Simd.LoadTail(xr + full, mask, ninf) : ninf;
            var vm = Vector256.Create(Simd.HMax(Vector256.MaxNative(Vector256.MaxNative(m0, m1), tail)));
            Vector256<float> s0 = default, s1 = default;
            for (i = 0; i + 2 * W <= n; i += 2 * W)
            {
                var e0 = Exp256(Vector256.Load(xr + i) - vm);
                var e1 = Exp256(Vector256.Load(xr + i + W) - vm);
                Vector256.Store(e0, yr + i);
                Vector256.Store(e1, yr + i + W);
                s0 += e0;
                s1 += e1;
            }
            if (i < full)
            {
                var e0 = Exp256(Vector256.Load(xr + i) - vm);
                Vector256.Store(e0, yr + i);
                s0 += e0;
            }
            Vector256<float> et = default;
            if (rem != 0)
            {
                et = Vector256.ConditionalSelect(mask, Exp256(tail - vm), default);
                s1 += et;
            }
            var inv = Vector256.Create(1f / Simd.HSum(s0 + s1));
            for (i = 0; i < full; i += W) Vector256.Store(Vector256.Load(yr + i) * inv, yr + i);
            if (rem != 0) Simd.StoreTail(yr + full, mask, et * inv);
        }
    }

    private static void LogForward256(ref RowArgs a, int part, int r0, int r1)
    {
        float* y = a.P0, x = a.P1;
        int n = a.Cols;
        const int W = 8;
        int full = n & ~(W - 1), rem = n - full;
        var mask = Simd.TailMask256(rem);
        var ninf = Vector256.Create(float.NegativeInfinity);
        for (int r = r0; r < r1; r++)
        {
            float* xr = x + (long)r * n, yr = y + (long)r * n;
            var m0 = ninf;
            var m1 = ninf;
            int i = 0;
            for (; i + 2 * W <= n; i += 2 * W)
            {
                m0 = Vector256.MaxNative(m0, Vector256.Load(xr + i));
                m1 = Vector256.MaxNative(m1, Vector256.Load(xr + i + W));
            }
            if (i < full) m0 = Vector256.MaxNative(m0, Vector256.Load(xr + i));
            var tail = rem != 0 ? Simd.LoadTail(xr + full, mask, ninf) : ninf;
            float mx = Simd.HMax(Vector256.MaxNative(Vector256.MaxNative(m0, m1), tail));
            var vm = Vector256.Create(mx);
            Vector256<float> s0 = default, s1 = default;
            for (i = 0; i + 2 * W <= n; i += 2 * W)
            {
                s0 += Exp256(Vector256.Load(xr + i) - vm);
                s1 += Exp256(Vector256.Load(xr + i + W) - vm);
            }
            if (i < full) s0 += Exp256(Vector256.Load(xr + i) - vm);
            if (rem != 0) s1 += Vector256.ConditionalSelect(mask, Exp256(tail - vm), default);
            var sh = Vector256.Create(mx + Simd.Log(Simd.HSum(s0 + s1)));
            for (i = 0; i < full; i += W) Vector256.Store(Vector256.Load(xr + i) - sh, yr + i);
            if (rem != 0) Simd.StoreTail(yr + full, mask, tail - sh);
        }
    }

    private static void Backward256(ref RowArgs a, int part, int r0, int r1)
    {
        float* dx = a.P0, y = a.P1, dy = a.P2;
        int n = a.Cols;
        const int W = 8;
        int full = n & ~(W - 1), rem = n - full;
        var mask = Simd.TailMask256(rem);
        for (int r = r0; r < r1; r++)
        {
            float* yr = y + (long)r * n, dyr = dy + (long)r * n, dxr = dx + (long)r * n;
            Vector256<float> s0 = default, s1 = default, ty = default, tdy = default;
            int i = 0;
            for (; i + 2 * W <= n; i += 2 * W)
            {
                s0 = Vector256.FusedMultiplyAdd(Vector256.Load(yr + i), Vector256.Load(dyr + i), s0);
                s1 = Vector256.FusedMultiplyAdd(Vector256.Load(yr + i + W), Vector256.Load(dyr + i + W), s1);
            }
            if (i < full) s0 = Vector256.FusedMultiplyAdd(Vector256.Load(yr + i), Vector256.Load(dyr + i), s0);
            if (rem != 0)
            {
                ty = Simd.LoadTail(yr + full, mask, default);
                tdy = Simd.LoadTail(dyr + full, mask, default);
                s1 = Vector256.FusedMultiplyAdd(ty, tdy, s1);
            }
            var dot = Vector256.Create(Simd.HSum(s0 + s1));
            for (i = 0; i < full; i += W)
            {
                var yv = Vector256.Load(yr + i);
                Vector256.Store(yv * (Vector256.Load(dyr + i) - dot), dxr + i);
            }
            if (rem != 0) Simd.StoreTail(dxr + full, mask, ty * (tdy - dot));
        }
    }

    private static void LogBackward256(ref RowArgs a, int part, int r0, int r1)
    {
        float* dx = a.P0, y = a.P1, dy = a.P2;
        int n = a.Cols;
        const int W = 8;
        int full = n & ~(W - 1), rem = n - full;
        var mask = Simd.TailMask256(rem);
        for (int r = r0; r < r1; r++)
        {
            float* yr = y + (long)r * n, dyr = dy + (long)r * n, dxr = dx + (long)r * n;
            Vector256<float> s0 = default, s1 = default, ty = default, tdy = default;
            int i = 0;
            for (; i + 2 * W <= n; i += 2 * W)
            {
                s0 += Vector256.Load(dyr + i);
                s1 += Vector256.Load(dyr + i + W);
            }
            if (i < full) s0 += Vector256.Load(dyr + i);
            if (rem != 0)
            {
                ty = Simd.LoadTail(yr + full, mask, default);
                tdy = Simd.LoadTail(dyr + full, mask, default);
                s1 += tdy;
            }
            var ns = Vector256.Create(-Simd.HSum(s0 + s1));
            for (i = 0; i < full; i += W)
                Vector256.Store(Vector256.FusedMultiplyAdd(Exp256(Vector256.Load(yr + i)), ns, Vector256.Load(dyr + i)), dxr + i);
            if (rem != 0) Simd.StoreTail(dxr + full, mask, Vector256.FusedMultiplyAdd(Exp256(ty), ns, tdy));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Exp256(Vector256<float> v) => Simd.Exp(v);

    // ---------------------------------------------------------------- Vector512, rows of at most 64 columns

    /// <summary>Masks of the four vectors of a row of n ≤ 64 columns: lane l of vector j is set when 16·j + l &lt; n.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SmallMasks(int n, out Vector512<float> k0, out Vector512<float> k1, out Vector512<float> k2, out Vector512<float> k3)
    {
        k0 = Simd.TailMask512(n);
        k1 = Simd.TailMask512(n - 16);
        k2 = Simd.TailMask512(n - 32);
        k3 = Simd.TailMask512(n - 48);
    }

    /// <summary>Two rows per iteration with their statements interleaved, so that the two latency chains (max → exp → sum → scale) overlap.</summary>
    private static void ForwardSmall512(ref RowArgs a, int part, int r0, int r1)
    {
        float* y = a.P0, x = a.P1;
        int n = a.Cols;
        SmallMasks(n, out var k0, out var k1, out var k2, out var k3);
        var ninf = Vector512.Create(float.NegativeInfinity);
        int r = r0;
        for (; r + 2 <= r1; r += 2)
        {
            float* xr = x + (long)r * n, yr = y + (long)r * n;
            var v0a = Simd.LoadTail(xr, k0, ninf);
            var v0b = Simd.LoadTail(xr + n, k0, ninf);
            var v1a = Simd.LoadTail(xr + 16, k1, ninf);
            var v1b = Simd.LoadTail(xr + n + 16, k1, ninf);
            var v2a = Simd.LoadTail(xr + 32, k2, ninf);
            var v2b = Simd.LoadTail(xr + n + 32, k2, ninf);
            var v3a = Simd.LoadTail(xr + 48, k3, ninf);
            var v3b = Simd.LoadTail(xr + n + 48, k3, ninf);
            var mxa = Simd.HMax(Vector512.MaxNative(Vector512.MaxNative(v0a, v1a), Vector512.MaxNative(v2a, v3a)));
            var mxb = Simd.HMax(Vector512.MaxNative(Vector512.MaxNative(v0b, v1b), Vector512.MaxNative(v2b, v3b)));
            var vma = Vector512.Create(mxa);
            var vmb = Vector512.Create(mxb);
            var e0a = Simd.Exp(v0a - vma); // lanes past the row end: exp(−∞) = 0
            var e0b = Simd.Exp(v0b - vmb); // lanes past the row end: exp(−∞) = 0
            var e1a = Simd.Exp(v1a - vma);
            var e1b = Simd.Exp(v1b - vmb);
            var e2a = Simd.Exp(v2a - vma);
            var e2b = Simd.Exp(v2b - vmb);
            var e3a = Simd.Exp(v3a - vma);
            var e3b = Simd.Exp(v3b - vmb);
            var inva = Vector512.Create(1f / Simd.HSum((e0a + e1a) + (e2a + e3a)));
            var invb = Vector512.Create(1f / Simd.HSum((e0b + e1b) + (e2b + e3b)));
            Simd.StoreTail(yr, k0, e0a * inva);
            Simd.StoreTail(yr + n, k0, e0b * invb);
            Simd.StoreTail(yr + 16, k1, e1a * inva);
            Simd.StoreTail(yr + n + 16, k1, e1b * invb);
            Simd.StoreTail(yr + 32, k2, e2a * inva);
            Simd.StoreTail(yr + n + 32, k2, e2b * invb);
            Simd.StoreTail(yr + 48, k3, e3a * inva);
            Simd.StoreTail(yr + n + 48, k3, e3b * invb);
        }
        if (r < r1)
        {
            float* xr = x + (long)r * n, yr = y + (long)r * n;
            var v0a = Simd.LoadTail(xr, k0, ninf);
            var v1a = Simd.LoadTail(xr + 16, k1, ninf);
            var v2a = Simd.LoadTail(xr + 32, k2, ninf);
            var v3a = Simd.LoadTail(xr + 48, k3, ninf);
            var mxa = Simd.HMax(Vector512.MaxNative(Vector512.MaxNative(v0a, v1a), Vector512.MaxNative(v2a, v3a)));
            var vma = Vector512.Create(mxa);
            var e0a = Simd.Exp(v0a - vma); // lanes past the row end: exp(−∞) = 0
            var e1a = Simd.Exp(v1a - vma);
            var e2a = Simd.Exp(v2a - vma);
            var e3a = Simd.Exp(v3a - vma);
            var inva = Vector512.Create(1f / Simd.HSum((e0a + e1a) + (e2a + e3a)));
            Simd.StoreTail(yr, k0, e0a * inva);
            Simd.StoreTail(yr + 16, k1, e1a * inva);
            Simd.StoreTail(yr + 32, k2, e2a * inva);
            Simd.StoreTail(yr + 48, k3, e3a * inva);
        }
    }

    /// <summary>Two rows per iteration, interleaved as in <see cref="ForwardSmall512"/>.</summary>
    private static void LogForwardSmall512(ref RowArgs a, int part, int r0, int r1)
    {
        float* y = a.P0, x = a.P1;
        int n = a.Cols;
        SmallMasks(n, out var k0, out var k1, out var k2, out var k3);
        var ninf = Vector512.Create(float.NegativeInfinity);
        int r = r0;
        for (; r + 2 <= r1; r += 2)
        {
            float* xr = x + (long)r * n, yr = y + (long)r * n;
            var v0a = Simd.LoadTail(xr, k0, ninf);
            var v0b = Simd.LoadTail(xr + n, k0, ninf);
            var v1a = Simd.LoadTail(xr + 16, k1, ninf);
            var v1b = Simd.LoadTail(xr + n + 16, k1, ninf);
            var v2a = Simd.LoadTail(xr + 32, k2, ninf);
            var v2b = Simd.LoadTail(xr + n + 32, k2, ninf);
            var v3a = Simd.LoadTail(xr + 48, k3, ninf);
            var v3b = Simd.LoadTail(xr + n + 48, k3, ninf);
            var mxa = Simd.HMax(Vector512.MaxNative(Vector512.MaxNative(v0a, v1a), Vector512.MaxNative(v2a, v3a)));
            var mxb = Simd.HMax(Vector512.MaxNative(Vector512.MaxNative(v0b, v1b), Vector512.MaxNative(v2b, v3b)));
            var vma = Vector512.Create(mxa);
            var vmb = Vector512.Create(mxb);
            var sa = (Simd.Exp(v0a - vma) + Simd.Exp(v1a - vma)) + (Simd.Exp(v2a - vma) + Simd.Exp(v3a - vma));
            var sb = (Simd.Exp(v0b - vmb) + Simd.Exp(v1b - vmb)) + (Simd.Exp(v2b - vmb) + Simd.Exp(v3b - vmb));
            var sha = Vector512.Create(mxa + Simd.Log(Simd.HSum(sa)));
            var shb = Vector512.Create(mxb + Simd.Log(Simd.HSum(sb)));
            Simd.StoreTail(yr, k0, v0a - sha);
            Simd.StoreTail(yr + n, k0, v0b - shb);
            Simd.StoreTail(yr + 16, k1, v1a - sha);
            Simd.StoreTail(yr + n + 16, k1, v1b - shb);
            Simd.StoreTail(yr + 32, k2, v2a - sha);
            Simd.StoreTail(yr + n + 32, k2, v2b - shb);
            Simd.StoreTail(yr + 48, k3, v3a - sha);
            Simd.StoreTail(yr + n + 48, k3, v3b - shb);
        }
        if (r < r1)
        {
            float* xr = x + (long)r * n, yr = y + (long)r * n;
            var v0a = Simd.LoadTail(xr, k0, ninf);
            var v1a = Simd.LoadTail(xr + 16, k1, ninf);
            var v2a = Simd.LoadTail(xr + 32, k2, ninf);
            var v3a = Simd.LoadTail(xr + 48, k3, ninf);
            var mxa = Simd.HMax(Vector512.MaxNative(Vector512.MaxNative(v0a, v1a), Vector512.MaxNative(v2a, v3a)));
            var vma = Vector512.Create(mxa);
            var sa = (Simd.Exp(v0a - vma) + Simd.Exp(v1a - vma)) + (Simd.Exp(v2a - vma) + Simd.Exp(v3a - vma));
            var sha = Vector512.Create(mxa + Simd.Log(Simd.HSum(sa)));
            Simd.StoreTail(yr, k0, v0a - sha);
            Simd.StoreTail(yr + 16, k1, v1a - sha);
            Simd.StoreTail(yr + 32, k2, v2a - sha);
            Simd.StoreTail(yr + 48, k3, v3a - sha);
        }
    }

    private static void BackwardSmall512(ref RowArgs a, int part, int r0, int r1)
    {
        float* dx = a.P0, y = a.P1, dy = a.P2;
        int n = a.Cols;
        SmallMasks(n, out var k0, out var k1, out var k2, out var k3);
        for (int r = r0; r < r1; r++)
        {
            long o = (long)r * n;
            float* yr = y + o, dyr = dy + o, dxr = dx + o;
            var y0 = Simd.LoadTail(yr, k0, default);
            var y1 = Simd.LoadTail(yr + 16, k1, default);
            var y2 = Simd.LoadTail(yr + 32, k2, default);
            var y3 = Simd.LoadTail(yr + 48, k3, default);
            var d0 = Simd.LoadTail(dyr, k0, default);
            var d1 = Simd.LoadTail(dyr + 16, k1, default);
            var d2 = Simd.LoadTail(dyr + 32, k2, default);
            var d3 = Simd.LoadTail(dyr + 48, k3, default);
            var dot = Vector512.Create(Simd.HSum(
                Vector512.FusedMultiplyAdd(y0, d0, y1 * d1) + Vector512.FusedMultiplyAdd(y2, d2, y3 * d3)));
            Simd.StoreTail(dxr, k0, y0 * (d0 - dot));
            Simd.StoreTail(dxr + 16, k1, y1 * (d1 - dot));
            Simd.StoreTail(dxr + 32, k2, y2 * (d2 - dot));
            Simd.StoreTail(dxr + 48, k3, y3 * (d3 - dot));
        }
    }

    private static void LogBackwardSmall512(ref RowArgs a, int part, int r0, int r1)
    {
        float* dx = a.P0, y = a.P1, dy = a.P2;
        int n = a.Cols;
        SmallMasks(n, out var k0, out var k1, out var k2, out var k3);
        for (int r = r0; r < r1; r++)
        {
            long o = (long)r * n;
            float* yr = y + o, dyr = dy + o, dxr = dx + o;
            var d0 = Simd.LoadTail(dyr, k0, default);
            var d1 = Simd.LoadTail(dyr + 16, k1, default);
            var d2 = Simd.LoadTail(dyr + 32, k2, default);
            var d3 = Simd.LoadTail(dyr + 48, k3, default);
            var ns = Vector512.Create(-Simd.HSum((d0 + d1) + (d2 + d3)));
            // Lanes past the row end are never stored, so y there may read as anything finite (0 here).
            Simd.StoreTail(dxr, k0, Vector512.FusedMultiplyAdd(Simd.Exp(Simd.LoadTail(yr, k0, default)), ns, d0));
            Simd.StoreTail(dxr + 16, k1, Vector512.FusedMultiplyAdd(Simd.Exp(Simd.LoadTail(yr + 16, k1, default)), ns, d1));
            Simd.StoreTail(dxr + 32, k2, Vector512.FusedMultiplyAdd(Simd.Exp(Simd.LoadTail(yr + 32, k2, default)), ns, d2));
            Simd.StoreTail(dxr + 48, k3, Vector512.FusedMultiplyAdd(Simd.Exp(Simd.LoadTail(yr + 48, k3, default)), ns, d3));
        }
    }

    // ---------------------------------------------------------------- scalar

    private static void ForwardScalar(ref RowArgs a, int part, int r0, int r1)
    {
        float* y = a.P0, x = a.P1;
        int n = a.Cols;
        for (int r = r0; r < r1; r++)
        {
            float* xr = x + (long)r * n, yr = y + (long)r * n;
            float m = float.NegativeInfinity, s = 0;
            for (int i = 0; i < n; i++) m = MathF.Max(m, xr[i]);
            for (int i = 0; i < n; i++) s += yr[i] = MathF.Exp(xr[i] - m);
            float inv = 1f / s;
            for (int i = 0; i < n; i++) yr[i] *= inv;
        }
    }

    private static void LogForwardScalar(ref RowArgs a, int part, int r0, int r1)
    {
        float* y = a.P0, x = a.P1;
        int n = a.Cols;
        for (int r = r0; r < r1; r++)
        {
            float* xr = x + (long)r * n, yr = y + (long)r * n;
            float m = float.NegativeInfinity, s = 0;
            for (int i = 0; i < n; i++) m = MathF.Max(m, xr[i]);
            for (int i = 0; i < n; i++) s += MathF.Exp(xr[i] - m);
            float sh = m + MathF.Log(s);
            for (int i = 0; i < n; i++) yr[i] = xr[i] - sh;
        }
    }

    private static void BackwardScalar(ref RowArgs a, int part, int r0, int r1)
    {
        float* dx = a.P0, y = a.P1, dy = a.P2;
        int n = a.Cols;
        for (int r = r0; r < r1; r++)
        {
            float* yr = y + (long)r * n, dyr = dy + (long)r * n, dxr = dx + (long)r * n;
            float dot = 0;
            for (int i = 0; i < n; i++) dot += yr[i] * dyr[i];
            for (int i = 0; i < n; i++) dxr[i] = yr[i] * (dyr[i] - dot);
        }
    }

    private static void LogBackwardScalar(ref RowArgs a, int part, int r0, int r1)
    {
        float* dx = a.P0, y = a.P1, dy = a.P2;
        int n = a.Cols;
        for (int r = r0; r < r1; r++)
        {
            float* yr = y + (long)r * n, dyr = dy + (long)r * n, dxr = dx + (long)r * n;
            float s = 0;
            for (int i = 0; i < n; i++) s += dyr[i];
            for (int i = 0; i < n; i++) dxr[i] = dyr[i] - MathF.Exp(yr[i]) * s;
        }
    }
}
