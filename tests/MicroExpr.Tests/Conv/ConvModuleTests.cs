using MicroExpr.Kernels;
using MicroExpr.Models;
using MicroExpr.Nn;
using MicroExpr.Tensors;

namespace MicroExpr.Tests.Conv;

/// <summary>Module modes and buffers, checkpoints of integer buffers, conv + BatchNorm folding, Adam.</summary>
public class ConvModuleTests
{
    [Test]
    public void TrainAndEvalReachEveryChild()
    {
        using var net = new ResNet18(new ResNet18Config { Until = ResNetStage.Layer2 });
        net.Eval();
        Assert.That(net.Layers[1].Blocks[0].Downsample!.Bn.Training, Is.False);
        Assert.That(net.Bn1.Training, Is.False);
        net.Train();
        Assert.That(net.Layers[1].Blocks[1].Bn2.Training, Is.True);
    }

    [Test]
    public void BatchNormModuleCountsBatchesAndUpdatesRunningStatsOnlyInTraining()
    {
        using var bn = new BatchNorm2d(3);
        using var scope = new TensorScope();
        var x = Tensor.FromSpan(Check.Random(2 * 3 * 4 * 4, 4, 1f, 3f), [2, 3, 4, 4], Device.Cpu);
        bn.Forward(x);
        bn.Forward(x);
        Assert.That(bn.NumBatchesTracked.ToInt64Array(), Is.EqualTo(new long[] { 2 }));
        var rm = bn.RunningMean.ToArray();
        Assert.That(rm.All(v => v > 0.3f), "running mean moved towards the batch mean (≈ 2): 1 − 0.9² = 0.19 of the way");
        bn.Eval();
        bn.Forward(x);
        Assert.That(bn.NumBatchesTracked.ToInt64Array(), Is.EqualTo(new long[] { 2 }));
        Assert.That(bn.RunningMean.ToArray(), Is.EqualTo(rm));
        Assert.That(bn.NamedBuffers().Select(b => b.Name), Is.EqualTo(new[] { "running_mean", "running_var", "num_batches_tracked" }));
        Assert.That(bn.NamedParameters().Select(b => b.Name), Is.EqualTo(new[] { "weight", "bias" }));
        Assert.Throws<ShapeException>(() => bn.Forward(Tensor.Zeros(2, 4, 3, 3)));
    }

