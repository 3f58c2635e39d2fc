using System.Numerics;

namespace MicroExpr.Kernels;

/// <summary>
/// Scalar LayerNorm reference over the last axis of x[rows, C]: two-pass statistics and every sum in double, no
/// threads, no SIMD. Generic in the element type so that tests can run it in float (to compare with
/// <see cref="LayerNormSimd"/>) or in double (finite-difference gradient checks). Same argument order as the SIMD kernels.
/// mean_r = Σx/C, var_r = Σ(x − mean_r)²/C, rstd_r = 1/√(var_r + eps), y = (x − mean_r)·rstd_r·gamma + beta.
/// </summary>
public static class LayerNormReference
{
    /// <summary>x, y [rows, C]; gamma, beta [C]; mean, rstd [rows].</summary>
    public static void Forward<T>(Span<T> y, Span<T> mean, Span<T> rstd, ReadOnlySpan<T> x, ReadOnlySpan<T> gamma,
        ReadOnlySpan<T> beta, int rows, int c, double eps) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * c, c);
            double s = 0;
            for (int i = 0; i < c; i++) s += double.CreateTruncating(xr[i]);
            double mu = s / c, q = 0;
            for (int i = 0; i < c; i++)
            {
                double d = double.CreateTruncating(xr[i]) - mu;
                q += d * d;
            }
            double rs = 1.0 / Math.Sqrt(q / c + eps);
            mean[r] = T.CreateTruncating(mu);
            rstd[r] = T.CreateTruncating(rs);
            for (int i = 0; i < c; i++)
            {
                double xh = (double.CreateTruncating(xr[i]) - mu) * rs;
                y[r * c + i] = T.CreateTruncating(xh * double.CreateTruncating(gamma[i]) + double.CreateTruncating(beta[i]));
            }
        }
    }

    /// <summary>
    /// dx [rows, C], dgamma, dbeta [C] overwritten. With x̂ = (x − mean)·rstd and g = dy·gamma:
    /// dx = rstd·(g − mean_c(g) − x̂·mean_c(g·x̂)), dgamma = Σ_rows dy·x̂, dbeta = Σ_rows dy.
    /// </summary>
    public static void Backward<T>(Span<T> dx, Span<T> dgamma, Span<T> dbeta, ReadOnlySpan<T> dy, ReadOnlySpan<T> x,
        ReadOnlySpan<T> mean, ReadOnlySpan<T> rstd, ReadOnlySpan<T> gamma, int rows, int c)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var dg = new double[c];
        var db = new double[c];
        for (int r = 0; r < rows; r++)
        {
            double mu = double.CreateTruncating(mean[r]), rs = double.CreateTruncating(rstd[r]);
            double sg = 0, sgx = 0;
            for (int i = 0; i < c; i++)
            {
                double xh = (double.CreateTruncating(x[r * c + i]) - mu) * rs, d = double.CreateTruncating(dy[r * c + i]);
                double g = d * double.CreateTruncating(gamma[i]);
                sg += g;
                sgx += g * xh;
                dg[i] += d * xh;
                db[i] += d;
            }
            sg /= c;
            sgx /= c;
            for (int i = 0; i < c; i++)
            {
                double xh = (double.CreateTruncating(x[r * c + i]) - mu) * rs;
                double g = double.CreateTruncating(dy[r * c + i]) * double.CreateTruncating(gamma[i]);
                dx[r * c + i] = T.CreateTruncating(rs * (g - sg - xh * sgx));
            }
        }
        for (int i = 0; i < c; i++)
        {
            dgamma[i] = T.CreateTruncating(dg[i]);
            dbeta[i] = T.CreateTruncating(db[i]);
        }
    }
}
