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
/// Each row x[b, c, 0..S) is summed in float vectors (16 lanes, two accumulators), rows are added in double.
/// Vector512 where the CPU has it, else Vector256, then a scalar tail.
/// </summary>
public static unsafe class BatchNormSimd
{
    /// <summary>Training forward of channels [c0, c1); gamma, beta may be null (1, 0).</summary>
    public static void TrainForward(float* y, float* mean, float* var, float* x, float* gamma, float* beta, int n, int c, int s, float eps,
        int c0, int c1)
    {
        double m = (double)n * s;
        for (int ch = c0; ch < c1; ch++)
        {
            float shift = x[ch * s];
            double sum = 0, sq = 0;
            for (int b = 0; b < n; b++)
            {
                RowMoments(x + ((long)b * c + ch) * s, s, shift, out float rs, out float rq);
                sum += rs;
                sq += rq;
            }
            double d = sum / m;
            mean[ch] = (float)(shift + d);
            var[ch] = (float)Math.Max(0.0, sq / m - d * d);
        }
        Apply(y, x, mean, var, gamma, beta, n, c, s, eps, c0, c1);
    }

    /// <summary>y = (x − mean)·rstd·γ + β with given statistics, channels [c0, c1).</summary>
    public static void Apply(float* y, float* x, float* mean, float* var, float* gamma, float* beta, int n, int c, int s, float eps,
        int c0, int c1)
    {
        for (int ch = c0; ch < c1; ch++)
        {
            double rstd = 1.0 / Math.Sqrt((double)var[ch] + eps);
            double a = rstd * (gamma == null ? 1.0 : gamma[ch]);
            double bb = (beta == null ? 0.0 : beta[ch]) - mean[ch] * a;
            for (int b = 0; b < n; b++)
            {
                long off = ((long)b * c + ch) * s;
                RowAffine(y + off, x + off, s, (float)a, 0f, null, (float)bb);
            }
        }
    }

    /// <summary>dx, dγ, dβ of channels [c0, c1) (overwritten); gamma may be null.</summary>
    public static void Backward(float* dx, float* dgamma, float* dbeta, float* dy, float* x, float* mean, float* var, float* gamma,
        int n, int c, int s, float eps, bool training, int c0, int c1)
    {
        double m = (double)n * s;
        for (int ch = c0; ch < c1; ch++)
        {
            double rstd = 1.0 / Math.Sqrt((double)var[ch] + eps), mu = mean[ch];
            double sdy = 0, sdyx = 0;
            for (int b = 0; b < n; b++)
            {
                long off = ((long)b * c + ch) * s;
                RowDot(dy + off, x + off, s, (float)mu, out float rs, out float rd);
                sdy += rs;
                sdyx += rd;
            }
            sdyx *= rstd;
            dbeta[ch] = (float)sdy;
            dgamma[ch] = (float)sdyx;
            double gr = (gamma == null ? 1.0 : gamma[ch]) * rstd;
            // training: dx = gr·dy − gr·rstd·(dγ/M)·x + gr·(rstd·mean·dγ/M − dβ/M); eval: dx = gr·dy
            double q = training ? -gr * rstd * sdyx / m : 0.0;
            double r = training ? gr * (rstd * mu * sdyx / m - sdy / m) : 0.0;
            for (int b = 0; b < n; b++)
            {
                long off = ((long)b * c + ch) * s;
                RowAffine(dx + off, dy + off, s, (float)gr, (float)q, x + off, (float)r);
            }
        }
    }

