using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MicroExpr.Cli.Args;
using MicroExpr.Cli.Commands;
using MicroExpr.Models;
using MicroExpr.Nn;
using MicroExpr.Tensors;
using MicroExpr.Tensors.Autograd;
using MicroExpr.Tensors.Cpu;

namespace MicroExpr.Cli.Bench;

/// <summary>
/// <c>microexpr bench train-step|inference</c>: the bench model of performance.md (slstt-bench, batch 8, input
/// [8, 8, 3, 112, 112]) on random data. A training step is forward + backward + AdamW (lr 1e-4, betas 0.9/0.999,
/// eps 1e-8, weight decay 0.01) inside a tensor scope; inference is a forward without the tape. Warm-up, then the
/// median and min–max of the timed steps, clips per second and the process's peak resident memory. <c>--model</c>
/// takes another preset (slstt-tiny for a quick <c>--profile</c> on ilgpu-cpu); the libtorch comparison is printed
/// only for the bench model.
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
            new("model", OptionKind.Text, $"model preset: {string.Join(", ", SlsttPresets.Names)}", "slstt-bench"),
            new("profile", OptionKind.Switch, "time every backend op kind over the timed steps and print a table (device events on a GPU)"),
        ]);

    public static int Run(string op, IReadOnlyList<string> args)
    {
        var spec = Spec(op);
        var a = ArgParser.Parse(spec, args);
        if (a.Help)
        {
            Console.Out.Write(spec.HelpText());
            return 0;
        }
        CpuThreads.Count = a.Int("threads", 2);
        var device = DeviceOption.Resolve(a);
        int batch = a.Int("batch", 8), warmup = a.Int("warmup", 3), runs = a.Int("runs", 20);
        string preset = a.Text("model") ?? SlsttPresets.Bench.Name;
        if (!SlsttPresets.Names.Contains(preset)) throw new CliUsageException($"--model {preset}: unknown preset; known: {string.Join(", ", SlsttPresets.Names)}");
        var cfg = SlsttPresets.Get(preset);
        bool benchModel = cfg.Name == SlsttPresets.Bench.Name;
        using var model = new SlsttModel(cfg, new Rng(1));
        model.To(device);
        using var opt = new AdamW(model.Parameters(), lr: 1e-4f, beta1: 0.9f, beta2: 0.999f, eps: 1e-8f, weightDecay: 0.01f);
        var rng = new Rng(2);
        using var x = Tensor.RandN([batch, 8, 3, cfg.ImageSize, cfg.ImageSize], rng, device: device).Keep();
        var labels = Enumerable.Range(0, batch).Select(i => i % cfg.Classes).ToArray();
        bool train = op == "train-step";

        void Step()
        {
            if (train)
            {
                using var scope = new TensorScope();
                var loss = Tensor.CrossEntropy(model.Forward(x), labels);
                loss.Backward();
                opt.Step();
                opt.ZeroGrad();
                _ = loss.Item();
            }
            else
            {
                using var noGrad = GradMode.NoGrad();
                using var scope = new TensorScope();
                _ = model.Forward(x).ToArray();
            }
        }

        var bar = new Progress();
        // At least `warmup` steps and 2 s, so the tiered JIT has optimised the kernels (see BenchHarness).
        var warm = Stopwatch.StartNew();
        int warmed = 0;
        while (warmed < warmup || (warmup > 0 && warm.Elapsed.TotalSeconds < 2))
        {
            bar.Report($"bench {op}: warm-up step {++warmed}");
            Step();
        }
        var ms = new double[runs];
        bool profile = a.Switch("profile");
        OpProfiler.Reset();
        OpProfiler.Enabled = profile;
        for (int i = 0; i < runs; i++)
        {
            bar.Report($"bench {op}: step {i + 1}/{runs}");
            long t0 = Stopwatch.GetTimestamp();
            Step();
            ms[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            // Read this step's device events now, outside the timed step: the step ended on a host read, so the stream
            // is idle and no marker stays queued across steps.
            OpProfiler.Flush();
        }
        bar.Clear();
        OpProfiler.Enabled = false;
        double wallMs = ms.Sum();
        Array.Sort(ms);
        double median = runs % 2 == 1 ? ms[runs / 2] : 0.5 * (ms[runs / 2 - 1] + ms[runs / 2]);
        double clipsPerS = batch / (median / 1000);
        double peakMb = Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024.0);
        double peerMs = train ? 398 : 125;
        if (a.Switch("json"))
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(new
            {
                name = op, model = cfg.Name, batch, threads = CpuThreads.Count, device = device.Name, runs, warmup = warmed,
                median_ms = Math.Round(median, 2), min_ms = Math.Round(ms[0], 2), max_ms = Math.Round(ms[^1], 2),
                clips_per_s = Math.Round(clipsPerS, 2), peak_rss_mb = Math.Round(peakMb, 1),
            }));
        }
        else
        {
            string F(double v) => v.ToString("F1", CultureInfo.InvariantCulture);
            Console.Out.WriteLine($"{op}: {cfg.Name}, batch {batch}, {CpuThreads.Count} threads, {device.Name}, {runs} steps after {warmed} warm-up");
            Console.Out.WriteLine($"  median {F(median)} ms (min {F(ms[0])}, max {F(ms[^1])})  {F(clipsPerS)} clips/s  peak RSS {F(peakMb)} MiB");
            if (benchModel)
                Console.Out.WriteLine($"  libtorch (performance.md): {F(peerMs)} ms = {F(batch == 8 ? 8000 / peerMs : double.NaN)} clips/s; ratio {F(peerMs / median)}x; peak RSS libtorch {(train ? 846 : 608)} MiB");
        }
        if (profile)
            ProfileReport.Write(a.Switch("json") ? Console.Error : Console.Out, OpProfiler.Snapshot(), wallMs, CpuThreads.Count, device,
                $"{runs} {op} steps of {cfg.Name}, batch {batch}, {device.Name}");
        return 0;
    }
}
