using MicroExpr.Tensors;

namespace MicroExpr.Tests.Ops;

/// <summary>
/// Soft-target cross-entropy (mixup's loss) against a literal double reference and finite differences, once per backend;
/// one-hot soft targets give the hard-label loss bit for bit.
/// </summary>
[TestFixture(typeof(OnCpu))]
[TestFixture(typeof(OnIlgpuCpu))]
public class SoftCrossEntropyTests<TDevice> where TDevice : ITestDevice
{
    /// <summary>ℓ = Σ_i Σ_c ((1−ε)·t_ic + ε/C)·w_c·(lse_i − z_ic) / Σ_i Σ_c t_ic·w_c, written out.</summary>
    private static double Reference(double[] z, int n, int c, float[] t, float[]? w, double eps)
    {
        double total = 0, norm = 0;
        for (int i = 0; i < n; i++)
        {
            double max = double.NegativeInfinity;
            for (int j = 0; j < c; j++) max = Math.Max(max, z[i * c + j]);
            double sum = 0;
            for (int j = 0; j < c; j++) sum += Math.Exp(z[i * c + j] - max);
            double lse = max + Math.Log(sum);
            for (int j = 0; j < c; j++)
            {
                double wj = w?[j] ?? 1;
                norm += t[i * c + j] * wj;
                total += ((1 - eps) * t[i * c + j] + eps / c) * wj * (lse - z[i * c + j]);
            }
        }
        return total / norm;
    }

    /// <summary>Mixup-like targets: λ on one class, 1 − λ on another (possibly the same), λ drawn per row.</summary>
    private static float[] MixedTargets(int n, int c, int seed)
    {
        var rng = new Rng((ulong)seed);
        var t = new float[n * c];
        for (int i = 0; i < n; i++)
        {
            float lambda = (float)rng.NextDouble();
            t[i * c + rng.NextInt(c)] += lambda;
            t[i * c + rng.NextInt(c)] += 1f - lambda;
        }
        return t;
    }

    [TestCase(1, 1, false, 0f)]
    [TestCase(4, 3, false, 0f)]
    [TestCase(8, 3, true, 0f)]
    [TestCase(8, 5, false, 0.1f)]
    [TestCase(17, 5, true, 0.2f)]
    public void SoftCrossEntropy(int n, int c, bool weighted, float smoothing)
    {
        var t = MixedTargets(n, c, n * 31 + c);
        float[]? w = weighted ? Enumerable.Range(0, c).Select(j => 0.5f + 0.25f * j).ToArray() : null;
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "soft_cross_entropy", Shapes = [[n, c]], Op = x => Tensor.CrossEntropy(x[0], t, w, smoothing),
            Reference = x => [Reference(x[0], n, c, t, w, smoothing)],
            Init = (_, _, rng) => (float)(rng.NextDouble() * 6 - 3),
        }.Run();
    }

    [TestCase(false, 0f)]
    [TestCase(true, 0.1f)]
    public void OneHotSoftTargetsAreTheHardLabelLossExactly(bool weighted, float smoothing)
    {
        const int n = 9, c = 3;
        var y = Enumerable.Range(0, n).Select(i => (i * 5 + 1) % c).ToArray();
        var t = new float[n * c];
        for (int i = 0; i < n; i++) t[i * c + y[i]] = 1f;
        float[]? w = weighted ? [0.7f, 1.9f, 1.1f] : null;
        using var logits = Tensor.FromSpan(Check.Random(n * c, 3, -3, 3), [n, c], TDevice.Device);
        using var hard = Tensor.CrossEntropy(logits, y, w, smoothing);
        using var soft = Tensor.CrossEntropy(logits, t, w, smoothing);
        Assert.That(soft.Item(), Is.EqualTo(hard.Item()));
    }

    [Test]
    public void RejectsTargetsThatAreNotDistributions()
    {
        using var logits = Tensor.Zeros(2, 3);
        var sum = Assert.Throws<ArgumentException>(() => Tensor.CrossEntropy(logits, new float[] { 1, 0, 0, 0.5f, 0.2f, 0 }))!;
        Assert.That(sum.Message, Does.Contain("sample 1").And.Contain("sum to"));
        var range = Assert.Throws<ArgumentOutOfRangeException>(() => Tensor.CrossEntropy(logits, new float[] { 1.5f, -0.5f, 0, 1, 0, 0 }))!;
        Assert.That(range.Message, Does.Contain("sample 0").And.Contain("class 0"));
        Assert.Throws<ShapeException>(() => Tensor.CrossEntropy(logits, new float[] { 1, 0, 0 }));
    }
}
