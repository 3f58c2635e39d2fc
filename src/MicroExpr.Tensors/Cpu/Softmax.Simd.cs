using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MicroExpr.Tensors.Cpu;

/// <summary>
/// Fused softmax and log-softmax over the last axis of x[rows, cols], SIMD.
/// <para>
/// Math, per row: m = max_j x_j, s = Σ_j exp(x_j − m).
/// Forward y = exp(x − m)/s; Backward dx = y·(dy − Σ_j dy_j·y_j);
/// LogForward y = x − m − ln s; LogBackward dx = dy − exp(y)·Σ_j dy_j.
/// </para>
/// <para>Shapes: x, y, dy, dx [rows, cols], row-major and contiguous; the reduction runs over cols.</para>
/// <para>
/// Strategy: per row a max pass, then a fused exp + sum pass (Forward stores exp(x − m) into y), then a scale pass
/// (Forward: y·(1/s); LogForward: x − (m + ln s)). The row (a few hundred bytes for cols = 50) stays in L1 across
/// passes. Backward: one dot/sum pass, one output pass. Full vectors use Vector512 with two accumulators; the
/// tail (cols not a multiple of the width) is one AVX-512 masked load/store, so small rows such as cols = 50 cost
/// 3 full + 1 masked vector per pass with no scalar loop and no per-row setup beyond two broadcasts. Masked lanes
/// are loaded as the neutral element (−∞ for max, 0 for sums). Vector256 + AVX masked moves when Vector512 is not
/// accelerated; scalar otherwise. Rows are split into contiguous parts over <c>threads</c> via <see cref="RowSplit"/>
/// (inline when threads ≤ 1 or rows·cols is small); y may alias x and dx may alias dy. No allocation on the hot path.
/// </para>
/// </summary>
public static unsafe class SoftmaxSimd
{
    /// <summary>y = softmax(x) over the last axis.</summary>
    public static void Forward(float* y, float* x, int rows, int cols, int threads) =>
        Dispatch(y, x, null, rows, cols, threads, &Forward512, &Forward256, &ForwardScalar);

    /// <summary>dx = y·(dy − Σ dy·y), overwritten.</summary>
    public static void Backward(float* dx, float* y, float* dy, int rows, int cols, int threads) =>
        Dispatch(dx, y, dy, rows, cols, threads, &Backward512, &Backward256, &BackwardScalar);

    /// <summary>y = x − max − ln Σ exp(x − max).</summary>
    public static void LogForward(float* y, float* x, int rows, int cols, int threads) =>
        Dispatch(y, x, null, rows, cols, threads, &LogForward512, &LogForward256, &LogForwardScalar);

    /// <summary>dx = dy − exp(y)·Σ dy, overwritten.</summary>
    public static void LogBackward(float* dx, float* y, float* dy, int rows, int cols, int threads) =>
        Dispatch(dx, y, dy, rows, cols, threads, &LogBackward512, &LogBackward256, &LogBackwardScalar);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Dispatch(float* o, float* i0, float* i1, int rows, int cols, int threads,
        delegate*<ref RowArgs, int, int, int, void> f512, delegate*<ref RowArgs, int, int, int, void> f256,
        delegate*<ref RowArgs, int, int, int, void> fScalar)
    {
        if (rows <= 0 || cols <= 0) return;
        var a = new RowArgs { P0 = o, P1 = i0, P2 = i1, Rows = rows, Cols = cols };
        var fn = RowIsaSelect.Current switch { RowIsa.V512 => f512, RowIsa.V256 => f256, _ => fScalar };
        RowSplit.Run(fn, ref a, RowSplit.Parts(rows, cols, threads));
    }

    // ---------------------------------------------------------------- Vector512

