using System.Globalization;
using MicroExpr.Tensors;
using MicroExpr.Bench;

namespace MicroExpr.Cli.Bench;

/// <summary>
/// The <c>--profile</c> table: every backend op kind with calls, total and mean time, share of the profiled wall
/// time, achieved GFLOP/s and GB/s, and the share of the device's ceiling (<see cref="ReferenceFigures.For"/>):
/// compute for the compute-bound kinds (gemm, attention), memory bandwidth for the rest. The header names the
/// clock: host clocks on the CPU backend (synchronous calls), device events on the ILGPU backend (markers on its
/// stream). Rows of another device (a CPU op in a GPU run) get a table of their own, with their own clock.
/// </summary>
internal static class ProfileReport
{
    public static bool ComputeBound(string kind) => kind.StartsWith("gemm", StringComparison.Ordinal) || kind.StartsWith("attention", StringComparison.Ordinal);

    /// <param name="device">The device the run used: its ceilings apply to its rows (rows of <c>cpu</c> get the CPU's).</param>
    public static void Write(TextWriter o, IReadOnlyList<OpStat> stats, double wallMs, int threads, Device device, string what)
    {
        string F(double v, int d = 1) => v.ToString("F" + d, CultureInfo.InvariantCulture);
        string Pct(double part) => F(100 * part / Math.Max(wallMs, 1e-9)) + " %";
        // Rates span six orders of magnitude (ilgpu-cpu to an H100): three significant digits or so at every size.
        string R(double v) => F(v, v >= 1000 ? 0 : v >= 10 ? 1 : 2);
        o.WriteLine();
        o.WriteLine($"profile: {what}; {F(wallMs)} ms wall");
        if (stats.Count == 0) o.WriteLine("no backend op was timed");
        foreach (var group in stats.GroupBy(s => (s.Device, s.Clock)))
        {
            var ceilings = group.Key.Device == device.Name ? ReferenceFigures.For(device, threads)
                : group.Key.Device == Device.Cpu.Name ? ReferenceFigures.For(Device.Cpu, threads)
                : new Ceilings(null, null, "omitted (not the run's device)");
            bool anyCeiling = ceilings.Gflops is not null || ceilings.Gbps is not null;
            double opsMs = group.Sum(s => s.TotalMs);
            o.WriteLine($"{group.Key.Device}, {OpProfiler.Describe(group.Key.Clock)}: {F(opsMs)} ms inside backend ops ({Pct(opsMs)} of the wall time)");
            o.WriteLine($"{"op",-22} {"calls",7} {"total ms",10} {"mean us",10} {"share",7} {"GFLOP/s",9} {"GB/s",8}" + (anyCeiling ? $" {"% ceiling",10}" : ""));
            foreach (var s in group)
            {
                bool compute = ComputeBound(s.Kind);
                double? ceiling = compute ? ceilings.Gflops : ceilings.Gbps;
                string pct = ceiling is { } c ? R(100 * (compute ? s.Gflops : s.Gbps) / c) + (compute ? " F" : " M") : "-";
                o.WriteLine($"{s.Kind,-22} {s.Calls,7} {F(s.TotalMs, 2),10} {F(s.MeanUs),10} {Pct(s.TotalMs),7} " +
                            $"{(s.Flops > 0 ? R(s.Gflops) : "-"),9} {R(s.Gbps),8}" + (anyCeiling ? $" {pct,10}" : ""));
            }
            o.WriteLine($"% ceiling: {ceilings.Note}.");
            o.WriteLine(group.Key.Clock switch
            {
                OpClock.DeviceEvents =>
                    "Device events time the stream from a marker before an op's launches to one after them: a row includes any wait for the host to launch its kernels.",
                OpClock.HostSynchronised =>
                    "This accelerator has no profiling markers: each op ran with the stream synchronised before and after it, timed on the host (launch latency included).",
                _ => "The CPU backend's calls are synchronous: each row is the wall time of its calls.",
            });
        }
        o.WriteLine("The rest of the wall time is outside the backend ops: the tape, allocation, host copies, the optimizer's bookkeeping " +
                    "(on a GPU: the time its stream sat idle).");
    }
}
