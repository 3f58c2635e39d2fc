using MicroExpr.Tensors;
using MicroExpr.Tensors.Autograd;
using MicroExpr.Tensors.Cpu;

namespace MicroExpr.Tests;

/// <summary>The tape itself: accumulation, NoGrad, reuse, anomaly mode, scopes and pooling.</summary>
public class AutogradTests
{
    [Test]
    public void GradientsAccumulateAcrossBackwardCallsUntilZeroed()
    {
        using var scope = new TensorScope();
        var x = Tensor.FromArray([1f, 2f, 3f], 3).AsParameter("x");
        (x * x).Sum().Backward();
        Assert.That(x.Grad!.ToArray(), Is.EqualTo(new[] { 2f, 4f, 6f }));
        (x * x).Sum().Backward();
        Assert.That(x.Grad!.ToArray(), Is.EqualTo(new[] { 4f, 8f, 12f }));
        x.ZeroGrad();
        Assert.That(x.Grad, Is.Null);
        (x * 3f).Sum().Backward();
        Assert.That(x.Grad!.ToArray(), Is.EqualTo(new[] { 3f, 3f, 3f }));
        x.ZeroGrad();
        x.Dispose();
    }

    [Test]
    public void ATensorUsedByManyOpsGetsTheSumOfItsGradients()
    {
        using var scope = new TensorScope();
        var x = Tensor.FromArray([0.5f, -1f], 2);
        x.RequiresGrad = true;
        // y = x·x + x + exp(x) → dy/dx = 2x + 1 + exp(x)
        var y = (x * x + x + x.Exp()).Sum();
        y.Backward();
        var g = x.Grad!.ToArray();
        Assert.That(g[0], Is.EqualTo(2 * 0.5 + 1 + Math.Exp(0.5)).Within(1e-5));
        Assert.That(g[1], Is.EqualTo(-2 + 1 + Math.Exp(-1)).Within(1e-5));
        x.ZeroGrad();
    }

    [Test]
    public void NoGradRecordsNothing()
    {
        using var scope = new TensorScope();
        var x = Tensor.Ones(3);
        x.RequiresGrad = true;
        Tensor y;
        using (GradMode.NoGrad()) y = (x * 2f).Sum();
        Assert.That(y.NeedsGrad, Is.False);
        Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.That((x * 2f).Sum().NeedsGrad, Is.True, "recording resumes after the scope");
    }

    [Test]
    public void ConstantsGetNoGradient()
    {
        using var scope = new TensorScope();
        var w = Tensor.Ones(2).AsParameter("w");
        var c = Tensor.FromArray([3f, 4f], 2);
        (w * c).Sum().Backward();
        Assert.That(c.Grad, Is.Null);
        Assert.That(w.Grad!.ToArray(), Is.EqualTo(new[] { 3f, 4f }));
        w.ZeroGrad();
        w.Dispose();
    }

    [Test]
    public void AnomalyModeNamesTheFirstOpThatMadeNaN()
    {
        using var scope = new TensorScope();
        GradMode.DetectAnomaly = true;
        try
        {
            var x = Tensor.FromArray([1f, -1f], 2);
            var ex = Assert.Throws<AnomalyException>(() => _ = x.Log().Exp())!;
            Assert.That(ex.Message, Does.Contain("'log'").And.Contain("NaN"));
        }
        finally
        {
            GradMode.DetectAnomaly = false;
        }
    }

    [Test]
    public void UsingADisposedTensorSaysSo()
    {
        Tensor t;
        using (new TensorScope()) t = Tensor.Ones(2);
        Assert.That(t.IsDisposed, Is.True, "the scope freed it");
        var ex = Assert.Throws<ObjectDisposedException>(() => t.ToArray())!;
        Assert.That(ex.Message, Does.Contain("Keep()"));
    }

    [Test]
    public void KeptTensorsOutliveTheScope()
    {
        Tensor kept;
        using (new TensorScope()) kept = Tensor.Ones(2).Keep();
        Assert.That(kept.ToArray(), Is.EqualTo(new[] { 1f, 1f }));
        kept.Dispose();
    }

    [Test]
    public void AStepInAScopeStopsAllocatingAfterTheFirst()
    {
        var pool = ((CpuBackend)Device.Cpu.Unprofiled).Pool;
        var w = Tensor.RandN([64, 32], new Rng(3), 0, 0.1f).AsParameter("w");
        var x = Tensor.RandN([16, 64], new Rng(4)).Keep();
        long Step()
        {
            long before = pool.Allocations;
            using (new TensorScope())
            {
                var h = Tensor.MatMul(x, w).Gelu();
                var loss = Tensor.CrossEntropy(h, Enumerable.Range(0, 16).Select(i => i % 32).ToArray());
                loss.Backward();
            }
            w.ZeroGrad();
            return pool.Allocations - before;
        }
        Step();
        Step();
        Assert.That(Step(), Is.EqualTo(0), "a repeated step reuses pooled buffers");
        w.Dispose();
        x.Dispose();
    }

