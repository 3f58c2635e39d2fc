using MicroExpr.Cli.Args;
using MicroExpr.Bench;
using MicroExpr.Kernels;

namespace MicroExpr.Cli.Bench;

/// <summary>
/// <c>bench batchnorm</c> and <c>bench maxpool</c>: the CPU kernels <see cref="BatchNormSimd"/> and <see cref="PoolCpu"/>
/// on native buffers, channels (planes) split over --threads as the CPU backend splits them. GB/s counts the input read
/// once and the output written once (performance.md's convention), although BatchNorm's training forward reads x twice.
/// </summary>
internal static unsafe class NormPoolBench
{
    public static CommandSpec BatchNormSpec { get; } = new("bench batchnorm",
        "Time BatchNorm2d over x[N, C, H, W]: training forward (batch statistics), eval forward, backward.",
        [
            .. BenchOptions.Common,
            new("n", OptionKind.Int, "batch N (B*T frames)", "64", 1),
            new("c", OptionKind.Int, "channels C", "64", 1),
            new("size", OptionKind.Int, "H = W", "28", 1),
        ],
        "Bandwidth counts x + y bytes (backward: dy + x + dx). The peer figure (libtorch, performance.md) is the\n" +
        "training forward at [64, 64, 28, 28]: 9.1 GB/s at 2 threads, 4.4 GB/s at 1.");

    public static CommandSpec MaxPoolSpec { get; } = new("bench maxpool",
        "Time max pooling 3x3 / 2, padding 1 (ResNet's stem pool) over x[N, C, H, W], with int32 indices, and its backward.",
        [
            .. BenchOptions.Common,
            new("n", OptionKind.Int, "batch N", "64", 1),
            new("c", OptionKind.Int, "channels C", "64", 1),
            new("size", OptionKind.Int, "H = W", "56", 1),
        ],
        "Bandwidth counts x + y bytes (the indices are not counted). The peer figure (libtorch, performance.md) is\n" +
        "[64, 64, 56, 56]: 1.07 GB/s at 2 threads, 0.52 GB/s at 1.");

    /// <summary>Runs body over [0, n) in `threads` contiguous chunks, by the CPU backend's splitter (<see cref="CpuThreads.For(int, int, Action{int, int}, int)"/>).</summary>
    private static void Split(int n, int threads, Action<int, int> body) => CpuThreads.For(n, Math.Min(threads, n), body, threads);

    public static void RunBatchNorm(ParsedArgs args, BenchSettings s, Progress progress, BenchOutcome outcome)
    {
        int n = args.Int("n", 64), c = args.Int("c", 64), hw = args.Int("size", 28), sp = hw * hw;
        long size = (long)n * c * sp;
        int threads = s.Threads;
        outcome.Title = $"batchnorm2d  x[{n}, {c}, {hw}, {hw}], eps 1e-5, fp32";
        using var mem = new NativeBuffers(s.Seed);
        var x = mem.Random(size, 0f, 2f);
        var y = mem.Zeros(size);
        var gamma = mem.Random(c, 0.5f, 1.5f);
        var beta = mem.Random(c);
        var mean = mem.Zeros(c);
        var var = mem.Zeros(c);
        (string, int)[] shape = [("n", n), ("c", c), ("h", hw), ("w", hw)];
        var ceiling = ReferenceFigures.MemoryCeiling(threads);
        double? peer = n == 64 && c == 64 && hw == 28 ? (threads <= 1 ? 4.4 : threads == 2 ? 9.1 : null) : null;
        var train = BenchHarness.Measure("batchnorm training forward", () =>
            Split(c, threads, (c0, c1) => BatchNormSimd.TrainForward(y.P, mean.P, var.P, x.P, gamma.P, beta.P, n, c, sp, 1e-5f, c0, c1)),
            s.Warmup, s.Runs, progress);
        outcome.Results.Add(new BenchResult("batchnorm.train_forward", "training forward", shape, threads, train, Metric.Gbps, 8.0 * size,
            "(x + y) bytes", ceiling, peer));
        var eval = BenchHarness.Measure("batchnorm eval forward", () =>
            Split(c, threads, (c0, c1) => BatchNormSimd.Apply(y.P, x.P, mean.P, var.P, gamma.P, beta.P, n, c, sp, 1e-5f, c0, c1)),
            s.Warmup, s.Runs, progress);
        outcome.Results.Add(new BenchResult("batchnorm.eval_forward", "eval forward", shape, threads, eval, Metric.Gbps, 8.0 * size,
            "(x + y) bytes", ceiling, null));
        var dy = mem.Random(size);
        var dx = mem.Zeros(size);
        var dg = mem.Zeros(c);
        var db = mem.Zeros(c);
        var bwd = BenchHarness.Measure("batchnorm backward", () =>
            Split(c, threads, (c0, c1) => BatchNormSimd.Backward(dx.P, dg.P, db.P, dy.P, x.P, mean.P, var.P, gamma.P, n, c, sp, 1e-5f, true, c0, c1)),
            s.Warmup, s.Runs, progress);
        outcome.Results.Add(new BenchResult("batchnorm.backward", "training backward", shape, threads, bwd, Metric.Gbps, 12.0 * size,
            "(dy + x + dx) bytes", ceiling, null));
    }

