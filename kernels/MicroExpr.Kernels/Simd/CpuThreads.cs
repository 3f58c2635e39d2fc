namespace MicroExpr.Kernels;

/// <summary>Splits a range of work items over the CPU backend's threads when the work is large enough.</summary>
public static class CpuThreads
{
    /// <summary>Threads the CPU backend uses (default: all logical cores).</summary>
    public static int Count { get; set; } = Environment.ProcessorCount;

    /// <summary>
    /// Runs body(start, end) over [0, n) in at most <see cref="Count"/> contiguous chunks of at least
    /// <paramref name="minChunk"/> items; small work runs inline on the calling thread.
    /// Chunk boundaries depend only on n, minChunk and Count, so results are deterministic.
    /// </summary>
    public static void For(int n, int minChunk, Action<int, int> body)
    {
        int chunks = Math.Min(Count, Math.Max(1, n / Math.Max(1, minChunk)));
        if (chunks <= 1)
        {
            if (n > 0) body(0, n);
            return;
        }
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = chunks }, c =>
        {
            int start = (int)((long)n * c / chunks), end = (int)((long)n * (c + 1) / chunks);
            if (end > start) body(start, end);
        });
    }
}