    private static void Forward512(ref RowArgs a, int part, int r0, int r1)
    {
        float* y = a.P0, x = a.P1;
        int n = a.Cols;
        const int W = 16;
        int full = n & ~(W - 1), rem = n - full;
        var mask = RowSimd.TailMask512(rem);
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
            var tail = rem != 0 ? RowSimd.LoadTail(xr + full, mask, ninf) : ninf;
            var vm = Vector512.Create(RowSimd.HMax(Vector512.MaxNative(Vector512.MaxNative(m0, m1), tail)));
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
            var inv = Vector512.Create(1f / Vector512.Sum(s0 + s1));
            for (i = 0; i < full; i += W) Vector512.Store(Vector512.Load(yr + i) * inv, yr + i);
            if (rem != 0) RowSimd.StoreTail(yr + full, mask, et * inv);
        }
    }

    private static void LogForward512(ref RowArgs a, int part, int r0, int r1)
    {
        float* y = a.P0, x = a.P1;
        int n = a.Cols;
        const int W = 16;
        int full = n & ~(W - 1), rem = n - full;
        var mask = RowSimd.TailMask512(rem);
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
            var tail = rem != 0 ? RowSimd.LoadTail(xr + full, mask, ninf) : ninf;
            float mx = RowSimd.HMax(Vector512.MaxNative(Vector512.MaxNative(m0, m1), tail));
            var vm = Vector512.Create(mx);
            Vector512<float> s0 = default, s1 = default;
            for (i = 0; i + 2 * W <= n; i += 2 * W)
            {
                s0 += Exp512(Vector512.Load(xr + i) - vm);
                s1 += Exp512(Vector512.Load(xr + i + W) - vm);
            }
            if (i < full) s0 += Exp512(Vector512.Load(xr + i) - vm);
            if (rem != 0) s1 += Vector512.ConditionalSelect(mask, Exp512(tail - vm), default);
            var sh = Vector512.Create(mx + MathF.Log(Vector512.Sum(s0 + s1)));
            for (i = 0; i < full; i += W) Vector512.Store(Vector512.Load(xr + i) - sh, yr + i);
            if (rem != 0) RowSimd.StoreTail(yr + full, mask, tail - sh);
        }
    }

    private static void Backward512(ref RowArgs a, int part, int r0, int r1)
    {
        float* dx = a.P0, y = a.P1, dy = a.P2;
        int n = a.Cols;
        const int W = 16;
        int full = n & ~(W - 1), rem = n - full;
        var mask = RowSimd.TailMask512(rem);
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
                ty = RowSimd.LoadTail(yr + full, mask, default);
                tdy = RowSimd.LoadTail(dyr + full, mask, default);
                s1 = Vector512.FusedMultiplyAdd(ty, tdy, s1);
            }
            var dot = Vector512.Create(Vector512.Sum(s0 + s1));
            for (i = 0; i < full; i += W)
            {
                var yv = Vector512.Load(yr + i);
                Vector512.Store(yv * (Vector512.Load(dyr + i) - dot), dxr + i);
            }
            if (rem != 0) RowSimd.StoreTail(dxr + full, mask, ty * (tdy - dot));
        }
    }

    private static void LogBackward512(ref RowArgs a, int part, int r0, int r1)
    {
        float* dx = a.P0, y = a.P1, dy = a.P2;
        int n = a.Cols;
        const int W = 16;
        int full = n & ~(W - 1), rem = n - full;
        var mask = RowSimd.TailMask512(rem);
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
                ty = RowSimd.LoadTail(yr + full, mask, default);
                tdy = RowSimd.LoadTail(dyr + full, mask, default);
                s1 += tdy;
            }
            var ns = Vector512.Create(-Vector512.Sum(s0 + s1));
            for (i = 0; i < full; i += W)
                Vector512.Store(Vector512.FusedMultiplyAdd(Exp512(Vector512.Load(yr + i)), ns, Vector512.Load(dyr + i)), dxr + i);
            if (rem != 0) RowSimd.StoreTail(dxr + full, mask, Vector512.FusedMultiplyAdd(Exp512(ty), ns, tdy));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Exp512(Vector512<float> v) => Vector512.Exp(v);

    // ---------------------------------------------------------------- Vector256

    private static void Forward256(ref RowArgs a, int part, int r0, int r1)
    {
        float* y = a.P0, x = a.P1;
        int n = a.Cols;
        const int W = 8;
        int full = n & ~(W - 1), rem = n - full;
        var mask = RowSimd.TailMask256(rem);
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
            var tail = rem != 0 ? RowSimd.LoadTail(xr + full, mask, ninf) : ninf;
            var vm = Vector256.Create(RowSimd.HMax(Vector256.MaxNative(Vector256.MaxNative(m0, m1), tail)));
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
            var inv = Vector256.Create(1f / Vector256.Sum(s0 + s1));
            for (i = 0; i < full; i += W) Vector256.Store(Vector256.Load(yr + i) * inv, yr + i);
            if (rem != 0) RowSimd.StoreTail(yr + full, mask, et * inv);
        }
    }

    private static void LogForward256(ref RowArgs a, int part, int r0, int r1)
    {
        float* y = a.P0, x = a.P1;
        int n = a.Cols;
        const int W = 8;
        int full = n & ~(W - 1), rem = n - full;
        var mask = RowSimd.TailMask256(rem);
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
            var tail = rem != 0 ? RowSimd.LoadTail(xr + full, mask, ninf) : ninf;
            float mx = RowSimd.HMax(Vector256.MaxNative(Vector256.MaxNative(m0, m1), tail));
            var vm = Vector256.Create(mx);
            Vector256<float> s0 = default, s1 = default;
            for (i = 0; i + 2 * W <= n; i += 2 * W)
            {
                s0 += Exp256(Vector256.Load(xr + i) - vm);
                s1 += Exp256(Vector256.Load(xr + i + W) - vm);
            }
            if (i < full) s0 += Exp256(Vector256.Load(xr + i) - vm);
            if (rem != 0) s1 += Vector256.ConditionalSelect(mask, Exp256(tail - vm), default);
            var sh = Vector256.Create(mx + MathF.Log(Vector256.Sum(s0 + s1)));
            for (i = 0; i < full; i += W) Vector256.Store(Vector256.Load(xr + i) - sh, yr + i);
            if (rem != 0) RowSimd.StoreTail(yr + full, mask, tail - sh);
        }
    }

    private static void Backward256(ref RowArgs a, int part, int r0, int r1)
    {
        float* dx = a.P0, y = a.P1, dy = a.P2;
        int n = a.Cols;
        const int W = 8;
        int full = n & ~(W - 1), rem = n - full;
        var mask = RowSimd.TailMask256(rem);
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
                ty = RowSimd.LoadTail(yr + full, mask, default);
                tdy = RowSimd.LoadTail(dyr + full, mask, default);
                s1 = Vector256.FusedMultiplyAdd(ty, tdy, s1);
            }
            var dot = Vector256.Create(Vector256.Sum(s0 + s1));
            for (i = 0; i < full; i += W)
            {
                var yv = Vector256.Load(yr + i);
                Vector256.Store(yv * (Vector256.Load(dyr + i) - dot), dxr + i);
            }
            if (rem != 0) RowSimd.StoreTail(dxr + full, mask, ty * (tdy - dot));
        }
    }

    private static void LogBackward256(ref RowArgs a, int part, int r0, int r1)
    {
        float* dx = a.P0, y = a.P1, dy = a.P2;
        int n = a.Cols;
        const int W = 8;
        int full = n & ~(W - 1), rem = n - full;
        var mask = RowSimd.TailMask256(rem);
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
                ty = RowSimd.LoadTail(yr + full, mask, default);
                tdy = RowSimd.LoadTail(dyr + full, mask, default);
                s1 += tdy;
            }
            var ns = Vector256.Create(-Vector256.Sum(s0 + s1));
            for (i = 0; i < full; i += W)
                Vector256.Store(Vector256.FusedMultiplyAdd(Exp256(Vector256.Load(yr + i)), ns, Vector256.Load(dyr + i)), dxr + i);
            if (rem != 0) RowSimd.StoreTail(dxr + full, mask, Vector256.FusedMultiplyAdd(Exp256(ty), ns, tdy));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Exp256(Vector256<float> v) => Vector256.Exp(v);

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
