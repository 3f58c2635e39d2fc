using MicroExpr.Cli.Args;
using MicroExpr.Tensors.Cpu;
using MicroExpr.Bench;

namespace MicroExpr.Cli.Bench;

/// <summary>
/// <c>bench layernorm</c>: times <see cref="LayerNormSimd.Forward"/> over x[rows, C] (eps 1e-5) and, with
/// --backward, <see cref="LayerNormSimd.Backward"/>. Bytes: forward x in + y out (as performance.md counts it);
/// backward reads dy, x, mean, rstd, gamma and writes dx, dgamma, dbeta.
/// </summary>
internal static unsafe class LayerNormBench
{
    public static CommandSpec Spec { get; } = new("bench layernorm",
        "Time the fused SIMD LayerNorm y = (x - mean) * rstd * gamma + beta over the last axis of x[rows, cols].",
        [
            .. BenchOptions.Common,
            new("rows", OptionKind.Int, "rows (B*T*N in the model)", "3200", 1),
            new("cols", OptionKind.Int, "channels C per row", "192", 1),
            new("backward", OptionKind.Switch, "also time the backward pass"),
        ],
        "Bandwidth counts forward as x + y bytes; backward as bytes read (dy, x, mean, rstd, gamma) + written\n" +
        "(dx, dgamma, dbeta). The peer figure (libtorch, 36.8 GB/s) is the forward at [3200, 192] on 2 threads.");

    public static void Run(ParsedArgs args, BenchSettings s, Progress progress, BenchOutcome outcome)
    {
        int rows = args.Int("rows", 3200), c = args.Int("cols", 192);
        long size = (long)rows * c;
        int threads = s.Threads;
        const float eps = 1e-5f;
        outcome.Title = $"layernorm  x[{rows}, {c}], eps 1e-5, fp32";

        using var mem = new NativeBuffers(s.Seed);
        var x = mem.Random(size);
        var gamma = mem.Random(c, 0.5f, 1.5f);
        var beta = mem.Random(c, -0.5f, 0.5f);
        var y = mem.Zeros(size);
        var mean = mem.Zeros(rows);
        var rstd = mem.Zeros(rows);
        (string, int)[] shape = [("rows", rows), ("cols", c)];
        var ceiling = ReferenceFigures.MemoryCeiling(threads);

        var results = outcome.Results;
        var fwd = BenchHarness.Measure("layernorm forward", () =>
            LayerNormSimd.Forward(y.P, mean.P, rstd.P, x.P, gamma.P, beta.P, rows, c, eps, threads), s.Warmup, s.Runs, progress);
        results.Add(new BenchResult("layernorm.forward", "forward", shape, threads, fwd, Metric.Gbps, 2.0 * size * sizeof(float),
            "(x + y) bytes", ceiling, ReferenceFigures.LayerNormForwardGbps(rows, c, threads)));

        if (args.Switch("backward"))
        {
            LayerNormSimd.Forward(y.P, mean.P, rstd.P, x.P, gamma.P, beta.P, rows, c, eps, threads);
            var dy = mem.Random(size);
            var dx = mem.Zeros(size);
            var dgamma = mem.Zeros(c);
            var dbeta = mem.Zeros(c);
            var bwd = BenchHarness.Measure("layernorm backward", () =>
                LayerNormSimd.Backward(dx.P, dgamma.P, dbeta.P, dy.P, x.P, mean.P, rstd.P, gamma.P, rows, c, threads),
                s.Warmup, s.Runs, progress);
            double bytes = (3.0 * size + 2.0 * rows + 3.0 * c) * sizeof(float);
            results.Add(new BenchResult("layernorm.backward", "backward", shape, threads, bwd, Metric.Gbps, bytes,
                "(dy + x + dx + mean + rstd + gamma + dgamma + dbeta) bytes", ceiling, null));
        }
    }
}
