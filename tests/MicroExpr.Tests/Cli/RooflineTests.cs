using MicroExpr.Cli;
using MicroExpr.Cli.Args;
using MicroExpr.Cli.Bench;
using MicroExpr.Tensors;

namespace MicroExpr.Tests.Cli;

/// <summary><c>--roofline FILE.png</c>: the chart is drawn from the profile's op kinds, and refused up front where there is no roof.</summary>
[NonParallelizable]
public class RooflineTests
{
    [Test]
    public void TheChartHoldsTheOpKindsWithArithmetic()
    {
        string dir = Directory.CreateTempSubdirectory("roofline").FullName;
        try
        {
            string png = Path.Combine(dir, "roof.png");
            var cpu = Device.Cpu.Name;
            OpStat[] stats =
            [
                new(cpu, OpClock.Host, "gemm", 10, 5, 2e9, 1e8),
                new(cpu, OpClock.Host, "layernorm", 10, 2, 1e7, 1e8),
                new(cpu, OpClock.Host, "copy", 10, 1, 0, 1e8),
                new("ilgpu-cpu", OpClock.HostSynchronised, "attention", 1, 1, 1e9, 1e7), // another device: not drawn
            ];
            var log = new StringWriter();
            ProfileReport.WriteRoofline(png, stats, Device.Cpu, 2, "test", log);
            var bytes = File.ReadAllBytes(png);
            Assert.That(bytes.Take(8), Is.EqualTo(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }), "a PNG");
            Assert.That(log.ToString().Trim(), Is.EqualTo($"roofline: {png} (2 op kinds by time; without FLOPs, so not drawn: copy)"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void IlgpuCpuHasNoRoofAndIsRefusedBeforeAnyWork()
    {
        var e = Assert.Throws<CliUsageException>(() => ProfileReport.CheckRoofline("r.png", Devices.IlgpuCpu, 2))!;
        Assert.That(e.Message, Does.StartWith("--roofline: no roofline for ilgpu-cpu"));
        var (code, _, err) = ConsoleCapture.Run(() => Entry.Run(["bench", "train-step", "--model", "stt-tiny", "--device", "ilgpu-cpu", "--roofline", "r.png"]));
        Assert.That(code, Is.EqualTo(Entry.Usage));
        Assert.That(err, Does.Contain("no roofline for ilgpu-cpu"));
        Assert.Throws<CliUsageException>(() => ProfileReport.CheckRoofline("r.svg", Device.Cpu, 2));
    }
}
