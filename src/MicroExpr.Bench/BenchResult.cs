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

    /// <summary><c>--version</c>: the kernel versions side by side (checked, then timed), instead of <see cref="Results"/>.</summary>
    public List<VersionResult> Versions { get; } = [];
}

/// <summary>
/// One version of a kernel in <c>bench OP --version</c>: its id (v1, v2, …) and what it does in a few words, the file it
/// lives in, its largest error against the op's double reference (<see cref="MaxError"/>, max over elements of
/// |x − ref|, over <see cref="CheckedElements"/> elements) and whether every element was within
/// atol + rtol·|ref| (<see cref="Passed"/>). <see cref="Timed"/> is its timing when it passed and is timed here; null with
/// <see cref="NotTimed"/> saying why (it failed the check; ILGPU's CPU accelerator, whose times are not speeds).
/// </summary>
public sealed record VersionResult(string Op, string Version, string Label, string File, double MaxError, long CheckedElements,
    long TotalElements, bool Passed, BenchResult? Timed, string? NotTimed);
