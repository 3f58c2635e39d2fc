using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MicroExpr.Kernels;

/// <summary>
/// The fast CPU BatchNorm (math and shapes in <see cref="BatchNormReference"/>): the work of channels [c0, c1), the
/// caller splits channels over threads (each channel is independent, so the result does not depend on the split).
/// Memory-bound, so the passes are the fewest the math allows:
/// <list type="bullet">
/// <item>training forward: one pass reading x for Σ(x − K) and Σ(x − K)² (K = the channel's first element, a shift
/// that keeps the one-pass variance free of cancellation), then one pass reading x and writing y = a·x + b
/// (a = γ·rstd, b = β − mean·a): x read twice, y written once;</item>
/// <item>eval forward: the second pass only;</item>
/// <item>backward: one pass reading dy and x for Σdy and Σdy·(x − mean), one pass writing dx = p·dy + q·x + r.</item>
/// </list>
/// Each row x[b, c, 0..S) is summed in float vectors (two accumulators), rows are added in double. The row loops are
/// written once, generic over the toolkit's <see cref="ISimd{TV}"/>, run at Vector512, Vector256 or Vector128
/// (<see cref="SimdIsaSelect"/>); the last S mod lanes elements of a row go through masked loads and stores.
/// </summary>
public static unsafe class BatchNormSimd
{
    /// <summary>Training forward of channels [c0, c1); gamma, beta may be null (1, 0).</summary>
    public static void TrainForward(float* y, float* mean, float* var, float* x, float* gamma, float* beta, int n, int c, int s, float eps,
        int c0, int c1)
    {
        switch (SimdIsaSelect.Current)
        {
            case SimdIsa.V512: TrainForward<Simd512, Vector512<float>>(y, mean, var, x, gamma, beta, n, c, s, eps, c0, c1); break;
            case SimdIsa.V256: TrainForward<Simd256, Vector256<float>>(y, mean, var, x, gamma, beta, n, c, s, eps, c0, c1); break;
            default: TrainForward<Simd128, Vector128<float>>(y, mean, var, x, gamma, beta, n, c, s, eps, c0, c1); break;
        }
    }

    /// <summary>y = (x − mean)·rstd·γ + β with given statistics, channels [c0, c1).</summary>
    public static void Apply(float* y, float* x, float* mean, float* var, float* gamma, float* beta, int n, int c, int s, float eps,
        int c0, int c1)
    {
        switch (SimdIsaSelect.Current)
        {
            case SimdIsa.V512: Apply<Simd512, Vector512<float>>(y, x, mean, var, gamma, beta, n, c, s, eps, c0, c1); break;
            case SimdIsa.V256: Apply<Simd256, Vector256<float>>(y, x, mean, var, gamma, beta, n, c, s, eps, c0, c1); break;
            default: Apply<Simd128, Vector128<float>>(y, x, mean, var, gamma, beta, n, c, s, eps, c0, c1); break;
        }
    }

    /// <summary>dx, dγ, dβ of channels [c0, c1) (overwritten); gamma may be null.</summary>
    public static void Backward(float* dx, float* dgamma, float* dbeta, float* dy, float* x, float* mean, float* var, float* gamma,
        int n, int c, int s, float eps, bool training, int c0, int c1)
    {
        switch (SimdIsaSelect.Current)
        {
            case SimdIsa.V512: Backward<Simd512, Vector512<float>>(dx, dgamma, dbeta, dy, x, mean, var, gamma, n, c, s, eps, training, c0, c1); break;
            case SimdIsa.V256: Backward<Simd256, Vector256<float>>(dx, dgamma, dbeta, dy, x, mean, var, gamma, n, c, s, eps, training, c0, c1); break;
            default: Backward<Simd128, Vector128<float>>(dx, dgamma, dbeta, dy, x, mean, var, gamma, n, c, s, eps, training, c0, c1); break;
        }
    }

    private static void TrainForward<TS, TV>(float* y, float* mean, float* var, float* x, float* gamma, float* beta, int n, int c, int s,
        float eps, int c0, int c1) where TS : struct, ISimd<TV> where TV : struct
    {
        double m = (double)n * s;
        for (int ch = c0; ch < c1; ch++)
        {
            float shift = x[ch * s];
            double sum = 0, sq = 0;
            for (int b = 0; b < n; b++)
            {
                Simd.ShiftedMoments<TS, TV>(x + ((long)b * c + ch) * s, s, shift, out float rs, out float rq);
                sum += rs;
                sq += rq;
            }
            double d = sum / m;
            mean[ch] = (float)(shift + d);
            var[ch] = (float)Math.Max(0.0, sq / m - d * d);
        }
        Apply<TS, TV>(y, x, mean, var, gamma, beta, n, c, s, eps, c0, c1);
    }

