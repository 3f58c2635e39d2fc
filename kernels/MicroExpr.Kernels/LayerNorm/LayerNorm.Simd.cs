using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

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
/// vector accumulators — so a row with a large mean (1000 + noise) loses no precision to cancellation
/// (var = Σd²/C − (Σd/C)², mean = x[r,0] + Σd/C); then one normalise pass y = ((x − x[r,0]) − Σd/C)·rstd·gamma + beta
/// while the row is still in L1 (x − x[r,0] is exact, so y stays accurate even where the float mean is coarse). Backward: one pass per row forms Σg and Σg·x̂ (x̂ recomputed from x, mean, rstd) and adds
/// dy·x̂ and dy into the part's dgamma/dbeta partials, then a second pass writes dx. Tails (C not a multiple of the
/// vector width) use the toolkit's masked loads and stores, so every C ≥ 1 is handled and x may alias y (dy may alias dx).
/// Lanes: each kernel is written once, generic over the toolkit's <see cref="ISimd{TV}"/>, and run at Vector512,
/// Vector256 or Vector128 (<see cref="SimdIsaSelect"/>). Rows are split into fixed contiguous parts (one per
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
            SimdIsa.V512 => &Forward<Simd512, Vector512<float>>,
            SimdIsa.V256 => &Forward<Simd256, Vector256<float>>,
            _ => &Forward<Simd128, Vector128<float>>,
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
            SimdIsa.V512 => &Backward<Simd512, Vector512<float>>,
            SimdIsa.V256 => &Backward<Simd256, Vector256<float>>,
            _ => &Backward<Simd128, Vector128<float>>,
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

    private static void Forward<TS, TV>(ref RowArgs a, int part, int r0, int r1) where TS : struct, ISimd<TV> where TV : struct
    {
        float* y = a.P0, mean = a.P1, rstd = a.P2, x = a.P3, gamma = a.P4, beta = a.P5;
        int c = a.Cols, w = TS.Count;
        float eps = a.F0, invC = 1f / c;
        int full = c & ~(w - 1), rem = c - full;
        var mask = TS.FirstMask(rem);
        for (int r = r0; r < r1; r++)
        {
            float* xr = x + (long)r * c, yr = y + (long)r * c;
            var k = TS.Splat(xr[0]);
            Simd.ShiftedMoments<TS, TV>(xr, c, xr[0], out float sd, out float sq);
            float m1 = sd * invC;
            float var = MathF.Max(sq * invC - m1 * m1, 0f);
            float mu = xr[0] + m1, rs = 1f / MathF.Sqrt(var + eps);
            mean[r] = mu;
            rstd[r] = rs;
            // x − mean as (x − k) − m1: x − k is exact for a large-mean row, and m1 is small, so x̂ stays accurate
            // even where the float mean itself is coarse (mean 10⁴ has an ulp of 10⁻³).
            var vm = TS.Splat(m1);
            var vr = TS.Splat(rs);
            for (int i = 0; i < full; i += w)
            {
                var xh = TS.Mul(TS.Sub(TS.Sub(TS.Load(xr + i), k), vm), vr);
                TS.Store(yr + i, TS.Fma(xh, TS.Load(gamma + i), TS.Load(beta + i)));
            }
            if (rem != 0)
            {
                var xh = TS.Mul(TS.Sub(TS.Sub(TS.LoadMasked(xr + full, mask, k), k), vm), vr);
                var g = TS.LoadMasked(gamma + full, mask, default);
                var b = TS.LoadMasked(beta + full, mask, default);
                TS.StoreMasked(yr + full, mask, TS.Fma(xh, g, b));
            }
        }
    }

    private static void Backward<TS, TV>(ref RowArgs a, int part, int r0, int r1) where TS : struct, ISimd<TV> where TV : struct
    {
        float* dx = a.P0, dy = a.P3, x = a.P4, mean = a.P5, rstd = a.P6, gamma = a.P7;
        int c = a.Cols, w = TS.Count;
        PartAccumulators(ref a, part, out float* dg, out float* db);
        float invC = 1f / c;
        int full = c & ~(w - 1), rem = c - full;
        var mask = TS.FirstMask(rem);
        for (int r = r0; r < r1; r++)
        {
            float* xr = x + (long)r * c, dyr = dy + (long)r * c, dxr = dx + (long)r * c;
            var vm = TS.Splat(mean[r]);
            var vr = TS.Splat(rstd[r]);
            TV s0 = default, s1 = default, t0 = default, t1 = default;
            int i = 0;
            for (; i + 2 * w <= c; i += 2 * w)
            {
                var xh0 = TS.Mul(TS.Sub(TS.Load(xr + i), vm), vr);
                var xh1 = TS.Mul(TS.Sub(TS.Load(xr + i + w), vm), vr);
                var d0 = TS.Load(dyr + i);
                var d1 = TS.Load(dyr + i + w);
                var g0 = TS.Mul(d0, TS.Load(gamma + i));
                var g1 = TS.Mul(d1, TS.Load(gamma + i + w));
                s0 = TS.Add(s0, g0);
                s1 = TS.Add(s1, g1);
                t0 = TS.Fma(g0, xh0, t0);
                t1 = TS.Fma(g1, xh1, t1);
                TS.Store(dg + i, TS.Fma(d0, xh0, TS.Load(dg + i)));
                TS.Store(dg + i + w, TS.Fma(d1, xh1, TS.Load(dg + i + w)));
                TS.Store(db + i, TS.Add(TS.Load(db + i), d0));
                TS.Store(db + i + w, TS.Add(TS.Load(db + i + w), d1));
            }
            if (i < full)
            {
                var xh0 = TS.Mul(TS.Sub(TS.Load(xr + i), vm), vr);
                var d0 = TS.Load(dyr + i);
                var g0 = TS.Mul(d0, TS.Load(gamma + i));
                s0 = TS.Add(s0, g0);
                t0 = TS.Fma(g0, xh0, t0);
                TS.Store(dg + i, TS.Fma(d0, xh0, TS.Load(dg + i)));
                TS.Store(db + i, TS.Add(TS.Load(db + i), d0));
            }
            TV tailX = default, tailDy = default, tailG = default;
            if (rem != 0)
            {
                // The tail is read once, before any dx store, so that dx may alias dy.
                tailX = TS.LoadMasked(xr + full, mask, vm); // masked lanes: x̂ = 0
                tailDy = TS.LoadMasked(dyr + full, mask, default);
                tailG = TS.LoadMasked(gamma + full, mask, default);
                var xh1 = TS.Mul(TS.Sub(tailX, vm), vr);
                var g1 = TS.Mul(tailDy, tailG);
                s1 = TS.Add(s1, g1);
                t1 = TS.Fma(g1, xh1, t1);
                TS.StoreMasked(dg + full, mask, TS.Fma(tailDy, xh1, TS.LoadMasked(dg + full, mask, default)));
                TS.StoreMasked(db + full, mask, TS.Add(TS.LoadMasked(db + full, mask, default), tailDy));
            }
            float rs = rstd[r];
            // dx = rstd·g + va + x̂·vb with va = −rstd·mean(g), vb = −rstd·mean(g·x̂)
            var va = TS.Splat(-TS.HSum(TS.Add(s0, s1)) * invC * rs);
            var vb = TS.Splat(-TS.HSum(TS.Add(t0, t1)) * invC * rs);
            for (i = 0; i < full; i += w)
            {
                var xh = TS.Mul(TS.Sub(TS.Load(xr + i), vm), vr);
                var g = TS.Mul(TS.Load(dyr + i), TS.Load(gamma + i));
                TS.Store(dxr + i, TS.Fma(xh, vb, TS.Fma(g, vr, va)));
            }
            if (rem != 0)
            {
                var xh = TS.Mul(TS.Sub(tailX, vm), vr);
                TS.StoreMasked(dxr + full, mask, TS.Fma(xh, vb, TS.Fma(TS.Mul(tailDy, tailG), vr, va)));
            }
        }
    }
}
