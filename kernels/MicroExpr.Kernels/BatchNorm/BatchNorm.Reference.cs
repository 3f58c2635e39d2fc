namespace MicroExpr.Kernels;

/// <summary>
/// BatchNorm over x [N, C, S] (S the product of the spatial axes: 1 for BatchNorm1d on [N, C], L for [N, C, L], H·W for
/// BatchNorm2d, D·H·W for BatchNorm3d), statistics per channel c over the M = N·S elements x[·, c, ·]:
/// <code>
/// training:  mean_c = Σ x / M,  var_c = Σ (x − mean_c)² / M  (biased, as PyTorch normalises)
/// y = (x − mean_c)·rstd_c·γ_c + β_c,  rstd_c = 1/√(var_c + eps)        γ = 1, β = 0 when absent
/// backward (x̂ = (x − mean)·rstd):  dβ_c = Σ dy,  dγ_c = Σ dy·x̂
///   training:  dx = γ·rstd·(dy − dβ_c/M − x̂·dγ_c/M)    (mean and var depend on x)
///   eval:      dx = γ·rstd·dy                           (mean and var are the running statistics: constants)
/// </code>
/// The literal reference: scalar loops in double (inputs, outputs and accumulators, so tests can take finite differences of it), two-pass variance, no threads. Tests check every fast
/// version (<see cref="BatchNormSimd"/>, <see cref="BatchNormIlgpu"/>) against it.
/// </summary>
public static class BatchNormReference
{
    /// <summary>Batch statistics into mean, var [C] (biased variance) and y [N, C, S]. γ, β may be empty (1, 0).</summary>
    public static void TrainForward(Span<double> y, Span<double> mean, Span<double> var, ReadOnlySpan<double> x, ReadOnlySpan<double> gamma,
        ReadOnlySpan<double> beta, int n, int c, int s, float eps)
    {
        double m = (double)n * s;
        for (int ch = 0; ch < c; ch++)
        {
            double sum = 0;
            for (int b = 0; b < n; b++)
                for (int i = 0; i < s; i++) sum += x[(b * c + ch) * s + i];
            double mu = sum / m, sq = 0;
            for (int b = 0; b < n; b++)
                for (int i = 0; i < s; i++)
                {
                    double d = x[(b * c + ch) * s + i] - mu;
                    sq += d * d;
                }
            mean[ch] = mu;
            var[ch] = (sq / m);
        }
        Apply(y, x, mean, var, gamma, beta, n, c, s, eps);
    }

    /// <summary>y = (x − mean_c)/√(var_c + eps)·γ_c + β_c with the given statistics (eval mode: the running ones).</summary>
    public static void Apply(Span<double> y, ReadOnlySpan<double> x, ReadOnlySpan<double> mean, ReadOnlySpan<double> var, ReadOnlySpan<double> gamma,
        ReadOnlySpan<double> beta, int n, int c, int s, float eps)
    {
        for (int ch = 0; ch < c; ch++)
        {
            double rstd = 1.0 / Math.Sqrt(var[ch] + eps);
            double g = gamma.IsEmpty ? 1.0 : gamma[ch], bt = beta.IsEmpty ? 0.0 : beta[ch];
            for (int b = 0; b < n; b++)
                for (int i = 0; i < s; i++)
                {
                    int e = (b * c + ch) * s + i;
                    y[e] = ((x[e] - mean[ch]) * rstd * g + bt);
                }
        }
    }

    /// <summary>dx [N, C, S], dγ, dβ [C] (all overwritten) from dy, x and the statistics the forward used.</summary>
    public static void Backward(Span<double> dx, Span<double> dgamma, Span<double> dbeta, ReadOnlySpan<double> dy, ReadOnlySpan<double> x,
        ReadOnlySpan<double> mean, ReadOnlySpan<double> var, ReadOnlySpan<double> gamma, int n, int c, int s, float eps, bool training)
    {
        double m = (double)n * s;
        for (int ch = 0; ch < c; ch++)
        {
            double rstd = 1.0 / Math.Sqrt(var[ch] + eps), mu = mean[ch];
            double sdy = 0, sdyx = 0;
            for (int b = 0; b < n; b++)
                for (int i = 0; i < s; i++)
                {
                    int e = (b * c + ch) * s + i;
                    sdy += dy[e];
                    sdyx += dy[e] * (x[e] - mu) * rstd;
                }
            dbeta[ch] = sdy;
            dgamma[ch] = sdyx;
            double g = gamma.IsEmpty ? 1.0 : gamma[ch];
            for (int b = 0; b < n; b++)
                for (int i = 0; i < s; i++)
                {
                    int e = (b * c + ch) * s + i;
                    double xh = (x[e] - mu) * rstd;
                    dx[e] = (training ? g * rstd * (dy[e] - sdy / m - xh * sdyx / m) : g * rstd * dy[e]);
                }
        }
    }
}