    public static void RunMaxPool(ParsedArgs args, BenchSettings s, Progress progress, BenchOutcome outcome)
    {
        int n = args.Int("n", 64), c = args.Int("c", 64), hw = args.Int("size", 56);
        int o = PoolGeometry.OutputSize(hw, 3, 2, 1, false, "maxpool");
        var g = new PoolGeometry { Planes = n * c, D = 1, H = hw, W = hw, Do = 1, Ho = o, Wo = o, Kd = 1, Kh = 3, Kw = 3, Sd = 1, Sh = 2, Sw = 2, Ph = 1, Pw = 1 };
        long inN = (long)g.Planes * g.InPlane, outN = (long)g.Planes * g.OutPlane;
        int threads = s.Threads;
        outcome.Title = $"maxpool2d 3x3/2 pad 1  x[{n}, {c}, {hw}, {hw}] -> [{n}, {c}, {o}, {o}], fp32, int32 indices";
        using var mem = new NativeBuffers(s.Seed);
        var x = mem.Random(inN);
        var y = mem.Zeros(outN);
        var idx = mem.Zeros(outN);
        (string, int)[] shape = [("n", n), ("c", c), ("h", hw), ("w", hw)];
        var ceiling = ReferenceFigures.MemoryCeiling(threads);
        double? peer = n == 64 && c == 64 && hw == 56 ? (threads <= 1 ? 0.52 : threads == 2 ? 1.07 : null) : null;
        var geo = g;
        var fwd = BenchHarness.Measure("maxpool forward", () =>
            Split(geo.Planes, threads, (p0, p1) => PoolCpu.MaxPool(y.P, (int*)idx.P, x.P, geo, p0, p1)), s.Warmup, s.Runs, progress);
        outcome.Results.Add(new BenchResult("maxpool.forward", "forward", shape, threads, fwd, Metric.Gbps, 4.0 * (inN + outN),
            "(x + y) bytes", ceiling, peer));
        var dx = mem.Zeros(inN);
        int m = g.OutPlane, inPlane = g.InPlane;
        var bwd = BenchHarness.Measure("maxpool backward", () =>
            Split(geo.Planes, threads, (p0, p1) => PoolCpu.ScatterAdd(dx.P, y.P, (int*)idx.P, m, inPlane, p0, p1)), s.Warmup, s.Runs, progress);
        outcome.Results.Add(new BenchResult("maxpool.backward", "backward", shape, threads, bwd, Metric.Gbps, 4.0 * (inN + outN),
            "(dy + dx) bytes", ceiling, null));
    }
}
