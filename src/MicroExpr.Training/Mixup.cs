using MicroExpr.Tensors;

namespace MicroExpr.Training;

/// <summary>
/// Mixup (Zhang et al., 2018, "mixup: Beyond Empirical Risk Minimization"), <c>train --mixup α</c>: each training batch is
/// mixed with a permutation of itself, x̃ᵢ = λ·xᵢ + (1 − λ)·x_π(i) and t̃ᵢ = λ·onehot(yᵢ) + (1 − λ)·onehot(y_π(i)), with one
/// λ ~ Beta(α, α) per batch (the paper's reference code) and π a uniform random permutation of the batch; the model's loss
/// then trains on the soft targets (<see cref="Models.MerLoss.ForwardSoft"/>). Every input kind of a clip is mixed with the
/// same λ and partner. Choice: one λ per batch rather than per clip (the reference code; per-clip λ is a later variant
/// with no clear gain). Class weights apply per class of the mixed target (<see cref="Tensor.CrossEntropy(Tensor, float[], float[], float)"/>).
/// Mixup's draws come from a generator of their own (per epoch), so the clip order and augmentation are those of the run
/// without it; the logged training accuracy of a mixed batch counts the arg-max against each clip's own label yᵢ.
/// </summary>
public static class Mixup
{
    /// <summary>λ ~ Beta(α, α) for α &gt; 0, as X / (X + Y) with X, Y ~ Gamma(α, 1).</summary>
    public static double Beta(Rng rng, double alpha)
    {
        if (!(alpha > 0) || !double.IsFinite(alpha)) throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "mixup: α must be a finite number > 0");
        double x = Gamma(rng, alpha), y = Gamma(rng, alpha);
        return x + y == 0 ? 0.5 : x / (x + y);
    }

    /// <summary>
    /// Gamma(a, 1) by Marsaglia and Tsang (2000): for a ≥ 1 the squeeze method on d = a − 1/3; for a &lt; 1,
    /// Gamma(a + 1)·U^(1/a).
    /// </summary>
    public static double Gamma(Rng rng, double a)
    {
        if (a < 1)
        {
            double u = rng.NextDouble();
            return Gamma(rng, a + 1) * Math.Pow(u, 1 / a);
        }
        double d = a - 1.0 / 3, c = 1 / Math.Sqrt(9 * d);
        while (true)
        {
            double z = rng.NextNormal(), v = 1 + c * z;
            if (v <= 0) continue;
            v = v * v * v;
            double u = rng.NextDouble();
            if (u < 1 - 0.0331 * z * z * z * z || Math.Log(u) < 0.5 * z * z + d * (1 - v + Math.Log(v))) return d * v;
        }
    }

    /// <summary>One batch's draw: λ and the partner π(i) of each of the b clips (a Fisher–Yates permutation).</summary>
    public static (float Lambda, int[] Partner) Draw(Rng rng, double alpha, int b)
    {
        float lambda = (float)Beta(rng, alpha);
        var partner = Enumerable.Range(0, b).ToArray();
        rng.Shuffle(partner.AsSpan());
        return (lambda, partner);
    }

    /// <summary>The soft targets [B, K] row-major: λ·onehot(yᵢ) + (1 − λ)·onehot(y_π(i)).</summary>
    public static float[] Targets(int[] labels, int[] partner, float lambda, int classes)
    {
        var t = new float[labels.Length * classes];
        for (int i = 0; i < labels.Length; i++)
        {
            t[i * classes + labels[i]] += lambda;
            t[i * classes + labels[partner[i]]] += 1f - lambda;
        }
        return t;
    }

    /// <summary>
    /// Mixes b clips of [n] values each in place: xᵢ ← λ·xᵢ + (1 − λ)·x_π(i), reading the originals from a copy in
    /// <paramref name="scratch"/> (at least b·n values; the caller's, so no step allocates).
    /// </summary>
    public static void Inputs(Span<float> batch, int b, int n, int[] partner, float lambda, float[] scratch)
    {
        var original = scratch.AsSpan(0, b * n);
        batch[..(b * n)].CopyTo(original);
        for (int i = 0; i < b; i++)
        {
            var dst = batch.Slice(i * n, n);
            var a = original.Slice(i * n, n);
            var other = original.Slice(partner[i] * n, n);
            for (int k = 0; k < n; k++) dst[k] = lambda * a[k] + (1f - lambda) * other[k];
        }
    }
}

/// <summary>
/// Class-balanced sampling (<c>train --balanced</c>): an epoch draws as many clips as the training set holds (so the same
/// number of steps as a plain epoch), each by first a class uniformly among the classes present in the training subjects,
/// then a clip of that class uniformly, with replacement: each class is equally likely at every draw. Class weights are
/// then turned off (the sampling already balances; both together would over-correct, weighting the rare classes by about
/// the square of their rarity). Rejected: sampling without replacement per class with oversampling to the largest class
/// (more steps per epoch, which would change what an epoch count means).
/// </summary>
public static class BalancedSampler
{
    /// <summary><paramref name="count"/> indices into <paramref name="labels"/>, drawn class-uniformly with replacement.</summary>
    public static int[] Order(IReadOnlyList<int> labels, int count, Rng rng)
    {
        var byClass = labels.Select((label, i) => (label, i)).GroupBy(p => p.label).OrderBy(g => g.Key)
            .Select(g => g.Select(p => p.i).ToArray()).ToArray();
        if (byClass.Length == 0) throw new ArgumentException("balanced sampling: no training clips");
        var order = new int[count];
        for (int k = 0; k < count; k++)
        {
            var members = byClass[rng.NextInt(byClass.Length)];
            order[k] = members[rng.NextInt(members.Length)];
        }
        return order;
    }
}
