namespace MicroExpr.Bench;

/// <summary>Whether a benchmark is judged by arithmetic (GFLOP/s) or by memory traffic (GB/s).</summary>
public enum Metric { Gflops, Gbps }

/// <summary>
/// One timed kernel call. <see cref="WorkPerCall"/> is FLOPs (for <see cref="Metric.Gflops"/>) or bytes (for
/// <see cref="Metric.Gbps"/>) as described by <see cref="Counting"/>; the rate is work / median time.
/// </summary>
public sealed record BenchResult(
    string Name,
    string Title,
    IReadOnlyList<(string Key, int Value)> Shape,
    int Threads,
    Timing Timing,
    Metric Metric,
    double WorkPerCall,
    string Counting,
    (double Value, string Label)? Ceiling,
    double? Peer)
{
    /// <summary>GFLOP/s or GB/s at the median time (1e9 per second).</summary>
    public double Rate => WorkPerCall / (Timing.MedianMs * 1e-3) / 1e9;
    public double? CeilingPercent => Ceiling is { } c ? 100 * Rate / c.Value : null;
    public double? PeerRatio => Peer is { } p ? Rate / p : null;
    public string Unit => Metric == Metric.Gflops ? "GFLOP/s" : "GB/s";
}

/// <summary>What one <c>bench</c> command produced: filled as it goes, so passes timed before a failure still print.</summary>
public sealed class BenchOutcome
{
    public string Title { get; set; } = "";
    public List<BenchResult> Results { get; } = [];
}