    /// <summary>Every CPU buffer starts on a 64-byte boundary (one cache line, one Vector512), fresh or reused from the pool.</summary>
    [Test]
    public void CpuBuffersAreCacheLineAligned()
    {
        foreach (int n in new[] { 1, 3, 15, 16, 17, 1000, 4099 })
            for (int round = 0; round < 3; round++)
            {
                using var t = Tensor.Zeros(n);
                var s = (CpuStorage)t.Storage;
                unsafe { Assert.That((long)s.Pointer % 64, Is.EqualTo(0L), $"{n} floats, round {round}"); }
                Assert.That(s.Span.Length, Is.EqualTo(n));
                Assert.That(s.Offset + n, Is.LessThanOrEqualTo(s.Array.Length));
            }
    }

    [Test]
    public void BackwardNeedsAScalar()
    {
        using var scope = new TensorScope();
        var x = Tensor.Ones(2);
        x.RequiresGrad = true;
        var ex = Assert.Throws<ShapeException>(() => (x * 2f).Backward())!;
        Assert.That(ex.Message, Does.Contain("[2]"));
    }

    [Test]
    public void SameSeedSameTensors()
    {
        using var scope = new TensorScope();
        Assert.That(Tensor.RandN([100], new Rng(9)).ToArray(), Is.EqualTo(Tensor.RandN([100], new Rng(9)).ToArray()));
        Assert.That(Tensor.RandN([100], new Rng(9)).ToArray(), Is.Not.EqualTo(Tensor.RandN([100], new Rng(10)).ToArray()));
        var t = Tensor.TruncNormal([1000], new Rng(1), 1f, -2f, 2f).ToArray();
        Assert.That(t.Min(), Is.GreaterThanOrEqualTo(-2f));
        Assert.That(t.Max(), Is.LessThanOrEqualTo(2f));
    }
}

public class ScopeReturnTests
{
    [Test]
    public void ReturnedTensorOutlivesItsScopeAndTheRestIsFreed()
    {
        using var outer = new TensorScope();
        Tensor kept, temp;
        using (var inner = new TensorScope())
        {
            temp = Tensor.Ones(4) * 2f;
            kept = inner.Return(temp + 1f);
        }
        Assert.That(temp.IsDisposed, Is.True);
        Assert.That(kept.IsDisposed, Is.False);
        Assert.That(kept.ToArray(), Is.EqualTo(new[] { 3f, 3f, 3f, 3f }));
        outer.Dispose();
        Assert.That(kept.IsDisposed, Is.True, "the enclosing scope owns it now");
    }

    [Test]
    public void InferenceBlocksGiveTheSameOutputAsTheTape()
    {
        using var block = new MicroExpr.Nn.TransformerBlock(16, 2, 32, new Rng(3));
        using var scope = new TensorScope();
        var x = Tensor.RandN([2, 5, 16], new Rng(4));
        var taped = block.Forward(x).ToArray();
        float[] untaped;
        using (GradMode.NoGrad()) untaped = block.Forward(x).ToArray();
        Assert.That(untaped, Is.EqualTo(taped));
    }
}

[NonParallelizable]
public class OpProfilerTests
{
    [Test]
    public void CountsCallsFlopsAndBytesPerOpKind()
    {
        using var scope = new TensorScope();
        var a = Tensor.Ones(8, 16);
        var b = Tensor.Ones(16, 4);
        OpProfiler.Reset();
        OpProfiler.Enabled = true;
        try
        {
            _ = Tensor.MatMul(a, b);
            _ = Tensor.MatMul(a, b);
            _ = a.Exp();
        }
        finally
        {
            OpProfiler.Enabled = false;
        }
        var stats = OpProfiler.Snapshot().ToDictionary(s => s.Kind);
        Assert.That(stats["gemm"].Calls, Is.EqualTo(2));
        Assert.That(stats["gemm"].Flops, Is.EqualTo(2 * 2.0 * 8 * 4 * 16));
        Assert.That(stats["exp"].Calls, Is.EqualTo(1));
        Assert.That(stats["exp"].Bytes, Is.EqualTo(8.0 * 128));
        OpProfiler.Reset();
        _ = Tensor.MatMul(a, b);
        Assert.That(OpProfiler.Snapshot(), Is.Empty, "nothing is recorded while disabled");
    }
}

public class ReleaseDataTests
{
    [Test]
    public void ReleasedIntermediateKeepsTheGraphAndRefusesReads()
    {
        using var scope = new TensorScope();
        var x = Tensor.FromArray([1f, 2f], 2);
        x.RequiresGrad = true;
        var branch = x * 3f;
        var y = x + branch;
        branch.ReleaseData();
        Assert.Throws<InvalidOperationException>(() => branch.ToArray());
        Assert.Throws<InvalidOperationException>(() => _ = branch * 2f);
        y.Sum().Backward();
        Assert.That(x.Grad!.ToArray(), Is.EqualTo(new[] { 4f, 4f }), "d(x + 3x)/dx");
        x.ZeroGrad();
        Assert.Throws<InvalidOperationException>(() => Tensor.Ones(1).AsParameter("p").ReleaseData());
    }
}
