using MicroExpr.Tensors;

namespace MicroExpr.Tests.Ops;

/// <summary>
/// Cross-entropy (class weights, label smoothing) and dropout; once per backend. On ILGPU, cross-entropy
/// needs the log-softmax launcher (SoftmaxKernels, from the ilgpu-kernels branch).
/// </summary>
[TestFixture(typeof(OnCpu))]
[TestFixture(typeof(OnIlgpuCpu))]
public class LossOpTests<TDevice> where TDevice : ITestDevice
{
    private static double CrossEntropyRef(double[] logits, int n, int c, int[] y, float[]? w, double eps)
    {
        double total = 0, norm = 0;
        for (int i = 0; i < n; i++)
        {
            double max = double.NegativeInfinity;
            for (int j = 0; j < c; j++) max = Math.Max(max, logits[i * c + j]);
            double sum = 0;
            for (int j = 0; j < c; j++) sum += Math.Exp(logits[i * c + j] - max);
            double lse = max + Math.Log(sum);
            double wy = w?[y[i]] ?? 1;
            norm += wy;
            total += (1 - eps) * wy * (lse - logits[i * c + y[i]]);
            for (int j = 0; j < c; j++) total += eps / c * (w?[j] ?? 1) * (lse - logits[i * c + j]);
        }
        return total / norm;
    }

    [TestCase(1, 1, false, 0f)]
    [TestCase(4, 3, false, 0f)]
    [TestCase(8, 5, true, 0f)]
    [TestCase(8, 5, false, 0.1f)]
    [TestCase(17, 5, true, 0.2f)]
    public void CrossEntropy(int n, int c, bool weighted, float smoothing)
    {
        var y = Enumerable.Range(0, n).Select(i => (i * 7 + 3) % c).ToArray();
        float[]? w = weighted ? Enumerable.Range(0, c).Select(j => 0.5f + 0.25f * j).ToArray() : null;
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "cross_entropy", Shapes = [[n, c]], Op = t => Tensor.CrossEntropy(t[0], y, w, smoothing),
            Reference = x => [CrossEntropyRef(x[0], n, c, y, w, smoothing)],
            Init = (_, _, rng) => (float)(rng.NextDouble() * 6 - 3),
        }.Run();
    }

    [Test]
    public void CrossEntropyRejectsTargetOutsideClasses()
    {
        using var logits = Tensor.Zeros(2, 3);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Tensor.CrossEntropy(logits, [0, 3]))!;
        Assert.That(ex.Message, Does.Contain("target 3").And.Contain("sample 1"));
    }

    [Test]
    public void DropoutIsSeededInvertedAndPassesGradientThroughTheMask()
    {
        using var scope = new TensorScope();
        int n = 20000;
        var x = Tensor.FromArray(Enumerable.Range(0, n).Select(i => 1f + (i % 13) * 0.1f).ToArray(), n);
        x.RequiresGrad = true;
        var y1 = x.Dropout(0.25f, new Rng(42));
        var y2 = x.Dropout(0.25f, new Rng(42));
        Assert.That(y1.ToArray(), Is.EqualTo(y2.ToArray()), "same seed, same mask");
        var xs = x.ToArray();
        var ys = y1.ToArray();
        int zeros = 0;
        for (int i = 0; i < n; i++)
        {
            if (ys[i] == 0f) zeros++;
            else Assert.That(ys[i], Is.EqualTo(xs[i] / 0.75f).Within(1e-5f), $"kept element {i} is scaled by 1/(1-p)");
        }
        Assert.That(zeros / (double)n, Is.EqualTo(0.25).Within(0.02));
        y1.Sum().Backward();
        var g = x.Grad!.ToArray();
        for (int i = 0; i < n; i++) Assert.That(g[i], Is.EqualTo(ys[i] == 0f ? 0f : 1f / 0.75f).Within(1e-5f));
        x.ZeroGrad();
        Assert.That(x.Dropout(0.5f, new Rng(1), training: false), Is.SameAs(x), "identity in evaluation");
    }
}
