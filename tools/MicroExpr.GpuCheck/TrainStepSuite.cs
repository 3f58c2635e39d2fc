using System.Diagnostics;
using System.Globalization;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using MicroExpr.Models;
using MicroExpr.Tensors;
using MicroExpr.Tensors.Cpu;
using MicroExpr.Tensors.Ilgpu;
using Device = MicroExpr.Tensors.Device;
using MicroExpr.Bench;

namespace MicroExpr.GpuCheck;

/// <summary>A model to time: a preset, B clips of T frames (the images are the preset's S px).</summary>
internal sealed record TrainModel(string Preset, int Batch, int Frames)
{
    /// <summary>
    /// slstt-bench: the bench model of performance.md, [8, 8, 3, 112, 112]. slstt-b16: ViT-B/16 at 224 px (197 tokens), batch 32.
    /// The preset fixes no T (its MaxFrames, 16, only sizes a temporal transformer's position table; its LSTM ignores it;
    /// preprocessing defaults to 11), so T = 8 as in the bench model: 32·8 = 256 frames per step. Memory, measured on the CPU
    /// backend (peak RSS of b16 steps of 1, 2 and 4 frames): about 110 MiB of activations per frame plus 1.4 GiB of weights,
    /// gradients and AdamW moments, so T = 8 needs about 29 GiB, T = 11 about 40 GiB, T = 16 about 57 GiB: too close to an
    /// H100's 78 GiB for a first run on a GPU (and it doubles the step time). Other shapes: --train-models slstt-b16:32x16.
    /// --quick (for ILGPU's CPU accelerator, where one slstt-bench step takes minutes): slstt-tiny, 2 clips of 2 frames.
    /// </summary>
    public static IReadOnlyList<TrainModel> Defaults(bool quick) => quick
        ? [new("slstt-tiny", 2, 2)]
        : [new("slstt-bench", 8, 8), new("slstt-b16", 32, 8)];

    /// <summary>"preset:BxT[,preset:BxT...]", e.g. "slstt-bench:8x8,slstt-b16:32x8".</summary>
    public static IReadOnlyList<TrainModel> Parse(string list)
    {
        var models = new List<TrainModel>();
        foreach (var item in list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var parts = item.Split(':');
            var bt = parts.Length == 2 ? parts[1].Split('x') : [];
            if (bt.Length != 2 || !int.TryParse(bt[0], CultureInfo.InvariantCulture, out int b) || !int.TryParse(bt[1], CultureInfo.InvariantCulture, out int t) || b < 1 || t < 1)
                throw new ArgumentException($"--train-models: '{item}' is not preset:BxT (e.g. slstt-bench:8x8)");
            _ = SlsttPresets.Get(parts[0]); // unknown preset: throws with the known names
            models.Add(new(parts[0], b, t));
        }
        if (models.Count == 0) throw new ArgumentException("--train-models: empty list");
        return models;
    }
}