    [Test]
    public void SafetensorsRoundTripsIntegerArraysAndModuleState()
    {
        string dir = Path.Combine(Path.GetTempPath(), "microexpr-convnn-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string path = Path.Combine(dir, "bn.safetensors");
            using var a = new BatchNorm2d(5);
            using (var scope = new TensorScope())
                for (int i = 0; i < 3; i++) a.Forward(Tensor.FromSpan(Check.Random(2 * 5 * 3 * 3, 10 + i), [2, 5, 3, 3], Device.Cpu));
            var extra = new[] { NamedArray.Int32("idx", [3], [1, -2, int.MaxValue]), NamedArray.Int64("big", [2], [long.MinValue, 1L << 40]) };
            Safetensors.Write(path, StateDict.Arrays(a).Concat(extra));
            var (arrays, _) = Safetensors.Read(path);
            var byName = arrays.ToDictionary(x => x.Name);
            Assert.That(byName["num_batches_tracked"].Dtype, Is.EqualTo("I64"));
            Assert.That(byName["idx"].Integers, Is.EqualTo(new long[] { 1, -2, int.MaxValue }));
            Assert.That(byName["big"].Integers, Is.EqualTo(new[] { long.MinValue, 1L << 40 }));
            using var b = new BatchNorm2d(5);
            foreach (var (n, t) in b.NamedState()) StateDict.Load(t, byName[n], path);
            Assert.That(b.NumBatchesTracked.ToInt64Array(), Is.EqualTo(new long[] { 3 }));
            Assert.That(b.RunningVar.ToArray(), Is.EqualTo(a.RunningVar.ToArray()));
            var e = Assert.Throws<InvalidDataException>(() => StateDict.Load(b.RunningMean, byName["idx"] with { Shape = [5] }, path))!;
            Assert.That(e.Message, Does.Contain("'idx' is I32"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Eval mode folds BatchNorm into the conv: the fused result equals conv → BatchNorm (running stats) → ReLU in double.</summary>
    [TestCase(true)]
    [TestCase(false)]
    public void ConvBnFoldMatchesTheUnfusedDoubleReference(bool relu)
    {
        var rng = new Rng(3);
        using var unit = new ConvBnAct2d(5, 7, 3, rng, stride: 2, padding: 1, relu: relu);
        using (var s = new TensorScope())
        {
            // give the BatchNorm non-trivial statistics and affine values
            unit.Bn.RunningMean.Backend.Upload(unit.Bn.RunningMean.Storage, Check.Random(7, 1));
            unit.Bn.RunningVar.Backend.Upload(unit.Bn.RunningVar.Storage, Check.Random(7, 2, 0.2f, 2f));
            unit.Bn.Weight!.Backend.Upload(unit.Bn.Weight.Storage, Check.Random(7, 3, 0.5f, 1.5f));
            unit.Bn.Bias!.Backend.Upload(unit.Bn.Bias.Storage, Check.Random(7, 4));
        }
        unit.Eval();
        var x = Check.Random(2 * 5 * 9 * 9, 5);
        using var scope = new TensorScope();
        var y = unit.Forward(Tensor.FromSpan(x, [2, 5, 9, 9], Device.Cpu)).ToArray();
        var g = ConvGeometry.Create2d(2, 5, 7, 1, 9, 9, 3, 3, 2, 2, 1, 1, 1, 1);
        var conv = new double[g.YLength];
        ConvReference.Forward<double>(conv, D(x), D(unit.Conv.Weight.ToArray()), [], g, false);
        var expected = new double[conv.Length];
        BatchNormReference.Apply(expected, conv, D(unit.Bn.RunningMean.ToArray()), D(unit.Bn.RunningVar.ToArray()), D(unit.Bn.Weight!.ToArray()),
            D(unit.Bn.Bias!.ToArray()), 2, 7, g.P, 1e-5f);
        if (relu) expected = expected.Select(v => Math.Max(v, 0)).ToArray();
        Check.Close(y, expected, 1e-5, 1e-4, "conv+bn folded");
    }

    private static double[] D(float[] a) => a.Select(v => (double)v).ToArray();

    [TestCase(1, 0f)]
    [TestCase(37, 0.05f)]
    public void AdamWithCoupledWeightDecayMatchesTheDoubleReference(int n, float wd)
    {
        const int steps = 5;
        const double lr = 1e-2, b1 = 0.9, b2 = 0.999, eps = 1e-8;
        var rng = new Rng((ulong)n);
        var p0 = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var grads = Enumerable.Range(0, steps).Select(_ => Enumerable.Range(0, n).Select(_ => (double)(float)(rng.NextDouble() * 2 - 1)).ToArray()).ToArray();
        using var p = Tensor.FromArray(p0, n).AsParameter("p");
        var pd = p0.Select(v => (double)v).ToArray();
        using var opt = new Adam([p], (float)lr, (float)b1, (float)b2, (float)eps, wd);
        var m = new double[n];
        var v = new double[n];
        for (int t = 1; t <= steps; t++)
        {
            using (var scope = new TensorScope())
                (p * Tensor.FromArray(grads[t - 1].Select(x => (float)x).ToArray(), n)).Sum().Backward();
            opt.Step();
            opt.ZeroGrad();
            for (int i = 0; i < n; i++)
            {
                double g = grads[t - 1][i] + wd * pd[i];
                m[i] = b1 * m[i] + (1 - b1) * g;
                v[i] = b2 * v[i] + (1 - b2) * g * g;
                pd[i] -= lr * (m[i] / (1 - Math.Pow(b1, t))) / (Math.Sqrt(v[i] / (1 - Math.Pow(b2, t))) + eps);
            }
        }
        Check.Close(p.ToArray(), pd, 1e-6, 1e-5, "adam");
    }
}
