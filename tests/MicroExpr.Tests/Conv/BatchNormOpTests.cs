using MicroExpr.Kernels;
using MicroExpr.Tensors;

namespace MicroExpr.Tests.Conv;

/// <summary>
/// BatchNorm1d/2d/3d through the tape against <see cref="BatchNormReference"/> (double) and finite differences of it, on
/// every backend; running statistics against values computed by hand. Outputs NaN-poisoned (GradCheck).
/// </summary>
[TestFixture(typeof(OnCpu))]
[TestFixture(typeof(OnIlgpuCpu))]
[TestFixture(typeof(OnCudaGpu), Category = "Gpu")]
public class BatchNormOpTests<TDevice> where TDevice : ITestDevice
{
    [SetUp]
    public void Device() => OnCudaGpu.RequireIfCuda<TDevice>();

    private static double[] TrainRef(double[] x, double[]? w, double[]? b, int[] shape, double eps = 1e-5)
    {
        int n = shape[0], c = shape[1], s = x.Length / (n * c);
        var y = new double[x.Length];
        BatchNormReference.TrainForward(y, new double[c], new double[c], x, w ?? [], b ?? [], n, c, s, (float)eps);
        return y;
    }

    private static IEnumerable<int[]> Shapes()
    {
        yield return [4, 15];          // BatchNorm1d [N, C]
        yield return [3, 16, 7];       // BatchNorm1d [N, C, L]
        yield return [2, 17, 5, 3];    // BatchNorm2d
        yield return [2, 3, 3, 4, 5];  // BatchNorm3d
        if (!TDevice.Small)
        {
            yield return [2, 64, 7, 7];
            yield return [5, 1, 13, 1];
        }
    }

    [TestCaseSource(nameof(Shapes))]
    public void TrainingForwardBackward(int[] shape)
    {
        int c = shape[1];
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "batchnorm_train", Shapes = [shape, [c], [c]],
            Op = t => Tensor.BatchNorm(t[0], t[1], t[2], null, null, training: true),
            Reference = a => TrainRef(a[0], a[1], a[2], shape),
            Init = (i, _, rng) => i == 0 ? (float)(rng.NextDouble() * 4 - 1) : (float)(rng.NextDouble() + 0.5),
            MaxGradChecks = 64,
        }.Run();
    }

    [Test]
    public void TrainingWithoutAffine()
    {
        int[] shape = [3, 5, 4, 4];
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "batchnorm_noaffine", Shapes = [shape],
            Op = t => Tensor.BatchNorm(t[0], null, null, null, null, training: true),
            Reference = a => TrainRef(a[0], null, null, shape),
        }.Run();
    }

    [TestCase(new[] { 4, 15 })]
    [TestCase(new[] { 2, 17, 5, 3 })]
    [TestCase(new[] { 2, 3, 3, 4, 5 })]
    public void EvalForwardBackward(int[] shape)
    {
        int c = shape[1], n = shape[0], s = ShapeUtil.Numel(shape) / (n * c);
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "batchnorm_eval", Shapes = [shape, [c], [c], [c], [c]],
            Differentiable = [true, true, true, false, false],
            Op = t => Tensor.BatchNorm(t[0], t[1], t[2], t[3], t[4], training: false),
            Reference = a =>
            {
                var y = new double[a[0].Length];
                BatchNormReference.Apply(y, a[0], a[3], a[4], a[1], a[2], n, c, s, 1e-5f);
                return y;
            },
            Init = (i, _, rng) => i == 4 ? (float)(rng.NextDouble() + 0.2) : (float)(rng.NextDouble() * 2 - 1),
        }.Run();
    }

    [Test]
    public void ModelSizeTrainingForwardBackward()
    {
        if (TDevice.Small) Assert.Ignore("model size: CPU backend only");
        int[] shape = [8, 64, 28, 28];
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "batchnorm_train_large", Shapes = [shape, [64], [64]],
            Op = t => Tensor.BatchNorm(t[0], t[1], t[2], null, null, training: true),
            Reference = a => TrainRef(a[0], a[1], a[2], shape),
            Init = (i, _, rng) => i == 0 ? (float)(rng.NextDouble() * 3 + 2) : (float)(rng.NextDouble() + 0.5),
            MaxGradChecks = 64,
            ForwardAtol = 1e-4, ForwardRtol = 1e-4,
        }.Run();
    }

    /// <summary>
    /// Three training steps then eval: the running statistics follow PyTorch's update, computed here by hand in double
    /// (running = 0.9·running + 0.1·batch; the variance unbiased, ·M/(M − 1)), and eval normalises with them.
    /// </summary>
    [Test]
    public void TrainThenEvalGivesPyTorchRunningStatistics()
    {
        int n = 3, c = 2, s = 4;
        var dev = TDevice.Device;
        using var rm = Tensor.Zeros([c], dev).Keep();
        using var rv = Tensor.Full(1f, [c], dev).Keep();
        double[] em = [0, 0], ev = [1, 1];
        var rng = new Rng(5);
        for (int step = 0; step < 3; step++)
        {
            using var scope = new TensorScope();
            var x = new float[n * c * s];
            for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 3 + step);
            var xt = Tensor.FromSpan(x, [n, c, 2, 2], dev);
            Tensor.BatchNorm(xt, null, null, rm, rv, training: true).ToArray();
            for (int ch = 0; ch < c; ch++)
            {
                var vals = Enumerable.Range(0, n).SelectMany(b => Enumerable.Range(0, s).Select(i => (double)x[(b * c + ch) * s + i])).ToArray();
                double mu = vals.Average(), unbiased = vals.Sum(v => (v - mu) * (v - mu)) / (vals.Length - 1);
                em[ch] = 0.9 * em[ch] + 0.1 * mu;
                ev[ch] = 0.9 * ev[ch] + 0.1 * unbiased;
            }
        }
        Check.Close(rm.ToArray(), em, 1e-6, 1e-5, "running_mean");
        Check.Close(rv.ToArray(), ev, 1e-6, 1e-5, "running_var");

        using var scope2 = new TensorScope();
        var xe = Check.Random(n * c * s, 9);
        var ye = Tensor.BatchNorm(Tensor.FromSpan(xe, [n, c, s], dev), null, null, rm, rv, training: false).ToArray();
        var expected = xe.Select((v, i) => (v - em[i / s % c]) / Math.Sqrt(ev[i / s % c] + 1e-5)).ToArray();
        Check.Close(ye, expected, 1e-5, 1e-5, "eval forward");
        Check.Close(rm.ToArray(), em, 1e-6, 1e-5, "running_mean unchanged by eval");
    }

    [Test]
    public void BadShapesGiveOneLineErrors()
    {
        using var scope = new TensorScope();
        var x = Tensor.Zeros([2, 3, 4], TDevice.Device);
        var e = Assert.Throws<ShapeException>(() => Tensor.BatchNorm(x, Tensor.Zeros([4], TDevice.Device), null, null, null, true))!;
        Assert.That(e.Message, Does.Contain("weight must be float32 [3]"));
        Assert.Throws<ShapeException>(() => Tensor.BatchNorm(Tensor.Zeros([1, 3], TDevice.Device), null, null, null, null, true));
    }
}
