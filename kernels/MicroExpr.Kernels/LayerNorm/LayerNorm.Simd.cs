using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MicroExpr.Kernels;

/// <summary>
/// Fused LayerNorm over the last axis, SIMD.
/// <para>
/// Math, for each row r of x[rows, C]: mean_r = Σ_c x / C, var_r = Σ_c (x − mean_r)² / C (biased),
/// rstd_r = 1/√(var_r + eps), x̂ = (x − mean_r)·rstd_r, y = x̂·gamma + beta.
/// Backward with g = dy·gamma: dx = rstd·(g − mean_c(g) − x̂·mean_c(g·x̂)), dgamma = Σ_rows dy·x̂, dbeta = Σ_rows dy.
/// </para>
/// <para>
/// Shapes: x, y, dy, dx [rows, C] row-major and contiguous; gamma, beta, dgamma, dbeta [C]; mean, rstd [rows].
/// </para>
/// <para>
/// Strategy. Forward: one statistics pass per row with shifted sums — d = x − x[r,0], Σd and Σd² in two pairs of
/// Vector512 accumulators — so a row with a large mean (1000 + noise) loses no precision to cancellation
/// (var = Σd²/C − (Σd/C)², mean = x[r,0] + Σd/C); then one normalise pass y = ((x − x[r,0]) − Σd/C)·rstd·gamma + beta
/// while the row is still in L1 (x − x[r,0] is exact, so y stays accurate even where the float mean is coarse). Backward: one pass per row forms Σg and Σg·x̂ (x̂ recomputed from x, mean, rstd) and adds
/// dy·x̂ and dy into the part's dgamma/dbeta partials, then a second pass writes dx. Tails (C not a multiple of the
/// vector width) use AVX-512 / AVX masked loads and stores, so every C ≥ 1 is handled and x may alias y (dy may alias dx).
/// Runtime dispatch: Vector512 when accelerated, else Vector256, else scalar. Rows are split into fixed contiguous parts (one per
/// thread, taken by the caller and <c>threads</c> − 1 pool workers, see <see cref="RowSplit"/>; inline when
/// threads ≤ 1 or rows·C &lt; 32K); the backward's per-part dgamma/dbeta partials (part 0 writes the outputs, the others
/// caller-thread scratch) are summed in part order at the end, so results are deterministic for a given thread count
/// whichever thread ran which part. No allocation on the hot path.
/// </para>
/// </summary>
public static unsafe class LayerNormSimd
{
    /// <summary>y = (x − mean)·rstd·gamma + beta per row; also writes mean and rstd = 1/√(var + eps) for each row.</summary>
    public static void Forward(float* y, float* mean, float* rstd, float* x, float* gamma, float* beta, int rows, int c,
        float eps, int threads)
    {
        if (rows <= 0 || c <= 0) return;
        var a = new RowArgs { P0 = y, P1 = mean, P2 = rstd, P3 = x, P4 = gamma, P5 = beta, Rows = rows, Cols = c, F0 = eps };
        delegate*<ref RowArgs, int, int, int, void> fn = SimdIsaSelect.Current switch
        {
            SimdIsa.V512 => &Forward512,
            SimdIsa.V256 => &Forward256,
            _ => &ForwardScalar,
        };
        int t = RowSplit.Threads(rows, c, threads);
        RowSplit.Run(fn, ref a, RowSplit.Parts(rows, t), t);
    }

    /// <summary>
    /// dx [rows, C], dgamma [C] and dbeta [C] are overwritten (the caller accumulates). x̂ is recomputed from x, mean, rstd.
    /// </summary>
    public static void Backward(float* dx, float* dgamma, float* dbeta, float* dy, float* x, float* mean, float* rstd,
        float* gamma, int rows, int c, int threads)
    {
        if (c <= 0) return;
        if (rows <= 0)
        {
            new Span<float>(dgamma, c).Clear();
            new Span<float>(dbeta, c).Clear();
            return;
        }
        var a = new RowArgs
        {
            P0 = dx, P1 = dgamma, P2 = dbeta, P3 = dy, P4 = x, P5 = mean, P6 = rstd, P7 = gamma, Rows = rows, Cols = c,
        };
        int t = RowSplit.Threads(rows, c, threads);
        int parts = RowSplit.Parts(rows, t);
        if (parts > 1)
        {
            // Parts 1..n-1 accumulate [dgamma | dbeta] into scratch; stride rounded to 64 bytes to keep parts on own lines.
            int stride = (2 * c + 15) & ~15;
            a.Scratch = RowSplit.Scratch(stride * (parts - 1));
            a.ScratchStride = stride;
        }
        delegate*<ref RowArgs, int, int, int, void> fn = SimdIsaSelect.Current switch
        {
            SimdIsa.V512 => &Backward512,
            SimdIsa.V256 => &Backward256,
            _ => &BackwardScalar,
        };
        RowSplit.Run(fn, ref a, parts, t);
        for (int p = 1; p < parts; p++)
        {
            float* dg = a.Scratch + (long)(p - 1) * a.ScratchStride, db = dg + c;
            AddInto(dgamma, dg, c);
            AddInto(dbeta, db, c);
        }
    }

