using MicroExpr.Cli.Args;
using MicroExpr.Tensors.Cpu;
using MicroExpr.Bench;

namespace MicroExpr.Cli.Bench;

/// <summary>
/// <c>bench gemm</c>: times <see cref="GemmSimd.Run"/>, C[M,N] = op(A)·op(B) (alpha 1, beta 0), row-major, dense
/// leading dimensions. FLOPs counted as 2·M·N·K (one multiply and one add per term).
/// </summary>
internal static unsafe class GemmBench
{
    public static CommandSpec Spec { get; } = new("bench gemm",
        "Time the SIMD GEMM: C[M,N] = op(A)[M,K] * op(B)[K,N], fp32, row-major.",
        [
            .. BenchOptions.Common,
            new("m", OptionKind.Int, "rows of C and op(A)", "1024", 1),
            new("n", OptionKind.Int, "columns of C and op(B)", "1024", 1),
            new("k", OptionKind.Int, "inner dimension", "1024", 1),
            new("trans-a", OptionKind.Switch, "A is stored [K,M] and used transposed"),
            new("trans-b", OptionKind.Switch, "B is stored [N,K] and used transposed"),
        ],
        "FLOPs are counted as 2*M*N*K. The peer figure (libtorch, 195 GFLOP/s) is for 1024^3 on 2 threads.");

    public static void Run(ParsedArgs args, BenchSettings s, Progress progress, BenchOutcome outcome)
    {
        int m = args.Int("m", 1024), n = args.Int("n", 1024), k = args.Int("k", 1024);
        bool ta = args.Switch("trans-a"), tb = args.Switch("trans-b");
        int lda = ta ? m : k, ldb = tb ? k : n, ldc = n;
        outcome.Title = $"gemm  C = {(ta ? "A^T" : "A")} * {(tb ? "B^T" : "B")}, M={m} N={n} K={k}, fp32, row-major";

        using var mem = new NativeBuffers(s.Seed);
        var a = mem.Random((long)m * k);
        var b = mem.Random((long)k * n);
        var c = mem.Zeros((long)m * n);
        int threads = s.Threads;

        var timing = BenchHarness.Measure("gemm", () =>
            GemmSimd.Run(c.P, ldc, a.P, lda, ta, b.P, ldb, tb, m, n, k, 1f, 0f, threads), s.Warmup, s.Runs, progress);

        outcome.Results.Add(new BenchResult("gemm", "gemm", [("m", m), ("n", n), ("k", k)], threads, timing, Metric.Gflops,
            2.0 * m * n * k, "2*M*N*K", ReferenceFigures.ComputeCeiling(threads),
            ta || tb ? null : ReferenceFigures.GemmGflops(m, n, k, threads)));
    }
}
