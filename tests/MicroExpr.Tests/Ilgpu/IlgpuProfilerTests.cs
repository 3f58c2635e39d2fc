using ILGPU;
using ILGPU.Runtime.CPU;
using MicroExpr.Cli.Bench;
using MicroExpr.Tensors;
using MicroExpr.Tensors.Autograd;
using MicroExpr.Tensors.Ilgpu;
using MicroExpr.Bench;

namespace MicroExpr.Tests.Ilgpu;

/// <summary>
/// <see cref="OpProfiler"/> on the ILGPU backend (run on <c>ilgpu-cpu</c>): device events per primitive, the CPU
/// backend's kinds and figures, nothing while off, every marker released. Times are only checked to be finite and
/// non-negative: they never decide a test.
/// </summary>
[NonParallelizable]
public class IlgpuProfilerTests
{
    private static IlgpuBackend Backend => (IlgpuBackend)Devices.IlgpuCpu.Unprofiled;

    [SetUp]
    [TearDown]
    public void Clean()
    {
        OpProfiler.Enabled = false;
        OpProfiler.Reset();
    }

    /// <summary>A GEMM [8,16]·[16,4], a LayerNorm over [6,16], attention over 2 heads of 5 tokens × 8, an add [8,16]: one call each.</summary>
    private static void RunOps(Device device)
    {
        using var scope = new TensorScope();
        using var noGrad = GradMode.NoGrad();
        var a = Tensor.FromSpan(Check.Random(8 * 16, 1), [8, 16], device);
        var b = Tensor.FromSpan(Check.Random(16 * 4, 2), [16, 4], device);
        var x = Tensor.FromSpan(Check.Random(6 * 16, 3), [6, 16], device);
        var gamma = Tensor.FromSpan(Check.Random(16, 4), [16], device);
        var beta = Tensor.FromSpan(Check.Random(16, 5), [16], device);
        var q = Tensor.FromSpan(Check.Random(2 * 5 * 8, 6), [2, 5, 8], device);
        var k = Tensor.FromSpan(Check.Random(2 * 5 * 8, 7), [2, 5, 8], device);
        var v = Tensor.FromSpan(Check.Random(2 * 5 * 8, 8), [2, 5, 8], device);
        _ = Tensor.MatMul(a, b);
        _ = Tensor.LayerNorm(x, gamma, beta);
        _ = Tensor.Attention(q, k, v);
        _ = a + a;
    }

    private static readonly Dictionary<string, long> Expected = new() { ["gemm"] = 1, ["layernorm"] = 1, ["attention"] = 1, ["add"] = 1 };

    private static IReadOnlyList<OpStat> Profile(Device device)
    {
        OpProfiler.Reset();
        OpProfiler.Enabled = true;
        try
        {
            RunOps(device);
        }
        finally
        {
            OpProfiler.Enabled = false;
        }
        return OpProfiler.Snapshot();
    }

    [Test]
    public void DeviceEventsTimeEachPrimitiveWithTheCpuBackendsKindsAndFigures()
    {
        Assert.That(Backend.ProfileClock, Is.EqualTo(OpClock.DeviceEvents), "the engine's ILGPU context is created with profiling");
        var gpu = Profile(Devices.IlgpuCpu);
        Assert.That(gpu.ToDictionary(s => s.Kind, s => s.Calls), Is.EquivalentTo(Expected), "exactly these kinds, one call each");
        foreach (var s in gpu)
        {
            Assert.That(s.Device, Is.EqualTo("ilgpu-cpu"), s.Kind);
            Assert.That(s.Clock, Is.EqualTo(OpClock.DeviceEvents), s.Kind);
            Assert.That(double.IsFinite(s.TotalMs) && s.TotalMs >= 0, $"{s.Kind}: time {s.TotalMs} ms");
        }
        Assert.That(OpProfiler.Describe(gpu[0].Clock), Is.EqualTo("device events"));

        var byKind = gpu.ToDictionary(s => s.Kind);
        Assert.That(byKind["gemm"].Flops, Is.EqualTo(2.0 * 8 * 4 * 16), "2·M·N·K");
        Assert.That(byKind["attention"].Flops, Is.EqualTo(4.0 * 2 * 5 * 5 * 8), "4·BH·Nq·Nk·D");
        Assert.That(byKind["add"].Flops, Is.EqualTo(8.0 * 16), "one per output");

        var cpu = Profile(Device.Cpu);
        Assert.That(cpu.Select(s => (s.Device, s.Clock)).Distinct(), Is.EqualTo(new[] { ("cpu", OpClock.Host) }));
        Assert.That(cpu.ToDictionary(s => s.Kind, s => (s.Calls, s.Flops, s.Bytes)),
            Is.EquivalentTo(gpu.ToDictionary(s => s.Kind, s => (s.Calls, s.Flops, s.Bytes))), "the same rows and figures on both backends");
    }

    [Test]
    public void NothingIsRecordedOrQueuedWhileTheProfilerIsOff()
    {
        RunOps(Devices.IlgpuCpu);
        Assert.That(Backend.LiveProfilingMarkers, Is.Zero);
        Assert.That(OpProfiler.Snapshot(), Is.Empty);
    }

