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
            KernelVersions.Option("v1 (scalar reference), v2 (SIMD), v3 (ILGPU)"),
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
        if (KernelVersions.Pick(args, Versions) is { } pick)
        {
            RunVersions(pick, rows, c, eps, s, progress, outcome);
            return;
        }

        using var mem = new NativeBuffers(s.Seed);
        var (x, gamma, beta, y, mean, rstd) = Buffers.Allocate(mem, rows, c);
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

    /// <summary>
    /// The forward's buffers, the same for the table and for <c>--version</c> (so one <c>--seed</c> gives both the same
    /// inputs): x[rows, C] uniform in [-1, 1), gamma[C] in [0.5, 1.5), beta[C] in [-0.5, 0.5), drawn in that order; y[rows, C],
    /// mean[rows] and rstd[rows] zeroed.
    /// </summary>
    readonly record struct Buffers(NativeBuffer X, NativeBuffer Gamma, NativeBuffer Beta, NativeBuffer Y, NativeBuffer Mean, NativeBuffer Rstd)
    {
        public static Buffers Allocate(NativeBuffers mem, int rows, int c)
        {
            long size = (long)rows * c;
            var x = mem.Random(size);
            var gamma = mem.Random(c, 0.5f, 1.5f);
            var beta = mem.Random(c, -0.5f, 0.5f);
            return new Buffers(x, gamma, beta, mem.Zeros(size), mem.Zeros(rows), mem.Zeros(rows));
        }
    }

    /// <summary>The ids <c>--version</c> takes.</summary>
    public static readonly string[] Versions = ["v1", "v2", "v3"];

    /// <summary>
    /// <c>--version</c>: v1 the scalar reference <see cref="LayerNormReference.Forward{T}"/> (two passes in double, one
    /// thread: the definition and the oracle, error 0 by construction), v2 <see cref="LayerNormSimd.Forward"/> (the SIMD
    /// toolkit version: shifted moments in one pass, threads), v3 <see cref="LayerNormKernels"/> (ILGPU, warp per row),
    /// each checked on y against v1 (atol 1e-5, rtol 1e-4) and timed. v3 on ILGPU's CPU accelerator is checked on the first
    /// 64 rows and not timed.
    /// </summary>
    static void RunVersions(string pick, int rows, int c, float eps, BenchSettings s, Progress progress, BenchOutcome outcome)
    {
        long size = (long)rows * c;
        int threads = s.Threads;
        outcome.Title = $"layernorm versions  x[{rows}, {c}], eps 1e-5, fp32";
        using var mem = new NativeBuffers(s.Seed);
        var (x, gamma, beta, y, mean, rstd) = Buffers.Allocate(mem, rows, c);
        var xa = new ReadOnlySpan<float>(x.P, (int)size).ToArray();
        var ga = new ReadOnlySpan<float>(gamma.P, c).ToArray();
        var ba = new ReadOnlySpan<float>(beta.P, c).ToArray();
        var reference = new float[size];
        LayerNormReference.Forward<float>(reference, new float[rows], new float[rows], xa, ga, ba, rows, c, eps);
        var ya = new float[size];
        var ma = new float[rows];
        var ra = new float[rows];
        float[] Written(Action call)
        {
            new Span<float>(y.P, (int)size).Fill(float.NaN);
            call();
            return new ReadOnlySpan<float>(y.P, (int)size).ToArray();
        }
        const string Dir = "kernels/MicroExpr.Kernels/LayerNorm/";
        var versions = new List<KernelVersion>
        {
            new()
            {
                Id = "v1", Label = "scalar reference: mean, then variance, in double, 1 thread", File = Dir + "LayerNorm.Reference.cs (LayerNormReference.Forward)",
                Call = () => LayerNormReference.Forward<float>(ya, ma, ra, xa, ga, ba, rows, c, eps),
                Check = () => { Array.Fill(ya, float.NaN); LayerNormReference.Forward<float>(ya, ma, ra, xa, ga, ba, rows, c, eps); return (float[])ya.Clone(); },
            },
            new()
            {
                Id = "v2", Label = "SIMD toolkit: one shifted-moments pass, one normalise pass, threads", File = Dir + "LayerNorm.Simd.cs (LayerNormSimd.Forward)",
                Call = () => LayerNormSimd.Forward(y.P, mean.P, rstd.P, x.P, gamma.P, beta.P, rows, c, eps, threads),
                Check = () => Written(() => LayerNormSimd.Forward(y.P, mean.P, rstd.P, x.P, gamma.P, beta.P, rows, c, eps, threads)),
            },
        };
        var owned = new List<IDisposable>();
        try
        {
            if (pick is "all" or "v3")
            {
                var (acc, where, notTimed) = KernelVersions.Ilgpu();
                var kernels = new LayerNormKernels(acc);
                var stream = acc.DefaultStream;
                int checkRows = notTimed == null ? rows : Math.Min(rows, 64);
                var dx = KernelVersions.Upload(acc, xa);
                var dg = KernelVersions.Upload(acc, ga);
                var db = KernelVersions.Upload(acc, ba);
                var dy = acc.Allocate1D<float>(size);
                var dm = acc.Allocate1D<float>(rows);
                var dr = acc.Allocate1D<float>(rows);
                owned.AddRange([kernels, dx, dg, db, dy, dm, dr]);
                versions.Add(new()
                {
                    Id = "v3", Label = $"ILGPU: warp per row, two-pass statistics, shuffle sums ({where})", File = Dir + "LayerNorm.Ilgpu.cs (LayerNormKernels.Forward)",
                    Call = () => kernels.Forward(stream, dy.View, dm.View, dr.View, dx.View, dg.View, db.View, rows, c, eps),
                    Synchronize = stream.Synchronize,
                    Check = () =>
                    {
                        KernelVersions.Poison(dy);
                        kernels.Forward(stream, dy.View, dm.View, dr.View, dx.View, dg.View, db.View, checkRows, c, eps);
                        return KernelVersions.Download(acc, dy, (long)checkRows * c);
                    },
                    NotTimed = notTimed,
                });
            }
            KernelVersions.Run("layernorm.forward", pick, versions, reference, 1e-5, 1e-4, Metric.Gbps, 2.0 * size * sizeof(float), "(x + y) bytes",
                [("rows", rows), ("cols", c)], s, progress, outcome);
        }
        finally
        {
            foreach (var o in owned) o.Dispose();
        }
    }
}
