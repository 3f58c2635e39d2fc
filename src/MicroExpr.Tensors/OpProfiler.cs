using System.Diagnostics;

namespace MicroExpr.Tensors;

/// <summary>One op kind's totals in a profile.</summary>
public sealed record OpStat(string Kind, long Calls, double TotalMs, double Flops, double Bytes)
{
    public double MeanUs => Calls == 0 ? 0 : TotalMs * 1000 / Calls;
    public double Gflops => TotalMs <= 0 ? 0 : Flops / (TotalMs * 1e-3) / 1e9;
    public double Gbps => TotalMs <= 0 ? 0 : Bytes / (TotalMs * 1e-3) / 1e9;
}

/// <summary>
/// Per-op-kind timing of the backend: when <see cref="Enabled"/>, every backend primitive (gemm, attention,
/// layernorm_backward, binary, …) adds its wall time, its FLOPs and the bytes it reads and writes. Host clocks:
/// right for the CPU backend, whose calls are synchronous. Off by default; when off, a call costs one branch.
/// Ops are issued from one thread at a time (the thread that runs the step), so no locking is needed.
/// </summary>
public static class OpProfiler
{
    private static readonly Dictionary<string, (long Calls, long Ticks, double Flops, double Bytes)> Stats = new();

    public static bool Enabled { get; set; }

    public static Scope Measure(string kind, double flops, double bytes) =>
        Enabled ? new Scope(kind, flops, bytes, Stopwatch.GetTimestamp()) : default;

    public static void Reset() => Stats.Clear();

    /// <summary>The totals so far, slowest kind first.</summary>
    public static IReadOnlyList<OpStat> Snapshot() => Stats
        .Select(kv => new OpStat(kv.Key, kv.Value.Calls, kv.Value.Ticks * 1000.0 / Stopwatch.Frequency, kv.Value.Flops, kv.Value.Bytes))
        .OrderByDescending(s => s.TotalMs).ToList();

    public readonly struct Scope(string? kind, double flops, double bytes, long start) : IDisposable
    {
        public void Dispose()
        {
            if (kind is null) return;
            long ticks = Stopwatch.GetTimestamp() - start;
            Stats.TryGetValue(kind, out var s);
            Stats[kind] = (s.Calls + 1, s.Ticks + ticks, s.Flops + flops, s.Bytes + bytes);
        }
    }
}