    [Test]
    public void MarkersAreQueuedUntilTheProfileIsReadAndReleasedAfter()
    {
        Assert.That(Backend.ProfileClock, Is.EqualTo(OpClock.DeviceEvents));
        OpProfiler.Enabled = true;
        RunOps(Devices.IlgpuCpu);
        OpProfiler.Enabled = false;
        Assert.That(Backend.LiveProfilingMarkers, Is.EqualTo(2 * Expected.Count), "a start and an end marker per op, queued");
        Assert.That(OpProfiler.Snapshot().Sum(s => s.Calls), Is.EqualTo(Expected.Count));
        Assert.That(Backend.LiveProfilingMarkers, Is.Zero, "reading the profile disposes every marker");
        Assert.That(OpProfiler.Snapshot().Sum(s => s.Calls), Is.EqualTo(Expected.Count), "a second read adds nothing");

        OpProfiler.Reset();
        Assert.That(OpProfiler.Snapshot(), Is.Empty, "after a reset");

        OpProfiler.Enabled = true;
        RunOps(Devices.IlgpuCpu);
        OpProfiler.Enabled = false;
        Assert.That(Backend.LiveProfilingMarkers, Is.EqualTo(2 * Expected.Count));
        OpProfiler.Reset();
        Assert.That(Backend.LiveProfilingMarkers, Is.Zero, "a reset disposes queued markers unread");
        Assert.That(OpProfiler.Snapshot(), Is.Empty);
    }

    [Test]
    public void AFullQueueIsResolvedWithoutWaitingForTheRead()
    {
        var timer = new IlgpuOpTimer(Backend.Stream, () => "ilgpu-cpu", maxQueued: 3);
        OpProfiler.Enabled = true;
        for (int i = 0; i < 7; i++)
        {
            using var prof = timer.Measure(OpCost.Fill(10));
            Assert.That(timer.LiveMarkers, Is.EqualTo(2 * (i % 3) + 1), $"op {i}: the queued pairs and this op's start marker");
        }
        OpProfiler.Enabled = false;
        Assert.That(timer.LiveMarkers, Is.EqualTo(2), "ops 0–2 and 3–5 were resolved when the queue filled; op 6 waits");
        var fill = OpProfiler.Snapshot().Single();
        Assert.That((fill.Kind, fill.Calls, fill.Bytes), Is.EqualTo(("fill", 7L, 7 * 40.0)));
        Assert.That(timer.LiveMarkers, Is.Zero);
    }

    [Test]
    public void WithoutMarkersTheStreamIsSynchronisedPerOpAndTheTableSaysSo()
    {
        using var context = Context.Create(b => b.CPU(new CPUDevice(32, 8, 1))); // no .Profiling(): no markers
        using var accelerator = context.GetCPUDevice(0).CreateAccelerator(context);
        using var stream = accelerator.CreateStream();
        var timer = new IlgpuOpTimer(stream, () => "ilgpu-cpu");
        Assert.That(timer.Clock, Is.EqualTo(OpClock.HostSynchronised));
        OpProfiler.Enabled = true;
        using (timer.Measure(OpCost.Gemm(1, 2, 3, 4, 0f))) { }
        OpProfiler.Enabled = false;
        Assert.That(timer.LiveMarkers, Is.Zero);
        var gemm = OpProfiler.Snapshot().Single();
        Assert.That((gemm.Kind, gemm.Clock, gemm.Calls), Is.EqualTo(("gemm", OpClock.HostSynchronised, 1L)));

        var table = new StringWriter();
        ProfileReport.Write(table, [gemm], 1.0, 2, Devices.IlgpuCpu, "test");
        Assert.That(table.ToString(), Does.Contain("ilgpu-cpu, host clocks, synchronised per op:"));
    }

    [Test]
    public void TheTableNamesTheClockAndLeavesOutTheCeilingOnIlgpuCpu()
    {
        Assert.That(Backend.ProfileClock, Is.EqualTo(OpClock.DeviceEvents));
        var stats = Profile(Devices.IlgpuCpu);
        var table = new StringWriter();
        ProfileReport.Write(table, stats, 100.0, 2, Devices.IlgpuCpu, "four ops");
        string text = table.ToString();
        TestContext.Out.Write(text);
        Assert.That(text, Does.Contain("ilgpu-cpu, device events:"));
        Assert.That(HeaderOf(text), Does.Not.Contain("ceiling"), "no % ceiling column");
        Assert.That(text, Does.Contain("% ceiling: not meaningful on ilgpu-cpu"));
        foreach (var kind in Expected.Keys)
            Assert.That(text, Does.Match($"\\n{kind} +1 "), kind);

        var cpuTable = new StringWriter();
        ProfileReport.Write(cpuTable, Profile(Device.Cpu), 100.0, 2, Device.Cpu, "four ops");
        Assert.That(cpuTable.ToString(), Does.Contain("cpu, host clocks:"));
        Assert.That(HeaderOf(cpuTable.ToString()), Does.EndWith("% ceiling"), "the CPU's ceilings are known");
    }

    private static string HeaderOf(string table) => table.Split('\n').Single(l => l.StartsWith("op ", StringComparison.Ordinal)).TrimEnd();

    [TestCase("NVIDIA H100 80GB HBM3", 67_000, 3_000)]
    [TestCase("NVIDIA H200", 67_000, 4_300)]
    [TestCase("NVIDIA H100 PCIe", null, null)]
    [TestCase("NVIDIA A100-SXM4-80GB", null, null)]
    public void CudaCeilingsComeFromTheGpusName(string name, double? gflops, double? gbps)
    {
        var c = ReferenceFigures.ForCuda(name);
        Assert.That((c.Gflops, c.Gbps), Is.EqualTo((gflops, gbps)));
        Assert.That(c.Note, Does.Contain(name));
    }
}
