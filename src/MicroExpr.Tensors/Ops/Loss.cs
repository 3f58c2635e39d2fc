namespace MicroExpr.Tensors;

/// <summary>Losses and regularisers built from the primitive ops.</summary>
public sealed partial class Tensor
{
    /// <summary>The checks both cross-entropy forms share: C class weights when given, label smoothing in [0, 1].</summary>
    private static void CheckWeightsAndSmoothing(int c, float[]? classWeights, float labelSmoothing)
    {
        if (classWeights != null && classWeights.Length != c)
            throw new ShapeException($"cross_entropy: {classWeights.Length} class weights for {c} classes");
        if (labelSmoothing < 0f || labelSmoothing > 1f) throw new ArgumentOutOfRangeException(nameof(labelSmoothing), labelSmoothing, "label smoothing must be in [0, 1]");
    }

    /// <summary>
    /// Mean cross-entropy of logits [N, C] against integer targets, with PyTorch's semantics:
    /// per sample i, ℓ_i = −Σ_c q_ic·w_c·log p_ic with q = (1−ε)·onehot(y_i) + ε/C (label smoothing ε),
    /// and the mean divides by Σ_i w_{y_i} (by N without class weights).
    /// Built as log-softmax (fused) times a constant weight matrix, so its gradient comes from those ops.
    /// </summary>
    public static Tensor CrossEntropy(Tensor logits, int[] targets, float[]? classWeights = null, float labelSmoothing = 0f)
    {
        logits.ThrowIfDisposed();
        if (logits.Rank != 2) throw new ShapeException($"cross_entropy: logits must be [N, C]; got {ShapeUtil.Format(logits.Shape)}");
        int n = logits.Shape[0], c = logits.Shape[1];
        if (targets.Length != n) throw new ShapeException($"cross_entropy: {targets.Length} targets for logits {ShapeUtil.Format(logits.Shape)}");
        CheckWeightsAndSmoothing(c, classWeights, labelSmoothing);
        var w = new float[n * c];
        double norm = 0;
        for (int i = 0; i < n; i++)
        {
            int y = targets[i];
            if (y < 0 || y >= c) throw new ArgumentOutOfRangeException(nameof(targets), $"cross_entropy: target {y} of sample {i} is outside 0..{c - 1}");
            float wy = classWeights?[y] ?? 1f;
            norm += wy;
            for (int j = 0; j < c; j++)
            {
                float wj = classWeights?[j] ?? 1f;
                w[i * c + j] = labelSmoothing / c * wj + (j == y ? (1f - labelSmoothing) * wy : 0f);
            }
        }
        if (norm <= 0) throw new ArgumentException("cross_entropy: the class weights of the targets sum to zero");
        var logp = logits.LogSoftmax();
        var weights = FromSpan(w, [n, c], logits.Device);
        var weighted = logp * weights;
        return weighted.Sum().Scale((float)(-1.0 / norm));
    }

    /// <summary>
    /// Mean cross-entropy of logits [N, C] against soft targets t [N, C] (rows of probabilities, e.g. mixup's
    /// λ·onehot(yᵢ) + (1 − λ)·onehot(yⱼ)): ℓ_i = −Σ_c q_ic·w_c·log p_ic with q = (1−ε)·t + ε/C, and the mean divides by
    /// Σ_i Σ_c t_ic·w_c, the targets' total class weight. For one-hot targets this is <see cref="CrossEntropy(Tensor, int[], float[], float)"/>
    /// exactly (same weights, same divisor), and a mixed target weighs each of its classes by that class's weight, in
    /// proportion to its share. Rejected: PyTorch's rule for probability targets, which divides by N whatever the weights,
    /// so turning mixup on at λ = 1 would rescale a class-weighted loss (and its learning rate) by Σw_y/N.
    /// </summary>
    public static Tensor CrossEntropy(Tensor logits, float[] targets, float[]? classWeights = null, float labelSmoothing = 0f)
    {
        logits.ThrowIfDisposed();
        if (logits.Rank != 2) throw new ShapeException($"cross_entropy: logits must be [N, C]; got {ShapeUtil.Format(logits.Shape)}");
        int n = logits.Shape[0], c = logits.Shape[1];
        if (targets.Length != n * c) throw new ShapeException($"cross_entropy: {targets.Length} soft-target values for logits {ShapeUtil.Format(logits.Shape)} (expected {n * c})");
        CheckWeightsAndSmoothing(c, classWeights, labelSmoothing);
        var w = new float[n * c];
        double norm = 0;
        for (int i = 0; i < n; i++)
        {
            double rowSum = 0;
            for (int j = 0; j < c; j++)
            {
                float t = targets[i * c + j];
                if (!(t >= 0f && t <= 1f)) throw new ArgumentOutOfRangeException(nameof(targets), $"cross_entropy: soft target {t} of sample {i}, class {j} is outside [0, 1]");
                rowSum += t;
                float wj = classWeights?[j] ?? 1f;
                norm += t * wj;
                w[i * c + j] = labelSmoothing / c * wj + (1f - labelSmoothing) * t * wj;
            }
            if (Math.Abs(rowSum - 1) > 1e-4) throw new ArgumentException($"cross_entropy: the soft targets of sample {i} sum to {rowSum}, not 1");
        }
        if (norm <= 0) throw new ArgumentException("cross_entropy: the class weights of the targets sum to zero");
        var logp = logits.LogSoftmax();
        var weights = FromSpan(w, [n, c], logits.Device);
        var weighted = logp * weights;
        return weighted.Sum().Scale((float)(-1.0 / norm));
    }

    /// <summary>
    /// Inverted dropout: in training, each element is zeroed with probability p and the rest scaled by
    /// 1/(1−p); the mask comes from the seeded generator. Identity when not training or p = 0.
    /// </summary>
    public Tensor Dropout(float p, Rng rng, bool training = true)
    {
        if (p < 0f || p >= 1f) throw new ArgumentOutOfRangeException(nameof(p), p, "dropout probability must be in [0, 1)");
        if (!training || p == 0f) return this;
        var mask = new float[Numel];
        float keep = 1f / (1f - p);
        for (int i = 0; i < mask.Length; i++) mask[i] = rng.NextDouble() < p ? 0f : keep;
        var m = FromSpan(mask, Shape, Device);
        return this * m;
    }
}
