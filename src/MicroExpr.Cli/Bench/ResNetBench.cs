using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MicroExpr.Bench;
using MicroExpr.Cli.Args;
using MicroExpr.Cli.Commands;
using MicroExpr.Models;
using MicroExpr.Nn;
using MicroExpr.Tensors;
using MicroExpr.Tensors.Autograd;
using MicroExpr.Tensors.Cpu;

namespace MicroExpr.Cli.Bench;

/// <summary>
/// <c>microexpr bench resnet18</c>: ResNet-18 (torchvision layout, 1000 classes, random weights) on random frames
/// [batch, 3, size, size] (default [64, 3, 112, 112], performance.md's shape): inference (eval mode: conv + BatchNorm
/// folded, no tape) and a training step (train mode, cross-entropy, backward, SGD with momentum 0.9, lr 0.01), each
/// inside a tensor scope. Warm-up, then the median and min–max of the timed steps and frames per second.
/// </summary>
internal static class ResNetBench
{
    public static CommandSpec Spec { get; } = new("bench resnet18",
        "ResNet-18 inference and SGD-momentum training step on [batch, 3, size, size] frames.",
        [
            new("json", OptionKind.Switch, "print one JSON line per pass with name, median_ms, min_ms, max_ms, frames_per_s"),
            new("threads", OptionKind.Int, "CPU threads", "2", 1),
            new("warmup", OptionKind.Int, "untimed steps", "1", 0),
            new("runs", OptionKind.Int, "timed steps", "3", 1),
            new("batch", OptionKind.Int, "frames per batch (B*T)", "64", 1),
            new("size", OptionKind.Int, "frame size (H = W)", "112", 32),
            new("device", OptionKind.Text, "auto, cpu, cuda or ilgpu-cpu", "auto"),
            new("pass", OptionKind.Text, "inference, train or both", "both"),
            new("profile", OptionKind.Switch, "time every backend op kind over the timed steps and print a table"),
        ],
        "libtorch (performance.md, [64, 3, 112, 112]): inference 114 frames/s at 2 threads (81 at 1); training step\n" +
        "(SGD, momentum) 41.7 frames/s at 2 threads (16.6 at 1).");

    public static int Run(IReadOnlyList<string> args)
    {
        if (!ArgParser.ParseOrHelp(Spec, args, out var a)) return 0;
        CpuThreads.Count = a.Int("threads", 2);
        var device = DeviceOption.Resolve(a);
        int batch = a.Int("batch", 64), size = a.Int("size", 112), warmup = a.Int("warmup", 1), runs = a.Int("runs", 3);
        string pass = a.Text("pass") ?? "both";
        if (pass is not ("inference" or "train" or "both")) throw new CliUsageException($"--pass {pass}: expected inference, train or both");
        bool profile = a.Switch("profile"), json = a.Switch("json");
        using var net = new ResNet18(new ResNet18Config { Seed = 1 });
        net.To(device);
        var data = Tensor.RandU([batch, 3, size, size], new Rng(2), -1f, 1f, device).Keep();
        var labels = Enumerable.Range(0, batch).Select(i => i * 37 % 1000).ToArray();
        using var opt = new Sgd(net.Parameters(), lr: 0.01f, momentum: 0.9f);
        var bar = new Progress();
        foreach (string p in pass == "both" ? new[] { "inference", "train" } : [pass])
        {
            bool train = p == "train";
            if (train) net.Train(); else net.Eval();
            void Step()
            {
                using var scope = new TensorScope();
                if (train)
                {
                    var loss = Tensor.CrossEntropy(net.Forward(data), labels);
                    loss.Backward();
                    opt.Step();
                    opt.ZeroGrad();
                    loss.Item(); // waits for the device (the step's last kernels) before the clock stops
                }
                else
                    using (GradMode.NoGrad())
                        net.Forward(data).ToArray();
            }
            for (int i = 0; i < warmup; i++)
            {
                bar.Report($"bench resnet18 {p}: warm-up {i + 1}/{warmup}");
                Step();
            }
            OpProfiler.Reset();
            OpProfiler.Enabled = profile;
            var ms = new double[runs];
            for (int i = 0; i < runs; i++)
            {
                bar.Report($"bench resnet18 {p}: step {i + 1}/{runs}");
                var sw = Stopwatch.StartNew();
                Step();
                ms[i] = sw.Elapsed.TotalMilliseconds;
                OpProfiler.Flush();
            }
            OpProfiler.Enabled = false;
            bar.Clear();
            var sorted = ms.Order().ToArray();
            double median = sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
            double fps = batch / (median / 1000);
            // libtorch's figures (performance.md) are of [64, 3, 112, 112] on the CPU: quoted at that shape only.
            double? peer = size == 112 && batch == 64 && device.Kind == DeviceKind.Cpu
                ? (train ? (CpuThreads.Count <= 1 ? 16.6 : 41.7) : (CpuThreads.Count <= 1 ? 81 : 114)) : null;
            string name = train ? "resnet18.train_step" : "resnet18.inference";
            if (json)
                Console.Out.WriteLine(JsonSerializer.Serialize(new
                {
                    name, batch, size, threads = CpuThreads.Count, device = device.Name, runs, warmup,
                    median_ms = Math.Round(median, 2), min_ms = Math.Round(sorted[0], 2), max_ms = Math.Round(sorted[^1], 2),
                    frames_per_s = Math.Round(fps, 2), libtorch_frames_per_s = peer,
                }));
            else
            {
                string F(double v) => v.ToString("F1", CultureInfo.InvariantCulture);
                Console.Out.WriteLine($"{name}: [{batch}, 3, {size}, {size}], {CpuThreads.Count} threads, {device.Name}, {runs} steps after {warmup} warm-up");
                Console.Out.WriteLine($"  median {F(median)} ms (min {F(sorted[0])}, max {F(sorted[^1])})  {F(fps)} frames/s" +
                    (peer is { } pf ? $"  libtorch {F(pf)} frames/s, ratio {(fps / pf).ToString("F2", CultureInfo.InvariantCulture)}x" : ""));
                if (peer != null && ReferenceFigures.OtherCpuNote() is { } note) Console.Out.WriteLine("  " + note);
            }
            if (profile)
                ProfileReport.Write(json ? Console.Error : Console.Out, OpProfiler.Snapshot(), ms.Sum(), CpuThreads.Count, device,
                    $"{runs} resnet18 {p} steps, batch {batch}, {device.Name}");
        }
        data.Dispose();
        return 0;
    }
}