    /// <summary>Σ (x − k) and Σ (x − k)² over one row of len floats.</summary>
    private static void RowMoments(float* x, int len, float k, out float sum, out float sq)
    {
        int i = 0;
        float s1 = 0f, s2 = 0f;
        if (Vector512.IsHardwareAccelerated && len >= 16)
        {
            var kv = Vector512.Create(k);
            Vector512<float> a0 = default, a1 = default, q0 = default, q1 = default;
            for (; i + 32 <= len; i += 32)
            {
                var d0 = Vector512.Load(x + i) - kv;
                var d1 = Vector512.Load(x + i + 16) - kv;
                a0 += d0; a1 += d1;
                q0 = Vector512.FusedMultiplyAdd(d0, d0, q0);
                q1 = Vector512.FusedMultiplyAdd(d1, d1, q1);
            }
            for (; i + 16 <= len; i += 16)
            {
                var d0 = Vector512.Load(x + i) - kv;
                a0 += d0;
                q0 = Vector512.FusedMultiplyAdd(d0, d0, q0);
            }
            s1 = Vector512.Sum(a0 + a1);
            s2 = Vector512.Sum(q0 + q1);
        }
        else if (Vector256.IsHardwareAccelerated && len >= 8)
        {
            var kv = Vector256.Create(k);
            Vector256<float> a0 = default, q0 = default;
            for (; i + 8 <= len; i += 8)
            {
                var d0 = Vector256.Load(x + i) - kv;
                a0 += d0;
                q0 = Vector256.FusedMultiplyAdd(d0, d0, q0);
            }
            s1 = Vector256.Sum(a0);
            s2 = Vector256.Sum(q0);
        }
        for (; i < len; i++)
        {
            float d = x[i] - k;
            s1 += d;
            s2 += d * d;
        }
        sum = s1;
        sq = s2;
    }

    /// <summary>Σ dy and Σ dy·(x − mu) over one row.</summary>
    private static void RowDot(float* dy, float* x, int len, float mu, out float sum, out float dot)
    {
        int i = 0;
        float s1 = 0f, s2 = 0f;
        if (Vector512.IsHardwareAccelerated && len >= 16)
        {
            var mv = Vector512.Create(mu);
            Vector512<float> a0 = default, q0 = default;
            for (; i + 16 <= len; i += 16)
            {
                var g = Vector512.Load(dy + i);
                a0 += g;
                q0 = Vector512.FusedMultiplyAdd(g, Vector512.Load(x + i) - mv, q0);
            }
            s1 = Vector512.Sum(a0);
            s2 = Vector512.Sum(q0);
        }
        else if (Vector256.IsHardwareAccelerated && len >= 8)
        {
            var mv = Vector256.Create(mu);
            Vector256<float> a0 = default, q0 = default;
            for (; i + 8 <= len; i += 8)
            {
                var g = Vector256.Load(dy + i);
                a0 += g;
                q0 = Vector256.FusedMultiplyAdd(g, Vector256.Load(x + i) - mv, q0);
            }
            s1 = Vector256.Sum(a0);
            s2 = Vector256.Sum(q0);
        }
        for (; i < len; i++)
        {
            s1 += dy[i];
            s2 += dy[i] * (x[i] - mu);
        }
        sum = s1;
        dot = s2;
    }

    /// <summary>dst = a·u + q·w + r over one row (w may be null when q = 0).</summary>
    private static void RowAffine(float* dst, float* u, int len, float a, float q, float* w, float r)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> av = Vector512.Create(a), qv = Vector512.Create(q), rv = Vector512.Create(r);
            if (w == null)
                for (; i + 16 <= len; i += 16) Vector512.FusedMultiplyAdd(Vector512.Load(u + i), av, rv).Store(dst + i);
            else
                for (; i + 16 <= len; i += 16)
                    Vector512.FusedMultiplyAdd(Vector512.Load(u + i), av, Vector512.FusedMultiplyAdd(Vector512.Load(w + i), qv, rv)).Store(dst + i);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> av = Vector256.Create(a), qv = Vector256.Create(q), rv = Vector256.Create(r);
            if (w == null)
                for (; i + 8 <= len; i += 8) Vector256.FusedMultiplyAdd(Vector256.Load(u + i), av, rv).Store(dst + i);
            else
                for (; i + 8 <= len; i += 8)
                    Vector256.FusedMultiplyAdd(Vector256.Load(u + i), av, Vector256.FusedMultiplyAdd(Vector256.Load(w + i), qv, rv)).Store(dst + i);
        }
        for (; i < len; i++) dst[i] = w == null ? MathF.FusedMultiplyAdd(u[i], a, r) : MathF.FusedMultiplyAdd(u[i], a, MathF.FusedMultiplyAdd(w[i], q, r));
    }
}
