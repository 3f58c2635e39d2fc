using MicroExpr.Tensors;
using MicroExpr.Tests.Nn;

namespace MicroExpr.Tests.Ilgpu;

/// <summary>
/// The ILGPU backend on a real GPU against the SIMD CPU backend. Ignored (not failed) where no usable
/// CUDA device exists; run them on a GPU machine with <c>--filter Category=Gpu</c>.
/// </summary>
[Category("Gpu")]
public class IlgpuCudaTests
{
    private Device cuda = null!;

    [SetUp]
    public void RequireCuda()
    {
        var d = Devices.TryCuda(out string? reason);
        if (d is null) Assert.Ignore($"no CUDA device: {reason}");
        cuda = d!;
    }

    [Test]
    public void ReportsTheGpu()
    {
        var info = Devices.List().Single(d => d.Name == "cuda");
        TestContext.Out.WriteLine($"{info.Name}: {info.Description}");
        Assert.That(info.Usable, Is.True);
    }

    [Test]
    public void PrimitiveOpsMatchCpu()
    {
        var w = new DeviceCompare.Weights { { "x", [7, 439], Check.Random(7 * 439, 101, 0.1f, 2f) } };
        DeviceCompare.AssertSame(cuda, Device.Cpu, w,
            p => (p["x"].Gelu() * p["x"].Log() + p["x"].Sqrt().Tanh()).Permute(1, 0).Sum([1]).Max(0), 1e-5);
    }

    /// <summary>Needs the four heavy launchers (ilgpu-kernels branch).</summary>
    [Test]
    public void TinyTransformerForwardBackwardMatchesCpu()
    {
        var (xs, ys) = IlgpuTransformerTests.Inputs(4, 6, 3);
        DeviceCompare.AssertSame(cuda, Device.Cpu, IlgpuTransformerTests.TransformerWeights(21),
            p => IlgpuTransformerTests.TransformerLoss(p, xs, ys, 4, 6, 2), 1e-4);
    }
}