/// <summary>
/// One training step (forward, mean cross-entropy, backward, AdamW lr 1e-4, betas 0.9/0.999, eps 1e-8, wd 0.01) of each model
/// on fixed random data (<see cref="ModelStep"/>, the code behind <c>microexpr bench train-step</c>): warm-up (≥ 3 steps and
/// ≥ 2 s), then the median, min and max of the timed steps, each between two synchronisations of the device, and clips/s.
/// The loss of the first step and of the last timed step show that it trains (finite, falling: the same batch every step).
/// benchmarks/pytorch_peer.py --train-step times the same models in PyTorch and prints the same JSON fields.
/// </summary>
internal static class TrainStepSuite
{
    public static void Run(Harness h, string deviceName, IReadOnlyList<TrainModel> models, int warmup, int steps, double budgetSeconds, bool quick)
    {
        Console.WriteLine($"Train step (forward + backward + AdamW; warm-up >= {warmup} steps{(quick ? "" : " and 2 s")}, then {steps} timed steps, " +
                          $"each between two device synchronisations{(budgetSeconds > 0 ? $"; fewer (not under 5) if they would take over {budgetSeconds:F0} s" : "")})");
        Device device;
        try
        {
            device = Devices.Resolve(deviceName);
            _ = device.Backend;
        }
        catch (Exception e)
        {
            Console.WriteLine($"  train step: device {deviceName} cannot be used: {e.GetType().Name}: {e.Message}");
            h.ReportTrainStep(new TrainStepResult("train_step", "-", "FAIL", double.NaN, double.NaN, double.NaN, double.NaN, 0), null);
            return;
        }
        var ilgpu = device.Unprofiled as IlgpuBackend;
        Console.WriteLine(ilgpu is null
            ? $"  device: SIMD CPU backend, {CpuThreads.Count} threads"
            : $"  device: {ilgpu.Accelerator.Name} ({device.Name}), memory {(ilgpu.Accelerator.AcceleratorType == AcceleratorType.CPU ? "host" : $"{ilgpu.Accelerator.MemorySize / (1024.0 * 1024 * 1024):F1} GiB")}");

        if (models.Any(m => m.Preset == "slstt-b16"))
            Console.WriteLine("  slstt-b16: the preset fixes no T (MaxFrames 16 only sizes a temporal transformer's table), so T = 8 as the bench model; " +
                              "estimated from CPU runs: ~110 MiB of activations per frame + 1.4 GiB of weights and AdamW state, " +
                              "so 32x8 ~ 29 GiB (32x16 ~ 57 GiB, too close to an H100's 78 GiB)");
        foreach (var m in models)
        {
            var cfg = SlsttPresets.Get(m.Preset);
            string name = $"train_step_{m.Preset}";
            string shape = "[" + string.Join(",", m.Batch, m.Frames, 3, cfg.ImageSize, cfg.ImageSize) + "]";
            long used0 = DeviceMemoryUsed(ilgpu);
            ModelStep? step = null;
            try
            {
                var build = Stopwatch.StartNew();
                step = new ModelStep(cfg, device, m.Batch, m.Frames, train: true);
                long parameters = step.Model.ParameterCount();
                Console.WriteLine($"  {name}: input {shape}, {parameters.ToString("N0", CultureInfo.InvariantCulture)} parameters " +
                                  $"(width {cfg.Width}, depth {cfg.Depth}, heads {cfg.Heads}, {(cfg.ImageSize / cfg.PatchSize) * (cfg.ImageSize / cfg.PatchSize) + 1} tokens, " +
                                  $"LSTM {cfg.TemporalLayers}x{cfg.TemporalHidden}, head {(cfg.HeadHidden > 0 ? $"{cfg.HeadHidden}-" : "")}{cfg.Classes}), built in {build.Elapsed.TotalSeconds:F1} s");
                var times = StepTimer.Measure(step, warmup, steps, minWarmupSeconds: quick ? 0 : 2, timeBudgetSeconds: budgetSeconds);
                long used1 = DeviceMemoryUsed(ilgpu);
                bool trains = float.IsFinite(times.FirstLoss) && float.IsFinite(times.LastLoss) && times.LastLoss != times.FirstLoss;
                double clips = times.ClipsPerSecond(m.Batch);
                string F(double v, string f = "F2") => v.ToString(f, CultureInfo.InvariantCulture);
                string memory = used0 >= 0 && used1 >= 0
                    ? $"device memory +{F((used1 - used0) / (1024.0 * 1024), "F0")} MiB"
                    : $"peak RSS {F(Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024), "F0")} MiB (process)";
                Console.WriteLine($"  time  {name,-26} {shape,-20} median {F(times.MedianMs)} ms (min {F(times.MinMs)}, max {F(times.MaxMs)}, " +
                                  $"{times.Ms.Length} steps after {times.WarmupSteps} warm-up{(times.RunsCut > 0 ? $"; cut from {times.RunsCut} by the time budget" : "")})  " +
                                  $"{F(clips, "F1")} clips/s  {memory}");
                Console.WriteLine($"  check {name,-26} loss step 1 {F(times.FirstLoss, "F5")} -> step {times.WarmupSteps + times.Ms.Length} {F(times.LastLoss, "F5")}  " +
                                  (trains ? "PASS (finite, changing)" : "FAIL (not finite or not changing)"));
                var json = new Dictionary<string, object?>
                {
                    ["name"] = name, ["model"] = m.Preset, ["impl"] = "microexpr", ["device"] = deviceName,
                    ["accelerator"] = ilgpu?.Accelerator.Name ?? "SIMD CPU backend", ["batch"] = m.Batch, ["frames"] = m.Frames,
                    ["input"] = new[] { m.Batch, m.Frames, 3, cfg.ImageSize, cfg.ImageSize }, ["params"] = parameters,
                    ["warmup"] = times.WarmupSteps, ["steps"] = times.Ms.Length,
                    ["median_ms"] = Math.Round(times.MedianMs, 3), ["min_ms"] = Math.Round(times.MinMs, 3), ["max_ms"] = Math.Round(times.MaxMs, 3),
                    ["clips_per_s"] = Math.Round(clips, 3), ["loss_first"] = times.FirstLoss, ["loss_last"] = times.LastLoss,
                };
                if (used0 >= 0 && used1 >= 0) json["device_mem_mb"] = Math.Round((used1 - used0) / (1024.0 * 1024), 1);
                else json["peak_rss_mb"] = Math.Round(Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024), 1);
                h.ReportTrainStep(new TrainStepResult(name, shape, trains ? "PASS" : "FAIL", times.MedianMs, times.MinMs, times.MaxMs, clips, m.Batch), json);
            }
            catch (Exception e)
            {
                string why = $"{e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}";
                Console.WriteLine($"  {name} {shape} FAILED: {why}");
                h.ReportTrainStep(new TrainStepResult(name, shape, "FAIL", double.NaN, double.NaN, double.NaN, double.NaN, m.Batch),
                    new Dictionary<string, object?>
                    {
                        ["name"] = name, ["model"] = m.Preset, ["impl"] = "microexpr", ["device"] = deviceName, ["batch"] = m.Batch,
                        ["frames"] = m.Frames, ["error"] = why,
                    });
            }
            finally
            {
                try
                {
                    step?.Dispose();
                    ilgpu?.Pool.Trim(); // give the memory back before the next (larger) model
                }
                catch (Exception e)
                {
                    Console.WriteLine($"  {name}: cleanup failed: {e.GetType().Name}: {e.Message}");
                }
            }
        }
    }

    /// <summary>Bytes in use on the CUDA device (total − free, the whole device), or −1 where the accelerator does not say.</summary>
    private static long DeviceMemoryUsed(IlgpuBackend? ilgpu)
    {
        if (ilgpu?.Accelerator is not CudaAccelerator cuda) return -1;
        try
        {
            ilgpu.Synchronize();
            return cuda.MemorySize - cuda.GetFreeMemory();
        }
        catch (Exception)
        {
            return -1;
        }
    }
}
