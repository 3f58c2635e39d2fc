using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MicroExpr.Cli.Args;
using MicroExpr.Cli.Commands;
using MicroExpr.Models;
using MicroExpr.Tensors;
using MicroExpr.Tensors.Cpu;
using MicroExpr.Bench;

namespace MicroExpr.Cli.Bench;

/// <summary>
/// <c>microexpr bench train-step|inference</c>: the bench model of performance.md (slstt-bench, batch 8, input
/// [8, 8, 3, 112, 112]) on random data. A training step is forward + backward + AdamW (lr 1e-4, betas 0.9/0.999,
/// eps 1e-8, weight decay 0.01) inside a tensor scope; inference is a forward without the tape. Warm-up, then the
/// median and min–max of the timed steps, clips per second and the process's peak resident memory. The step itself and
/// the timing loop are <see cref="ModelStep"/> (shared with tools/MicroExpr.GpuCheck's --train-step suite).
/// <c>--model</c> takes another preset (slstt-tiny for a quick <c>--profile</c> on ilgpu-cpu); the libtorch comparison
/// is printed only for the bench model.
/// </summary>
internal static class ModelBench
{
    public static CommandSpec Spec(string op) => new($"bench {op}",
        op == "train-step" ? "One training step of the bench model (forward, backward, AdamW), batch 8." : "Inference of the bench model, batch 8.",
        [
            new("json", OptionKind.Switch, "print one JSON line with name, median_ms, clips_per_s, peak_rss_mb"),
            new("threads", OptionKind.Int, "CPU threads", "2", 1),
            new("warmup", OptionKind.Int, "untimed steps at least (warm-up also goes on for 2 s)", "3", 0),
            new("runs", OptionKind.Int, "timed steps", "20", 1),
            new("batch", OptionKind.Int, "clips per batch", "8", 1),
            new("device", OptionKind.Text, "auto, cpu, cuda or ilgpu-cpu", "auto"),
            new("model", OptionKind.Text, $"model preset: {string.Join(", ", ModelRegistry.Names)}", "slstt-bench"),
            new("set", OptionKind.Text, "change fields of the preset's config: KEY=VALUE[,KEY=VALUE...] (as 'train --set')"),
            new("profile", OptionKind.Switch, "time every backend op kind over the timed steps and print a table (device events on a GPU)"),
            ProfileReport.RooflineOption,
            ProfileReport.TraceOption,
        ]);

    public static int Run(string op, IReadOnlyList<string> args)
    {
        var spec = Spec(op);
        if (!ArgParser.ParseOrHelp(spec, args, out var a)) return 0;
        CpuThreads.Count = a.Int("threads", 2);
        var device = DeviceOption.Resolve(a);
        int batch = a.Int("batch", 8), warmup = a.Int("warmup", 3), runs = a.Int("runs", 20);
        string preset = a.Text("model") ?? SlsttPresets.Bench.Name;
        if (!ModelRegistry.IsPreset(preset)) throw new CliUsageException($"--model {preset}: unknown preset; known: {string.Join(", ", ModelRegistry.Names)}");
        var cfg = ModelRegistry.Preset(preset, Commands.TrainCommand.ModelSettingsFrom(a, preset));
        bool benchModel = cfg.Name == SlsttPresets.Bench.Name;
        bool train = op == "train-step";
        using var step = new ModelStep(cfg, device, batch, frames: 8, train);
        var bar = new Progress();
        string? roofline = a.Text("roofline");
        ProfileReport.CheckRoofline(roofline, device, CpuThreads.Count);
        string? trace = a.Text("trace");
        ProfileReport.CheckTrace(trace);
        bool profile = a.Switch("profile") || roofline != null || trace != null;
        // At least `warmup` steps and 2 s, so the tiered JIT has optimised the kernels (see BenchHarness).
        var times = StepTimer.Measure(step, warmup, runs, minWarmupSeconds: 2, progress: p => bar.Report(p, $"bench {op}: "), beforeTimed: () =>
        {
            OpProfiler.Reset();
            OpProfiler.Enabled = profile;
            OpTrace.Enabled = trace != null;
        },
        // Read each step's device events outside its timing: the step ended synchronised, so no marker stays queued.
        afterTimedStep: OpProfiler.Flush);
        bar.Clear();
        OpProfiler.Enabled = false;
        int warmed = times.WarmupSteps;
        double wallMs = times.TotalMs, median = times.MedianMs;
        double clipsPerS = times.ClipsPerSecond(batch);
        double peakMb = Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024.0);
        double peerMs = train ? 398 : 125;
        if (a.Switch("json"))
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(new
            {
                name = op, model = cfg.Name, batch, threads = CpuThreads.Count, device = device.Name, runs, warmup = warmed,
                median_ms = Math.Round(median, 2), min_ms = Math.Round(times.MinMs, 2), max_ms = Math.Round(times.MaxMs, 2),
                clips_per_s = Math.Round(clipsPerS, 2), peak_rss_mb = Math.Round(peakMb, 1),
            }));
        }
        else
        {
            string F(double v) => v.ToString("F1", CultureInfo.InvariantCulture);
            Console.Out.WriteLine($"{op}: {cfg.Name}, batch {batch}, {CpuThreads.Count} threads, {device.Name}, {runs} steps after {warmed} warm-up");
            Console.Out.WriteLine($"  median {F(median)} ms (min {F(times.MinMs)}, max {F(times.MaxMs)})  {F(clipsPerS)} clips/s  peak RSS {F(peakMb)} MiB");
            if (benchModel)
            {
                Console.Out.WriteLine($"  libtorch (performance.md): {F(peerMs)} ms = {F(batch == 8 ? 8000 / peerMs : double.NaN)} clips/s; ratio {F(peerMs / median)}x; peak RSS libtorch {(train ? 846 : 608)} MiB");
                if (device.Kind == DeviceKind.Cpu && ReferenceFigures.OtherCpuNote() is { } note) Console.Out.WriteLine("  " + note);
            }
        }
        if (a.Switch("profile"))
            ProfileReport.Write(a.Switch("json") ? Console.Error : Console.Out, OpProfiler.Snapshot(), wallMs, CpuThreads.Count, device,
                $"{times.Ms.Length} {op} steps of {cfg.Name}, batch {batch}, {device.Name}");
        if (trace != null) ProfileReport.WriteTrace(trace, $"microexpr bench {op} {cfg.Name}, batch {batch}", Console.Error);
        if (roofline != null)
            ProfileReport.WriteRoofline(roofline, OpProfiler.Snapshot(), device, CpuThreads.Count, $"{op} {cfg.Name}, batch {batch}", Console.Error);
        return 0;
    }
}
