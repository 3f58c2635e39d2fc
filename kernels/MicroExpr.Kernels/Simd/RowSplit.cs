using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MicroExpr.Kernels;

/// <summary>Pointer and scalar arguments of a row kernel (LayerNorm, softmax), passed by reference to every part.</summary>
internal unsafe struct RowArgs
{
    public float* P0, P1, P2, P3, P4, P5, P6, P7;
    public int Rows, Cols;
    public float F0;
    /// <summary>Per-part scratch (parts 1..n-1), <see cref="ScratchStride"/> floats each; null when running inline.</summary>
    public float* Scratch;
    public int ScratchStride;
}

/// <summary>
/// Splits <c>rows</c> into contiguous, deterministic parts and runs a row kernel over them on the calling thread plus
/// thread-pool workers, without allocating after the first call on a thread. Part p always covers the same rows
/// [rows·p/parts, rows·(p+1)/parts) whichever thread runs it, so per-part partial sums combine deterministically.
/// The caller takes parts too, so the call completes even when no pool thread is free.
/// </summary>
internal static unsafe class RowSplit
{
    /// <summary>Below this many elements per thread the call runs inline: waking a worker costs more than it saves.</summary>
    public const long MinElementsPerThread = 16 * 1024;

    /// <summary>
    /// Parts per thread. Finer parts (4 per thread, taken dynamically) were tried to ride out a descheduled worker on a
    /// busy machine; on the 2-vCPU test machine one part per thread measured as fast or faster (LayerNorm backward
    /// ≈100 µs vs ≈115 µs at 2 threads), so the split is one fixed part per thread; the caller still takes any part
    /// that no worker has started.
    /// </summary>
    public const int PartsPerThread = 1;

    /// <summary>How many threads to use for rows×cols elements and a thread budget (1: run inline).</summary>
    public static int Threads(int rows, int cols, int threads)
    {
        if (threads <= 1 || rows <= 1) return 1;
        long t = Math.Min(threads, (long)rows * cols / MinElementsPerThread);
        return (int)Math.Max(1, Math.Min(t, rows));
    }

    /// <summary>How many parts (fixed row ranges) to split rows into for <paramref name="threads"/> threads.</summary>
    public static int Parts(int rows, int threads) => threads <= 1 ? 1 : Math.Min(rows, threads * PartsPerThread);

    /// <summary>
    /// Runs <paramref name="fn"/>(args, part, r0, r1) over <paramref name="parts"/> fixed parts of args.Rows, on the
    /// caller plus <paramref name="threads"/> − 1 pool workers, each taking the next part until none is left.
    /// </summary>
    public static void Run(delegate*<ref RowArgs, int, int, int, void> fn, ref RowArgs args, int parts, int threads)
    {
        if (parts <= 1 || threads <= 1)
        {
            fn(ref args, 0, 0, args.Rows);
            return;
        }
        var job = Job.ForThisThread();
        job.Start(fn, ref args, parts);
        for (int i = 1; i < threads; i++) ThreadPool.UnsafeQueueUserWorkItem(job, preferLocal: false);
        bool last = job.Work();
        job.WaitDone(last);
    }

    /// <summary>Scratch of at least <paramref name="floats"/> floats owned by the calling thread (reused across calls).</summary>
    public static float* Scratch(int floats) => Job.ForThisThread().GetScratch(floats);

    private sealed class Job : IThreadPoolWorkItem
    {
        [ThreadStatic] private static Job? t_job;

        private delegate*<ref RowArgs, int, int, int, void> _fn;
        private RowArgs _args;
        private int _parts;
        private int _next = int.MaxValue / 2;
        private int _pending;
        private readonly ManualResetEventSlim _done = new(false, 200);
        private float[]? _scratch;

        public static Job ForThisThread() => t_job ??= new Job();

        public float* GetScratch(int floats)
        {
            if (_scratch is null || _scratch.Length < floats)
                _scratch = GC.AllocateUninitializedArray<float>(Math.Max(floats, 1024), pinned: true);
            return (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_scratch));
        }

        public void Start(delegate*<ref RowArgs, int, int, int, void> fn, ref RowArgs args, int parts)
        {
            // Stale work items from an earlier call may still run Work(): keep _next out of range while publishing.
            Volatile.Write(ref _next, int.MaxValue / 2);
            _fn = fn;
            _args = args;
            _parts = parts;
            _pending = parts;
            _done.Reset();
            Volatile.Write(ref _next, 0);
        }

        public void Execute() => Work();

        /// <summary>Takes parts until none is left; true when this caller finished the last pending part.</summary>
        public bool Work()
        {
            bool last = false;
            while (true)
            {
                int p = Interlocked.Increment(ref _next) - 1;
                int parts = Volatile.Read(ref _parts);
                if ((uint)p >= (uint)parts) return last;
                int rows = _args.Rows;
                int r0 = (int)((long)rows * p / parts), r1 = (int)((long)rows * (p + 1) / parts);
                _fn(ref _args, p, r0, r1);
                if (Interlocked.Decrement(ref _pending) == 0)
                {
                    last = true;
                    _done.Set();
                }
            }
        }

        /// <summary>
        /// Waits for the worker that finishes the last part. Only the caller that takes _pending to zero sets _done, so
        /// when another thread did, waiting for its Set (rather than polling _pending) guarantees that no Set from this
        /// job can land after the next call's Reset.
        /// </summary>
        public void WaitDone(bool lastByCaller)
        {
            if (!lastByCaller) _done.Wait();
            Volatile.Write(ref _next, int.MaxValue / 2);
        }
    }
}
