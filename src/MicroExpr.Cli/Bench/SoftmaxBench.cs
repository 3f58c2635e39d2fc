using MicroExpr.Cli.Args;
using MicroExpr.Tensors.Cpu;
using MicroExpr.Bench;

namespace MicroExpr.Cli.Bench;

/// <summary>
/// <c>bench softmax</c>: times <see cref="SoftmaxSimd.Forward"/> over the last axis of x[rows, cols] and, with
/// --backward, <see cref="SoftmaxSimd.Backward"/>. Bytes: forward x in + y out; backward y, dy in + dx out.
/// </summary>
internal static unsafe class SoftmaxBench
{
    public static CommandSpec Spec { get; } = new("bench softmax",
        "Time the fused SIMD softmax over the last axis of x[rows, cols].",
        [
            .. BenchOptions.Common,
            new("rows", OptionKind.Int, "rows (B*H*N attention rows in the model)", "9600", 1),
            new("cols", OptionKind.Int, "length of each row", "50", 1),
            new("backward", OptionKind.Switch, "also time the backward pass"),
        ],
        "Bandwidth counts forward as x + y bytes and backward as y + dy + dx bytes.\n" +
        "The peer figure (libtorch, 16.2 GB/s) is the forward at [9600, 50] on 2 threads.");

    public static void Run(ParsedArgs args, BenchSettings s, Progress progress, BenchOutcome outcome)
    {
        int rows = args.Int("rows", 9600), cols = args.Int("cols", 50);
        long size = (long)rows * cols;
        int threads = s.Threads;
        outcome.Title = $"softmax  y = softmax(x) over the last axis, x[{rows}, {cols}], fp32";

        using var mem = new NativeBuffers(s.Seed);
        var x = mem.Random(size, -4f, 4f);
        var y = mem.Zeros(size);
        (string, int)[] shape = [("rows", rows), ("cols", cols)];
        var ceiling = ReferenceFigures.MemoryCeiling(threads);

        var results = outcome.Results;
        var fwd = BenchHarness.Measure("softmax forward", () => SoftmaxSimd.Forward(y.P, x.P, rows, cols, threads),
            s.Warmup, s.Runs, progress);
        results.Add(new BenchResult("softmax.forward", "forward", shape, threads, fwd, Metric.Gbps, 2.0 * size * sizeof(float),
            "(x + y) bytes", ceiling, ReferenceFigures.SoftmaxForwardGbps(rows, cols, threads)));

        if (args.Switch("backward"))
        {
            SoftmaxSimd.Forward(y.P, x.P, rows, cols, threads);
            var dy = mem.Random(size);
            var dx = mem.Zeros(size);
            var bwd = BenchHarness.Measure("softmax backward", () => SoftmaxSimd.Backward(dx.P, y.P, dy.P, rows, cols, threads),
                s.Warmup, s.Runs, progress);
            results.Add(new BenchResult("softmax.backward", "backward", shape, threads, bwd, Metric.Gbps, 3.0 * size * sizeof(float),
                "(y + dy + dx) bytes", ceiling, null));
        }
    }
}
