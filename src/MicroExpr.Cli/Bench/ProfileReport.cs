using System.Globalization;
using MicroExpr.Tensors;
using MicroExpr.Bench;
using MicroExpr.Cli.Args;
using MicroExpr.Training;

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
            var rows = new List<string[]>();
            foreach (var s in group)
            {
                bool compute = ComputeBound(s.Kind);
                double? ceiling = compute ? ceilings.Gflops : ceilings.Gbps;
                string pct = ceiling is { } c ? R(100 * (compute ? s.Gflops : s.Gbps) / c) + (compute ? " F" : " M") : "-";
                rows.Add([s.Kind, s.Calls.ToString(CultureInfo.InvariantCulture), F(s.TotalMs, 2), F(s.MeanUs), Pct(s.TotalMs),
                          s.Flops > 0 ? R(s.Gflops) : "-", R(s.Gbps), .. anyCeiling ? [pct] : Array.Empty<string>()]);
            }
            if (Output.Terminal.IsTerminal(o))
            {
                // A person's terminal: a framed table (Spectre.Console).
                string[] header = ["op", "calls", "total ms", "mean us", "share", "GFLOP/s", "GB/s", .. anyCeiling ? ["% ceiling"] : Array.Empty<string>()];
                Output.Terminal.WriteTable(o, header, rows, header.Select((_, i) => i > 0).ToArray());
            }
            else
            {
                // Logs and scripts: fixed columns, one line per op kind.
                o.WriteLine($"{"op",-22} {"calls",7} {"total ms",10} {"mean us",10} {"share",7} {"GFLOP/s",9} {"GB/s",8}" + (anyCeiling ? $" {"% ceiling",10}" : ""));
                foreach (var r in rows)
                    o.WriteLine($"{r[0],-22} {r[1],7} {r[2],10} {r[3],10} {r[4],7} {r[5],9} {r[6],8}" + (anyCeiling ? $" {r[7],10}" : ""));
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

    /// <summary>
    /// The <c>--roofline FILE.png</c> option: a spec entry for the commands that profile, checked before any work (the
    /// device must have known ceilings), and the chart after: each op kind of the run's device that does arithmetic, at its
    /// arithmetic intensity (FLOPs per byte read and written, <see cref="OpCost"/>) and its achieved GFLOP/s, under the
    /// reference machine's roof (FMA peak and copy bandwidth, <see cref="ReferenceFigures.For"/>). The eight kinds that took
    /// the most time are drawn; kinds without FLOPs (copies, index ops) cannot sit on a roofline and are listed instead.
    /// </summary>
    public static readonly OptionSpec RooflineOption = new("roofline", OptionKind.Text,
        "profile, then draw each op kind at its arithmetic intensity and GFLOP/s under the machine's roofline into FILE.png");

    /// <summary>Fails now, as a usage error, when <paramref name="device"/> has no ceilings to draw (ilgpu-cpu, an unknown GPU).</summary>
    public static void CheckRoofline(string? path, Device device, int threads)
    {
        if (path is null) return;
        if (!path.EndsWith(".png", StringComparison.OrdinalIgnoreCase)) throw new CliUsageException($"--roofline {path}: expected a .png file name");
        var c = ReferenceFigures.For(device, threads);
        if (c.Gflops is null || c.Gbps is null) throw new CliUsageException($"--roofline: no roofline for {device.Name}: its ceilings are {c.Note}");
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir != null && !Directory.Exists(dir)) throw new CliUsageException($"--roofline {path}: the folder {dir} does not exist");
    }

    public const int RooflineKinds = 8;

    /// <summary>Draws the chart (see <see cref="RooflineOption"/>) and says on <paramref name="log"/> what it holds.</summary>
    public static void WriteRoofline(string path, IReadOnlyList<OpStat> stats, Device device, int threads, string what, TextWriter log)
    {
        var c = ReferenceFigures.For(device, threads);
        var mine = stats.Where(s => s.Device == device.Name && s.TotalMs > 0).OrderByDescending(s => s.TotalMs).ToList();
        var drawn = mine.Where(s => s.Flops > 0 && s.Bytes > 0).Take(RooflineKinds).ToList();
        var left = mine.Where(s => !(s.Flops > 0 && s.Bytes > 0)).Select(s => s.Kind).ToList();
        Plots.Roofline(path, $"{what}: {threads} thread{(threads == 1 ? "" : "s")}, {device.Name}", c.Gflops!.Value, c.Gbps!.Value,
            drawn.Select(s => new Plots.RooflinePoint(s.Kind, s.Flops / s.Bytes, s.Gflops)).ToList());
        log.WriteLine($"roofline: {path} ({drawn.Count} op kinds by time" +
                      (mine.Count(s => s.Flops > 0 && s.Bytes > 0) > drawn.Count ? $", of {mine.Count(s => s.Flops > 0 && s.Bytes > 0)}" : "") +
                      (left.Count > 0 ? $"; without FLOPs, so not drawn: {string.Join(", ", left)}" : "") + ")");
    }

    /// <summary>The <c>--trace FILE.json</c> option (see <see cref="OpTrace"/>): Chrome trace events of every backend op and phase.</summary>
    public static readonly OptionSpec TraceOption = new("trace", OptionKind.Text,
        "write Chrome trace events (one per backend op, plus phases) to FILE.json, for Perfetto or chrome://tracing; keep the run short");

    /// <summary>Checks the trace path before any work (a .json name in an existing folder).</summary>
    public static void CheckTrace(string? path)
    {
        if (path is null) return;
        if (!path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) throw new CliUsageException($"--trace {path}: expected a .json file name");
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir != null && !Directory.Exists(dir)) throw new CliUsageException($"--trace {path}: the folder {dir} does not exist");
    }

    /// <summary>Writes the trace, stops recording and says where it went.</summary>
    public static void WriteTrace(string path, string what, TextWriter log)
    {
        int n = OpTrace.Write(path, what);
        OpTrace.Enabled = false;
        log.WriteLine($"trace: {path} ({n} events; open it in https://ui.perfetto.dev or chrome://tracing)");
    }
}
