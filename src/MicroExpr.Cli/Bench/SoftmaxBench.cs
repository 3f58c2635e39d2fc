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
            KernelVersions.Option("v1 (scalar reference), v2 (SIMD), v3 (ILGPU)"),
        ],
        "Bandwidth counts forward as x + y bytes and backward as y + dy + dx bytes.\n" +
        "The peer figure (libtorch, 16.2 GB/s) is the forward at [9600, 50] on 2 threads.");

    public static void Run(ParsedArgs args, BenchSettings s, Progress progress, BenchOutcome outcome)
    {
        int rows = args.Int("rows", 9600), cols = args.Int("cols", 50);
        long size = (long)rows * cols;
        int threads = s.Threads;
        outcome.Title = $"softmax  y = softmax(x) over the last axis, x[{rows}, {cols}], fp32";
        if (KernelVersions.Pick(args, Versions) is { } pick)
        {
            RunVersions(pick, rows, cols, s, progress, outcome);
            return;
        }

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

    /// <summary>The ids <c>--version</c> takes.</summary>
    public static readonly string[] Versions = ["v1", "v2", "v3"];

    /// <summary>
    /// <c>--version</c>: v1 the scalar reference <see cref="SoftmaxReference.Forward{T}"/> (double sums, one thread: the
    /// definition, and the oracle, so its error is 0 by construction), v2 <see cref="SoftmaxSimd.Forward"/> (the SIMD
    /// toolkit version, threads), v3 <see cref="SoftmaxKernels"/> (ILGPU, warp per row), each checked on y against v1
    /// (atol 1e-6, rtol 1e-5) and timed. v3 on ILGPU's CPU accelerator is checked on the first 64 rows and not timed.
    /// </summary>
    static void RunVersions(string pick, int rows, int cols, BenchSettings s, Progress progress, BenchOutcome outcome)
    {
        long size = (long)rows * cols;
        int threads = s.Threads;
        outcome.Title = $"softmax versions  y = softmax(x) over the last axis, x[{rows}, {cols}], fp32";
        using var mem = new NativeBuffers(s.Seed);
        var x = mem.Random(size, -4f, 4f);
        var y = mem.Zeros(size);
        var xa = new ReadOnlySpan<float>(x.P, (int)size).ToArray();
        var reference = new float[size];
        SoftmaxReference.Forward<float>(reference, xa, rows, cols);
        var ya = new float[size];
        float[] Written(Action call)
        {
            new Span<float>(y.P, (int)size).Fill(float.NaN);
            call();
            return new ReadOnlySpan<float>(y.P, (int)size).ToArray();
        }
        const string Dir = "kernels/MicroExpr.Kernels/Softmax/";
        var versions = new List<KernelVersion>
        {
            new()
            {
                Id = "v1", Label = "scalar reference: max, exp-sum, divide in double, 1 thread", File = Dir + "Softmax.Reference.cs (SoftmaxReference.Forward)",
                Call = () => SoftmaxReference.Forward<float>(ya, xa, rows, cols),
                Check = () => { Array.Fill(ya, float.NaN); SoftmaxReference.Forward<float>(ya, xa, rows, cols); return (float[])ya.Clone(); },
            },
            new()
            {
                Id = "v2", Label = "SIMD toolkit: row in registers (<= 64 cols), own Exp, threads", File = Dir + "Softmax.Simd.cs (SoftmaxSimd.Forward)",
                Call = () => SoftmaxSimd.Forward(y.P, x.P, rows, cols, threads),
                Check = () => Written(() => SoftmaxSimd.Forward(y.P, x.P, rows, cols, threads)),
            },
        };
        var owned = new List<IDisposable>();
        try
        {
            if (pick is "all" or "v3")
            {
                var (acc, where, notTimed) = KernelVersions.Ilgpu();
                var kernels = new SoftmaxKernels(acc);
                var stream = acc.DefaultStream;
                int checkRows = notTimed == null ? rows : Math.Min(rows, 64);
                var dx = KernelVersions.Upload(acc, xa);
                var dy = acc.Allocate1D<float>(size);
                owned.AddRange([dx, dy]);
                versions.Add(new()
                {
                    Id = "v3", Label = $"ILGPU: warp per row, shuffles for max and sum ({where})", File = Dir + "Softmax.Ilgpu.cs (SoftmaxKernels.Forward)",
                    Call = () => kernels.Forward(stream, dy.View, dx.View, rows, cols),
                    Synchronize = stream.Synchronize,
                    Check = () =>
                    {
                        KernelVersions.Poison(dy);
                        kernels.Forward(stream, dy.View, dx.View, checkRows, cols);
                        return KernelVersions.Download(acc, dy, (long)checkRows * cols);
                    },
                    NotTimed = notTimed,
                });
            }
            KernelVersions.Run("softmax.forward", pick, versions, reference, 1e-6, 1e-5, Metric.Gbps, 2.0 * size * sizeof(float), "(x + y) bytes",
                [("rows", rows), ("cols", cols)], s, progress, outcome);
        }
        finally
        {
            foreach (var o in owned) o.Dispose();
        }
    }
}