    private static void Apply<TS, TV>(float* y, float* x, float* mean, float* var, float* gamma, float* beta, int n, int c, int s, float eps,
        int c0, int c1) where TS : struct, ISimd<TV> where TV : struct
    {
        for (int ch = c0; ch < c1; ch++)
        {
            double rstd = 1.0 / Math.Sqrt((double)var[ch] + eps);
            double a = rstd * (gamma == null ? 1.0 : gamma[ch]);
            double bb = (beta == null ? 0.0 : beta[ch]) - mean[ch] * a;
            for (int b = 0; b < n; b++)
            {
                long off = ((long)b * c + ch) * s;
                RowAffine<TS, TV>(y + off, x + off, s, (float)a, (float)bb);
            }
        }
    }

    private static void Backward<TS, TV>(float* dx, float* dgamma, float* dbeta, float* dy, float* x, float* mean, float* var, float* gamma,
        int n, int c, int s, float eps, bool training, int c0, int c1) where TS : struct, ISimd<TV> where TV : struct
    {
        double m = (double)n * s;
        for (int ch = c0; ch < c1; ch++)
        {
            double rstd = 1.0 / Math.Sqrt((double)var[ch] + eps), mu = mean[ch];
            double sdy = 0, sdyx = 0;
            for (int b = 0; b < n; b++)
            {
                long off = ((long)b * c + ch) * s;
                RowDot<TS, TV>(dy + off, x + off, s, (float)mu, out float rs, out float rd);
                sdy += rs;
                sdyx += rd;
            }
            sdyx *= rstd;
            dbeta[ch] = (float)sdy;
            dgamma[ch] = (float)sdyx;
            double gr = (gamma == null ? 1.0 : gamma[ch]) * rstd;
            // training: dx = gr·dy − gr·rstd·(dγ/M)·x + gr·(rstd·mean·dγ/M − dβ/M); eval: dx = gr·dy
            for (int b = 0; b < n; b++)
            {
                long off = ((long)b * c + ch) * s;
                if (training)
                    RowAffine2<TS, TV>(dx + off, dy + off, x + off, s, (float)gr, (float)(-gr * rstd * sdyx / m),
                        (float)(gr * (rstd * mu * sdyx / m - sdy / m)));
                else
                    RowAffine<TS, TV>(dx + off, dy + off, s, (float)gr, 0f);
            }
        }
    }

    /// <summary>Σ dy and Σ dy·(x − mu) over one row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RowDot<TS, TV>(float* dy, float* x, int len, float mu, out float sum, out float dot) where TS : struct, ISimd<TV> where TV : struct
    {
        int i = 0, w = TS.Count;
        var mv = TS.Splat(mu);
        TV a0 = default, q0 = default;
        for (; i + w <= len; i += w)
        {
            var g = TS.Load(dy + i);
            a0 = TS.Add(a0, g);
            q0 = TS.Fma(g, TS.Sub(TS.Load(x + i), mv), q0);
        }
        if (i < len)
        {
            var mask = TS.FirstMask(len - i);
            var g = TS.LoadMasked(dy + i, mask, default); // lanes past the row: dy = 0
            a0 = TS.Add(a0, g);
            q0 = TS.Fma(g, TS.Sub(TS.LoadMasked(x + i, mask, mv), mv), q0);
        }
        sum = TS.HSum(a0);
        dot = TS.HSum(q0);
    }

    /// <summary>dst = a·u + r over one row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RowAffine<TS, TV>(float* dst, float* u, int len, float a, float r) where TS : struct, ISimd<TV> where TV : struct
    {
        int i = 0, w = TS.Count;
        TV av = TS.Splat(a), rv = TS.Splat(r);
        for (; i + w <= len; i += w) TS.Store(dst + i, TS.Fma(TS.Load(u + i), av, rv));
        if (i < len)
        {
            var mask = TS.FirstMask(len - i);
            TS.StoreMasked(dst + i, mask, TS.Fma(TS.LoadMasked(u + i, mask, default), av, rv));
        }
    }

    /// <summary>dst = a·u + q·v + r over one row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RowAffine2<TS, TV>(float* dst, float* u, float* v, int len, float a, float q, float r) where TS : struct, ISimd<TV> where TV : struct
    {
        int i = 0, w = TS.Count;
        TV av = TS.Splat(a), qv = TS.Splat(q), rv = TS.Splat(r);
        for (; i + w <= len; i += w) TS.Store(dst + i, TS.Fma(TS.Load(u + i), av, TS.Fma(TS.Load(v + i), qv, rv)));
        if (i < len)
        {
            var mask = TS.FirstMask(len - i);
            TS.StoreMasked(dst + i, mask, TS.Fma(TS.LoadMasked(u + i, mask, default), av, TS.Fma(TS.LoadMasked(v + i, mask, default), qv, rv)));
        }
    }
}
