namespace MicroExpr.Tensors;

/// <summary>BatchNorm through the tape (kernels: MicroExpr.Kernels' <c>BatchNorm/</c>).</summary>
public sealed partial class Tensor
{
    /// <summary>
    /// BatchNorm1d/2d/3d in PyTorch's semantics over x [N, C] or [N, C, *] (channels on axis 1; S = the product of the
    /// axes after it): y = (x − mean_c)/√(var_c + eps)·γ_c + β_c. Training (or no running statistics): mean and the
    /// biased var are the batch's over the N·S elements of each channel, and the running statistics, when given, are
    /// updated in place as PyTorch does: running_mean = (1 − m)·running_mean + m·mean,
    /// running_var = (1 − m)·running_var + m·var·M/(M − 1) (unbiased, M = N·S). Eval: the running statistics normalise
    /// (they are read at backward time too, so do not update them between this forward and its backward).
    /// weight, bias [C] or null (affine off). Gradients flow to x, weight and bias.
    /// </summary>
    public static Tensor BatchNorm(Tensor x, Tensor? weight, Tensor? bias, Tensor? runningMean, Tensor? runningVar, bool training,
        float momentum = 0.1f, float eps = 1e-5f)
    {
        x.ThrowIfDisposed();
        if (x.Rank < 2)
            throw new ShapeException($"batchnorm: input {ShapeUtil.Format(x.Shape)} needs at least 2 axes [N, C, ...]");
        int n = x.Shape[0], c = x.Shape[1], s = c == 0 || n == 0 ? 0 : x.Numel / (n * c);
        foreach (var (t, name) in new[] { (weight, "weight"), (bias, "bias"), (runningMean, "running_mean"), (runningVar, "running_var") })
        {
            if (t is null) continue;
            t.ThrowIfDisposed();
            if (t.Rank != 1 || t.Shape[0] != c || t.DType != DType.Float32)
                throw new ShapeException($"batchnorm: input {ShapeUtil.Format(x.Shape)} has C = {c}; {name} must be float32 [{c}], got {t.DType} {ShapeUtil.Format(t.Shape)}");
            if (t.Device != x.Device) throw new ArgumentException($"batchnorm: {name} is on {t.Device}, the input on {x.Device}");
        }
        if ((runningMean is null) != (runningVar is null))
            throw new ArgumentException("batchnorm: give both running_mean and running_var, or neither");
        bool batchStats = training || runningMean is null;
        long m = (long)n * s;
        if (batchStats && m <= 1 && training)
            throw new ShapeException($"batchnorm: training needs more than one value per channel; input {ShapeUtil.Format(x.Shape)} has {m}");

        var be = x.Backend;
        var y = x.NewLike(x.Shape);
        Tensor mean, var;
        if (batchStats)
        {
            mean = x.NewLike([c]);
            var = x.NewLike([c]);
            be.BatchNormTrainForward(y.Storage, mean.Storage, var.Storage, x.Storage, weight?.Storage, bias?.Storage, n, c, s, eps);
            if (training && runningMean is not null && runningVar is not null)
            {
                be.Unary(UnaryOp.Scale, runningMean.Storage, runningMean.Storage, c, 1f - momentum);
                be.Axpy(runningMean.Storage, mean.Storage, c, momentum);
                be.Unary(UnaryOp.Scale, runningVar.Storage, runningVar.Storage, c, 1f - momentum);
                be.Axpy(runningVar.Storage, var.Storage, c, (float)(momentum * (double)m / (m - 1)));
            }
        }
        else
        {
            mean = runningMean!.Detach();
            var = runningVar!.Detach();
            be.BatchNormApply(y.Storage, x.Storage, mean.Storage, var.Storage, weight?.Storage, bias?.Storage, n, c, s, eps);
        }

        Tensor[] inputs = [x, weight ?? mean, bias ?? mean, mean, var];
        return Record(y, "batchnorm", inputs, g =>
        {
            var dx = x.NewLike(x.Shape);
            var dgamma = x.NewLike([c]);
            var dbeta = x.NewLike([c]);
            x.Backend.BatchNormBackward(dx.Storage, dgamma.Storage, dbeta.Storage, g.Storage, x.Storage, mean.Storage, var.Storage,
                weight?.Storage, n, c, s, eps, batchStats);
            return [x.NeedsGrad ? dx : DisposeNull(dx), weight is { NeedsGrad: true } ? dgamma : DisposeNull(dgamma),
                bias is { NeedsGrad: true } ? dbeta : DisposeNull(dbeta), null, null];
        });
    }
}
