namespace MicroExpr.Tensors;

/// <summary>BatchNorm primitives (math, shapes and versions in MicroExpr.Kernels' <c>BatchNorm/</c> folder).</summary>
public partial interface IBackend
{
    /// <summary>
    /// BatchNorm training forward over x [N, C, S]: mean, var [C] the batch's statistics per channel (biased variance),
    /// y = (x − mean)/√(var + eps)·γ + β; gamma, beta [C] or null (1, 0).
    /// </summary>
    void BatchNormTrainForward(Storage y, Storage mean, Storage var, Storage x, Storage? gamma, Storage? beta, int n, int c, int s, float eps);

    /// <summary>y = (x − mean)/√(var + eps)·γ + β with given statistics (eval mode: the running ones), x, y [N, C, S].</summary>
    void BatchNormApply(Storage y, Storage x, Storage mean, Storage var, Storage? gamma, Storage? beta, int n, int c, int s, float eps);

    /// <summary>
    /// dx [N, C, S], dγ = Σ dy·x̂, dβ = Σ dy [C] (overwritten). <paramref name="training"/>: mean and var were the batch's,
    /// so dx carries their gradient (dx = γ·rstd·(dy − dβ/M − x̂·dγ/M), M = N·S); otherwise they were constants
    /// (dx = γ·rstd·dy).
    /// </summary>
    void BatchNormBackward(Storage dx, Storage dgamma, Storage dbeta, Storage dy, Storage x, Storage mean, Storage var, Storage? gamma,
        int n, int c, int s, float eps, bool training);
}