    private static void AddInto(float* acc, float* src, int n)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; i + 8 <= n; i += 8)
                Vector256.Store(Vector256.Load(acc + i) + Vector256.Load(src + i), acc + i);
        for (; i < n; i++) acc[i] += src[i];
    }

    /// <summary>Part p's dgamma/dbeta accumulators: the outputs themselves for part 0, scratch otherwise.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PartAccumulators(ref RowArgs a, int part, out float* dg, out float* db)
    {
        if (part == 0)
        {
            dg = a.P1;
            db = a.P2;
        }
        else
        {
            dg = a.Scratch + (long)(part - 1) * a.ScratchStride;
            db = dg + a.Cols;
        }
        new Span<float>(dg, a.Cols).Clear();
        new Span<float>(db, a.Cols).Clear();
    }

    // ---------------------------------------------------------------- Vector512

    private static void Forward512(ref RowArgs a, int part, int r0, int r1)
    {
        float* y = a.P0, mean = a.P1, rstd = a.P2, x = a.P3, gamma = a.P4, beta = a.P5;
        int c = a.Cols;
        float eps = a.F0, invC = 1f / c;
        const int W = 16;
        int full = c & ~(W - 1), rem = c - full;
        var mask = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(rem)).AsSingle();
        for (int r = r0; r < r1; r++)
        {
            float* xr = x + (long)r * c, yr = y + (long)r * c;
            var k = Vector512.Create(xr[0]);
            Vector512<float> s0 = default, s1 = default, q0 = default, q1 = default;
            int i = 0;
            for (; i + 2 * W <= c; i += 2 * W)
            {
                var d0 = Vector512.Load(xr + i) - k;
                var d1 = Vector512.Load(xr + i + W) - k;
                s0 += d0;
                s1 += d1;
                q0 = Vector512.FusedMultiplyAdd(d0, d0, q0);
                q1 = Vector512.FusedMultiplyAdd(d1, d1, q1);
            }
            if (i < full)
            {
                var d0 = Vector512.Load(xr + i) - k;
                s0 += d0;
                q0 = Vector512.FusedMultiplyAdd(d0, d0, q0);
            }
            if (rem != 0)
            {
                var d1 = Avx512F.MaskLoad(xr + full, mask, k) - k; // masked lanes read k: d = 0
                s1 += d1;
                q1 = Vector512.FusedMultiplyAdd(d1, d1, q1);
            }
            float m1 = Simd.HSum(s0 + s1) * invC;
            float var = MathF.Max(Simd.HSum(q0 + q1) * invC - m1 * m1, 0f);
            float mu = xr[0] + m1, rs = 1f / MathF.Sqrt(var + eps);
            mean[r] = mu;
            rstd[r] = rs;
            // x − mean as (x − k) − m1: x − k is exact for a large-mean row, and m1 is small, so x̂ stays accurate
            // even where the float mean itself is coarse (mean 10⁴ has an ulp of 10⁻³).
            var vm = Vector512.Create(m1);
            var vr = Vector512.Create(rs);
            for (i = 0; i < full; i += W)
            {
                var xh = (Vector512.Load(xr + i) - k - vm) * vr;
                Vector512.Store(Vector512.FusedMultiplyAdd(xh, Vector512.Load(gamma + i), Vector512.Load(beta + i)), yr + i);
            }
            if (rem != 0)
            {
                var xh = (Avx512F.MaskLoad(xr + full, mask, k) - k - vm) * vr;
                var g = Avx512F.MaskLoad(gamma + full, mask, default);
                var b = Avx512F.MaskLoad(beta + full, mask, default);
                Avx512F.MaskStore(yr + full, mask, Vector512.FusedMultiplyAdd(xh, g, b));
            }
        }
    }

    private static void Backward512(ref RowArgs a, int part, int r0, int r1)
    {
        float* dx = a.P0, dy = a.P3, x = a.P4, mean = a.P5, rstd = a.P6, gamma = a.P7;
        int c = a.Cols;
        PartAccumulators(ref a, part, out float* dg, out float* db);
        float invC = 1f / c;
        const int W = 16;
        int full = c & ~(W - 1), rem = c - full;
        var mask = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(rem)).AsSingle();
        for (int r = r0; r < r1; r++)
        {
            float* xr = x + (long)r * c, dyr = dy + (long)r * c, dxr = dx + (long)r * c;
            var vm = Vector512.Create(mean[r]);
            var vr = Vector512.Create(rstd[r]);
            Vector512<float> s0 = default, s1 = default, t0 = default, t1 = default;
            int i = 0;
            for (; i + 2 * W <= c; i += 2 * W)
            {
                var xh0 = (Vector512.Load(xr + i) - vm) * vr;
                var xh1 = (Vector512.Load(xr + i + W) - vm) * vr;
                var d0 = Vector512.Load(dyr + i);
                var d1 = Vector512.Load(dyr + i + W);
                var g0 = d0 * Vector512.Load(gamma + i);
                var g1 = d1 * Vector512.Load(gamma + i + W);
                s0 += g0;
                s1 += g1;
                t0 = Vector512.FusedMultiplyAdd(g0, xh0, t0);
                t1 = Vector512.FusedMultiplyAdd(g1, xh1, t1);
                Vector512.Store(Vector512.FusedMultiplyAdd(d0, xh0, Vector512.Load(dg + i)), dg + i);
                Vector512.Store(Vector512.FusedMultiplyAdd(d1, xh1, Vector512.Load(dg + i + W)), dg + i + W);
                Vector512.Store(Vector512.Load(db + i) + d0, db + i);
                Vector512.Store(Vector512.Load(db + i + W) + d1, db + i + W);
            }
            if (i < full)
            {
                var xh0 = (Vector512.Load(xr + i) - vm) * vr;
                var d0 = Vector512.Load(dyr + i);
                var g0 = d0 * Vector512.Load(gamma + i);
                s0 += g0;
                t0 = Vector512.FusedMultiplyAdd(g0, xh0, t0);
                Vector512.Store(Vector512.FusedMultiplyAdd(d0, xh0, Vector512.Load(dg + i)), dg + i);
                Vector512.Store(Vector512.Load(db + i) + d0, db + i);
            }
            if (rem != 0)
            {
                var xh1 = (Avx512F.MaskLoad(xr + full, mask, vm) - vm) * vr; // masked lanes: x̂ = 0
                var d1 = Avx512F.MaskLoad(dyr + full, mask, default);
                var g1 = d1 * Avx512F.MaskLoad(gamma + full, mask, default);
                s1 += g1;
                t1 = Vector512.FusedMultiplyAdd(g1, xh1, t1);
                Avx512F.MaskStore(dg + full, mask, Vector512.FusedMultiplyAdd(d1, xh1, Avx512F.MaskLoad(dg + full, mask, default)));
                Avx512F.MaskStore(db + full, mask, Avx512F.MaskLoad(db + full, mask, default) + d1);
            }
            float rs = rstd[r];
            // dx = rstd·g + va + x̂·vb with va = −rstd·mean(g), vb = −rstd·mean(g·x̂)
            var va = Vector512.Create(-Simd.HSum(s0 + s1) * invC * rs);
            var vb = Vector512.Create(-Simd.HSum(t0 + t1) * invC * rs);
            Vector512<float> tailX = default, tailDy = default, tailG = default;
            if (rem != 0)
            {
                // Read the tail before any dx store so that dx may alias dy.
                tailX = Avx512F.MaskLoad(xr + full, mask, vm);
                tailDy = Avx512F.MaskLoad(dyr + full, mask, default);
                tailG = Avx512F.MaskLoad(gamma + full, mask, default);
            }
            for (i = 0; i < full; i += W)
            {
                var xh = (Vector512.Load(xr + i) - vm) * vr;
                var g = Vector512.Load(dyr + i) * Vector512.Load(gamma + i);
                Vector512.Store(Vector512.FusedMultiplyAdd(xh, vb, Vector512.FusedMultiplyAdd(g, vr, va)), dxr + i);
            }
            if (rem != 0)
            {
                var xh = (tailX - vm) * vr;
                var g = tailDy * tailG;
                Avx512F.MaskStore(dxr + full, mask, Vector512.FusedMultiplyAdd(xh, vb, Vector512.FusedMultiplyAdd(g, vr, va)));
            }
        }
    }

    // ---------------------------------------------------------------- Vector256

    private static void Forward256(ref RowArgs a, int part, int r0, int r1)
    {
        float* y = a.P0, mean = a.P1, rstd = a.P2, x = a.P3, gamma = a.P4, beta = a.P5;
        int c = a.Cols;
        float eps = a.F0, invC = 1f / c;
        const int W = 8;
        int full = c & ~(W - 1), rem = c - full;
        var mask = Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(rem)).AsSingle();
        for (int r = r0; r < r1; r++)
        {
            float* xr = x + (long)r * c, yr = y + (long)r * c;
            var k = Vector256.Create(xr[0]);
            Vector256<float> s0 = default, s1 = default, q0 = default, q1 = default;
            int i = 0;
            for (; i + 2 * W <= c; i += 2 * W)
            {
                var d0 = Vector256.Load(xr + i) - k;
                var d1 = Vector256.Load(xr + i + W) - k;
                s0 += d0;
                s1 += d1;
                q0 = Vector256.FusedMultiplyAdd(d0, d0, q0);
                q1 = Vector256.FusedMultiplyAdd(d1, d1, q1);
            }
            if (i < full)
            {
                var d0 = Vector256.Load(xr + i) - k;
                s0 += d0;
                q0 = Vector256.FusedMultiplyAdd(d0, d0, q0);
            }
            if (rem != 0)
            {
                var d1 = Vector256.ConditionalSelect(mask, Avx.MaskLoad(xr + full, mask), k) - k;
                s1 += d1;
                q1 = Vector256.FusedMultiplyAdd(d1, d1, q1);
            }
            float m1 = Simd.HSum(s0 + s1) * invC;
            float var = MathF.Max(Simd.HSum(q0 + q1) * invC - m1 * m1, 0f);
            float mu = xr[0] + m1, rs = 1f / MathF.Sqrt(var + eps);
            mean[r] = mu;
            rstd[r] = rs;
            // x − mean as (x − k) − m1: x − k is exact for a large-mean row, and m1 is small, so x̂ stays accurate
            // even where the float mean itself is coarse (mean 10⁴ has an ulp of 10⁻³).
            var vm = Vector256.Create(m1);
            var vr = Vector256.Create(rs);
            for (i = 0; i < full; i += W)
            {
                var xh = (Vector256.Load(xr + i) - k - vm) * vr;
                Vector256.Store(Vector256.FusedMultiplyAdd(xh, Vector256.Load(gamma + i), Vector256.Load(beta + i)), yr + i);
            }
            if (rem != 0)
            {
                var xh = (Avx.MaskLoad(xr + full, mask) - k - vm) * vr;
                var g = Avx.MaskLoad(gamma + full, mask);
                var b = Avx.MaskLoad(beta + full, mask);
                Avx.MaskStore(yr + full, mask, Vector256.FusedMultiplyAdd(xh, g, b));
            }
        }
    }

    private static void Backward256(ref RowArgs a, int part, int r0, int r1)
    {
        float* dx = a.P0, dy = a.P3, x = a.P4, mean = a.P5, rstd = a.P6, gamma = a.P7;
        int c = a.Cols;
        PartAccumulators(ref a, part, out float* dg, out float* db);
        float invC = 1f / c;
        const int W = 8;
        int full = c & ~(W - 1), rem = c - full;
        var mask = Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(rem)).AsSingle();
        for (int r = r0; r < r1; r++)
        {
            float* xr = x + (long)r * c, dyr = dy + (long)r * c, dxr = dx + (long)r * c;
            var vm = Vector256.Create(mean[r]);
            var vr = Vector256.Create(rstd[r]);
            Vector256<float> s0 = default, s1 = default, t0 = default, t1 = default;
            int i = 0;
            for (; i + 2 * W <= c; i += 2 * W)
            {
                var xh0 = (Vector256.Load(xr + i) - vm) * vr;
                var xh1 = (Vector256.Load(xr + i + W) - vm) * vr;
                var d0 = Vector256.Load(dyr + i);
                var d1 = Vector256.Load(dyr + i + W);
                var g0 = d0 * Vector256.Load(gamma + i);
                var g1 = d1 * Vector256.Load(gamma + i + W);
                s0 += g0;
                s1 += g1;
                t0 = Vector256.FusedMultiplyAdd(g0, xh0, t0);
                t1 = Vector256.FusedMultiplyAdd(g1, xh1, t1);
                Vector256.Store(Vector256.FusedMultiplyAdd(d0, xh0, Vector256.Load(dg + i)), dg + i);
                Vector256.Store(Vector256.FusedMultiplyAdd(d1, xh1, Vector256.Load(dg + i + W)), dg + i + W);
                Vector256.Store(Vector256.Load(db + i) + d0, db + i);
                Vector256.Store(Vector256.Load(db + i + W) + d1, db + i + W);
            }
            if (i < full)
            {
                var xh0 = (Vector256.Load(xr + i) - vm) * vr;
                var d0 = Vector256.Load(dyr + i);
                var g0 = d0 * Vector256.Load(gamma + i);
                s0 += g0;
                t0 = Vector256.FusedMultiplyAdd(g0, xh0, t0);
                Vector256.Store(Vector256.FusedMultiplyAdd(d0, xh0, Vector256.Load(dg + i)), dg + i);
                Vector256.Store(Vector256.Load(db + i) + d0, db + i);
            }
            if (rem != 0)
            {
                var xh1 = (Vector256.ConditionalSelect(mask, Avx.MaskLoad(xr + full, mask), vm) - vm) * vr;
                var d1 = Avx.MaskLoad(dyr + full, mask);
                var g1 = d1 * Avx.MaskLoad(gamma + full, mask);
                s1 += g1;
                t1 = Vector256.FusedMultiplyAdd(g1, xh1, t1);
                Avx.MaskStore(dg + full, mask, Vector256.FusedMultiplyAdd(d1, xh1, Avx.MaskLoad(dg + full, mask)));
                Avx.MaskStore(db + full, mask, Avx.MaskLoad(db + full, mask) + d1);
            }
            float rs = rstd[r];
            var va = Vector256.Create(-Simd.HSum(s0 + s1) * invC * rs);
            var vb = Vector256.Create(-Simd.HSum(t0 + t1) * invC * rs);
            Vector256<float> tailX = default, tailDy = default, tailG = default;
            if (rem != 0)
            {
                tailX = Avx.MaskLoad(xr + full, mask);
                tailDy = Avx.MaskLoad(dyr + full, mask);
                tailG = Avx.MaskLoad(gamma + full, mask);
            }
            for (i = 0; i < full; i += W)
            {
                var xh = (Vector256.Load(xr + i) - vm) * vr;
                var g = Vector256.Load(dyr + i) * Vector256.Load(gamma + i);
                Vector256.Store(Vector256.FusedMultiplyAdd(xh, vb, Vector256.FusedMultiplyAdd(g, vr, va)), dxr + i);
            }
            if (rem != 0)
            {
                var xh = (tailX - vm) * vr;
                var g = tailDy * tailG;
                Avx.MaskStore(dxr + full, mask, Vector256.FusedMultiplyAdd(xh, vb, Vector256.FusedMultiplyAdd(g, vr, va)));
            }
        }
    }

    // ---------------------------------------------------------------- scalar

    private static void ForwardScalar(ref RowArgs a, int part, int r0, int r1)
    {
        float* y = a.P0, mean = a.P1, rstd = a.P2, x = a.P3, gamma = a.P4, beta = a.P5;
        int c = a.Cols;
        float eps = a.F0, invC = 1f / c;
        for (int r = r0; r < r1; r++)
        {
            float* xr = x + (long)r * c, yr = y + (long)r * c;
            float k = xr[0], s = 0, q = 0;
            for (int i = 0; i < c; i++)
            {
                float d = xr[i] - k;
                s += d;
                q += d * d;
            }
            float m1 = s * invC;
            float var = MathF.Max(q * invC - m1 * m1, 0f);
            float mu = k + m1, rs = 1f / MathF.Sqrt(var + eps);
            mean[r] = mu;
            rstd[r] = rs;
            for (int i = 0; i < c; i++) yr[i] = (xr[i] - k - m1) * rs * gamma[i] + beta[i];
        }
    }

    private static void BackwardScalar(ref RowArgs a, int part, int r0, int r1)
    {
        float* dx = a.P0, dy = a.P3, x = a.P4, mean = a.P5, rstd = a.P6, gamma = a.P7;
        int c = a.Cols;
        PartAccumulators(ref a, part, out float* dg, out float* db);
        float invC = 1f / c;
        for (int r = r0; r < r1; r++)
        {
            float* xr = x + (long)r * c, dyr = dy + (long)r * c, dxr = dx + (long)r * c;
            float mu = mean[r], rs = rstd[r], s = 0, t = 0;
            for (int i = 0; i < c; i++)
            {
                float xh = (xr[i] - mu) * rs, d = dyr[i], g = d * gamma[i];
                s += g;
                t += g * xh;
                dg[i] += d * xh;
                db[i] += d;
            }
            float ma = s * invC, mb = t * invC;
            for (int i = 0; i < c; i++)
            {
                float xh = (xr[i] - mu) * rs, g = dyr[i] * gamma[i];
                dxr[i] = rs * (g - ma - xh * mb);
            }
        }
    }
}
