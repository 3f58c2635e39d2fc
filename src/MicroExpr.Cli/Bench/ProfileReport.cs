using System.Globalization;
using MicroExpr.Tensors;

namespace MicroExpr.Cli.Bench;

/// <summary>
/// The <c>--profile</c> table: every backend op kind with calls, total and mean time, share of the profiled wall
/// time, achieved GFLOP/s and GB/s, and the share of this machine's ceiling — FMA peak (246 GFLOP/s per thread,
/// Vector512) for the compute-bound kinds (gemm, attention), copy bandwidth (39 GB/s, 2 threads) for the rest
/// (data that stays in cache can go past it). Host clocks: the CPU backend's calls are synchronous.
/// </summary>
internal static class ProfileReport
{
    public static bool ComputeBound(string kind) => kind.StartsWith("gemm", StringComparison.Ordinal) || kind.StartsWith("attention", StringComparison.Ordinal);

    public static void Write(TextWriter o, IReadOnlyList<OpStat> stats, double wallMs, int threads, string what)
    {
        double flopCeiling = ReferenceFigures.ComputeCeiling(threads)?.Value ?? 246.0 * threads, byteCeiling = ReferenceFigures.MemoryCeiling(threads).Value;
        double opsMs = stats.Sum(s => s.TotalMs);
        string F(double v, int d = 1) => v.ToString("F" + d, CultureInfo.InvariantCulture);
        o.WriteLine();
        o.WriteLine($"profile: {what}; {F(wallMs)} ms wall, {F(opsMs)} ms inside backend ops ({F(100 * opsMs / Math.Max(wallMs, 1e-9))} %)");
        o.WriteLine($"{"op",-22} {"calls",7} {"total ms",10} {"mean us",10} {"share",7} {"GFLOP/s",9} {"GB/s",8} {"% ceiling",10}");
        foreach (var s in stats)
        {
            bool compute = ComputeBound(s.Kind);
            double pct = compute ? 100 * s.Gflops / flopCeiling : 100 * s.Gbps / byteCeiling;
            o.WriteLine($"{s.Kind,-22} {s.Calls,7} {F(s.TotalMs, 2),10} {F(s.MeanUs),10} {F(100 * s.TotalMs / Math.Max(wallMs, 1e-9)) + " %",7} " +
                        $"{(s.Flops > 0 ? F(s.Gflops) : "-"),9} {F(s.Gbps),8} {F(pct) + (compute ? " F" : " M"),10}");
        }
        o.WriteLine($"% ceiling: F = of the FMA peak ({F(flopCeiling, 0)} GFLOP/s at {threads} threads), M = of copy bandwidth ({F(byteCeiling, 0)} GB/s; cached data can exceed it).");
        o.WriteLine("The rest of the wall time is outside the backend: the tape, allocation, host copies, the optimizer's bookkeeping.");
    }
}
