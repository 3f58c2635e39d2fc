namespace MicroExpr.Kernels;

/// <summary>The CPU backend's thread budget, and <see cref="WorkSplit"/> for a delegate body.</summary>
public static class CpuThreads
{
    /// <summary>Threads the CPU backend uses (default: all logical cores).</summary>
    public static int Count { get; set; } = Environment.ProcessorCount;

    /// <summary>
    /// Runs body(start, end) over [0, n) in at most <see cref="Count"/> contiguous chunks of at least
    /// <paramref name="minChunk"/> items (<see cref="WorkSplit"/>); small work runs inline on the calling thread.
    /// Chunk boundaries depend only on n, minChunk and Count, so results are deterministic.
    /// </summary>
    public static void For(int n, int minChunk, Action<int, int> body) =>
        For(n, Math.Min(Count, Math.Max(1, n / Math.Max(1, minChunk))), body, threads: Count);

    /// <summary>body(start, end) over [0, n) in <paramref name="chunks"/> equal fixed chunks on up to <paramref name="threads"/> threads.</summary>
    public static void For(int n, int chunks, Action<int, int> body, int threads)
    {
        if (n <= 0) return;
        if (chunks <= 1 || threads <= 1)
        {
            body(0, n);
            return;
        }
        var work = new DelegateWork { Body = body };
        WorkSplit.Run(ref work, n, chunks, threads);
    }

    private struct DelegateWork : IPartWork
    {
        public Action<int, int> Body;
        public void Run(int part, long start, long end)
        {
            if (end > start) Body((int)start, (int)end);
        }
    }
}
