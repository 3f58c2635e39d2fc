using MicroExpr.Tensors;
using MicroExpr.Tensors.Autograd;
using MicroExpr.Tensors.Ilgpu;

namespace MicroExpr.Tests.Ilgpu;

/// <summary>Device choice and the parts of the ILGPU backend that no op test reaches: memory, pool, anomaly flag.</summary>
public class IlgpuBackendTests
{
    private static IlgpuBackend Backend => (IlgpuBackend)Devices.IlgpuCpu.Unprofiled;

    [Test]
    public void ResolveNamesTheDevices()
    {
        Assert.That(Devices.Resolve("cpu"), Is.SameAs(Device.Cpu));
        var ilgpu = Devices.Resolve("ILGPU-CPU");
        Assert.That(ilgpu.Kind, Is.EqualTo(DeviceKind.IlgpuCpu));
        Assert.That(ilgpu, Is.SameAs(Devices.IlgpuCpu), "one device object per name (ops compare devices by reference)");
        Assert.That(ilgpu.Backend.Device, Is.SameAs(ilgpu));
        Assert.Throws<ArgumentException>(() => Devices.Resolve("tpu"));
    }

    [Test]
    public void AutoTakesCudaOrFallsBackToTheSimdCpuWithAReason()
    {
        var d = Devices.Resolve("auto");
        if (d.Kind == DeviceKind.Cuda)
        {
            Assert.That(Devices.LastFallbackReason, Is.Null);
            return;
        }
        Assert.That(d, Is.SameAs(Device.Cpu), "never ilgpu-cpu by default");
        Assert.That(Devices.LastFallbackReason, Is.Not.Null.And.Not.Empty);
        Assert.That(Devices.LastFallbackReason, Does.Not.Contain("\n"), "one line");
        TestContext.Out.WriteLine($"auto → cpu: {Devices.LastFallbackReason}");
        var ex = Assert.Throws<InvalidOperationException>(() => Devices.Resolve("cuda"))!;
        Assert.That(ex.Message, Does.Contain(Devices.LastFallbackReason!));
    }

    [Test]
    public void ListReportsEveryKind()
    {
        var list = Devices.List();
        foreach (var d in list) TestContext.Out.WriteLine($"{d.Name,-10} {d.Kind,-8} usable={d.Usable} {d.Description} {d.Reason}");
        Assert.That(list.Select(d => d.Name), Does.Contain("cpu").And.Contain("ilgpu-cpu").And.Contain("cuda"));
        Assert.That(list.Single(d => d.Name == "ilgpu-cpu").Usable, Is.True);
        Assert.That(list.Where(d => !d.Usable).All(d => !string.IsNullOrEmpty(d.Reason)), "an unusable device says why");
    }

    [TestCase(1)]
    [TestCase(33)]
    [TestCase(6 * 512 + 7)]
    public void UploadDownloadFillAndZero(int n)
    {
        var data = Check.Random(n, 91);
        using var t = Tensor.FromSpan(data, [n], Devices.IlgpuCpu);
        Assert.That(t.ToArray(), Is.EqualTo(data));
        using var z = Tensor.Zeros([n], Devices.IlgpuCpu);
        Assert.That(z.ToArray(), Is.All.EqualTo(0f));
        using var f = Tensor.Full(-2.5f, [n], Devices.IlgpuCpu);
        Assert.That(f.ToArray(), Is.All.EqualTo(-2.5f));
        using var c = t.Clone();
        Assert.That(c.ToArray(), Is.EqualTo(data));
    }

    [Test]
    public void PoolReusesBuffersAcrossSteps()
    {
        var data = Check.Random(197 * 33, 92);
        long before = 0;
        for (int step = 0; step < 3; step++)
        {
            using var scope = new TensorScope();
            var x = Tensor.FromSpan(data, [197, 33], Devices.IlgpuCpu);
            x.RequiresGrad = true;
            (x.Tanh() * x).Sum([0]).Mean().Backward();
            x.ZeroGrad();
            if (step == 1) before = Backend.Pool.Allocations;
        }
        Assert.That(Backend.Pool.Allocations, Is.EqualTo(before), "a repeated step allocates no device memory");
    }

    [Test]
    public void HasNonFiniteFindsNaNAndInf()
    {
        foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
        {
            var data = Check.Random(6 * 512 + 7, 93);
            using var ok = Tensor.FromSpan(data, [data.Length], Devices.IlgpuCpu);
            Assert.That(Backend.HasNonFinite(ok.Storage, ok.Numel), Is.False);
            data[2000] = bad;
            data[^1] = bad;
            using var t = Tensor.FromSpan(data, [data.Length], Devices.IlgpuCpu);
            Assert.That(Backend.HasNonFinite(t.Storage, t.Numel), Is.True, $"{bad}");
            Assert.That(Backend.HasNonFinite(t.Storage, 2000), Is.False, "only the first n elements");
        }
    }

    [Test]
    public void AnomalyModeNamesTheOpOnIlgpu()
    {
        bool keep = GradMode.DetectAnomaly;
        GradMode.DetectAnomaly = true;
        try
        {
            using var scope = new TensorScope();
            var x = Tensor.FromSpan([1f, -1f, 2f], [3], Devices.IlgpuCpu);
            var ex = Assert.Throws<AnomalyException>(() => x.Log())!;
            Assert.That(ex.Message, Does.Contain("log"));
        }
        finally
        {
            GradMode.DetectAnomaly = keep;
        }
    }

    [Test]
    public void MixingDevicesIsRefused()
    {
        using var a = Tensor.Zeros([3], Devices.IlgpuCpu);
        using var b = Tensor.Zeros([3], Device.Cpu);
        Assert.Throws<ArgumentException>(() => _ = a + b);
        using var moved = b.To(Devices.IlgpuCpu);
        Assert.That(moved.Device, Is.SameAs(Devices.IlgpuCpu));
    }
}
