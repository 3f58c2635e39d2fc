using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MicroExpr.Kernels;

/// <summary>
/// Work that <see cref="WorkSplit"/> runs in parts: <see cref="Run"/> does items [start, end) as part
/// <paramref name="part"/>. Implemented by a struct, so that the splitter is specialised per work type by the JIT (the
/// call is direct and inlinable, as with <see cref="ISimd{TV}"/>).
/// </summary>
internal interface IPartWork
{
    void Run(int part, long start, long end);
}

/// <summary>
/// The one work splitter of the CPU kernels. It cuts <c>items</c> into <c>parts</c> contiguous, fixed ranges — part p is
/// always [items·p/parts, items·(p+1)/parts), whichever thread runs it, so per-part partial sums combine
/// deterministically — and runs them on the calling thread plus <c>threads</c> − 1 thread-pool workers, each taking the
/// next part not yet started until none is left. The caller takes parts too, so a call completes even when no pool thread
/// is free, and it returns only when every part is done. After the first call on a thread it allocates nothing: the job is
/// per thread and per work type, and the work is a struct copied into it.
/// <para>
/// Choices. One fixed part per thread (softmax, LayerNorm, the per-channel and per-plane loops) measured as fast as finer
/// parts taken dynamically on the 2-vCPU test machine; attention asks for about eight parts per thread, so that a
/// descheduled worker is ridden out. A call made from inside a part (nested) runs its parts inline on that thread, in
/// order: the same ranges, so the same result. Parallel.For was the splitter before (four copies of it): it allocates
/// per call and, with a delegate per item range, cannot inline the body.
/// </para>
/// </summary>
internal static class WorkSplit
{
    /// <summary>Runs <paramref name="work"/> over [0, items) in <paramref name="parts"/> fixed parts on up to <paramref name="threads"/> threads.</summary>
    public static void Run<TW>(ref TW work, long items, int parts, int threads) where TW : struct, IPartWork
    {
        if (items <= 0) return;
        if (parts > items) parts = (int)items;
        if (parts < 1) parts = 1;
        threads = Math.Min(threads, parts);
        var job = threads > 1 ? Job<TW>.ForThisThread() : null;
        if (job is null || job.Busy)
        {
            for (int p = 0; p < parts; p++) work.Run(p, items * p / parts, items * (p + 1) / parts);
            return;
        }
        job.Start(ref work, items, parts);
        for (int i = 1; i < threads; i++) ThreadPool.UnsafeQueueUserWorkItem(job, preferLocal: false);
        bool last = job.Work();
        job.WaitDone(last);
    }

    /// <summary>Part p of items split in parts: [start, end).</summary>
    public static (long Start, long End) Range(long items, int parts, int p) => (items * p / parts, items * (p + 1) / parts);

    private sealed class Job<TW> : IThreadPoolWorkItem where TW : struct, IPartWork
    {
        [ThreadStatic] private static Job<TW>? t_job;

        private TW _work;
        private long _items;
        private int _parts;
        private int _next = int.MaxValue / 2;
        private int _pending;
        private readonly ManualResetEventSlim _done = new(false, 200);

        /// <summary>True from Start until WaitDone: a nested call on the owning thread must not reuse the job.</summary>
        public bool Busy { get; private set; }

        public static Job<TW> ForThisThread() => t_job ??= new Job<TW>();

        public void Start(ref TW work, long items, int parts)
        {
            Busy = true;
            // Stale work items from an earlier call may still run Work(): keep _next out of range while publishing.
            Volatile.Write(ref _next, int.MaxValue / 2);
            _work = work;
            _items = items;
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
                long items = _items;
                _work.Run(p, items * p / parts, items * (p + 1) / parts);
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
            _work = default;
            Busy = false;
        }
    }
}

/// <summary>
/// Per-thread native scratch of the CPU kernels: numbered slots (<see cref="ScratchSlot"/>), each 64-byte aligned,
/// grown on demand and reused across calls, freed when the thread goes away. The slots are shared by every kernel that
/// runs on a thread, so each kernel owns its own slot numbers (a kernel may call another, e.g. convolution calls GEMM).
/// </summary>
internal static unsafe class ThreadScratch
{
    [ThreadStatic] private static Buffers? t_buffers;

    /// <summary>At least <paramref name="floats"/> floats in <paramref name="slot"/> of the calling thread (the contents are not kept when it grows).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float* Get(ScratchSlot slot, long floats) => (t_buffers ??= new Buffers()).Get((int)slot, floats);

    private sealed class Buffers
    {
        private readonly float*[] _p = new float*[(int)ScratchSlot.Count];
        private readonly long[] _n = new long[(int)ScratchSlot.Count];

        public float* Get(int slot, long count)
        {
            if (_n[slot] < count)
            {
                if (_p[slot] != null) NativeMemory.AlignedFree(_p[slot]);
                _p[slot] = null;
                _n[slot] = 0;
                long n = Math.Max(count, 1024);
                _p[slot] = (float*)NativeMemory.AlignedAlloc((nuint)(n * sizeof(float)), 64);
                _n[slot] = n;
            }
            return _p[slot];
        }

        ~Buffers()
        {
            for (int i = 0; i < _p.Length; i++)
                if (_p[i] != null) NativeMemory.AlignedFree(_p[i]);
        }
    }
}

/// <summary>The slots of <see cref="ThreadScratch"/>, one set per kernel family.</summary>
internal enum ScratchSlot
{
    /// <summary>Row kernels (LayerNorm backward): the caller's per-part partial sums.</summary>
    RowPartials,
    GemmPackA, GemmPackB,
    ConvCol, ConvSegments,
    /// <summary>Convolution's implicit phase GEMM: the tap offsets (on the calling thread) and the grid output.</summary>
    ConvOffsets, ConvOut, ConvWeightT, ConvDyT,
    /// <summary>Convolution by Winograd's F(2×2, 3×3): the transformed filters or the backward weight's partial sums (on the
    /// calling thread), the output row buffers, the backward weight's transposed dy.</summary>
    ConvWinogradU, ConvWinogradRows, ConvWinogradDy,
    /// <summary>Max pooling: the plane copy with −∞-padded rows split in stride phases, the per-chunk column indices, the
    /// per-row maxima and their indices.</summary>
    PoolRows, PoolLanes, PoolRowMax,
    Attention0, Attention1, Attention2, Attention3, Attention4, Attention5,
    Attention6, Attention7, Attention8, Attention9, Attention10, Attention11,
    Count,
}

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
/// The row kernels' use of <see cref="WorkSplit"/>: how many threads and parts rows×cols elements are worth, and a
/// row kernel fn(args, part, r0, r1) as the work.
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

    /// <summary>Runs <paramref name="fn"/>(args, part, r0, r1) over <paramref name="parts"/> fixed parts of args.Rows.</summary>
    public static void Run(delegate*<ref RowArgs, int, int, int, void> fn, ref RowArgs args, int parts, int threads)
    {
        if (parts <= 1 || threads <= 1)
        {
            fn(ref args, 0, 0, args.Rows);
            return;
        }
        var work = new RowWork { Fn = fn, Args = args };
        WorkSplit.Run(ref work, args.Rows, parts, threads);
    }

    /// <summary>Scratch of at least <paramref name="floats"/> floats owned by the calling thread (reused across calls).</summary>
    public static float* Scratch(int floats) => ThreadScratch.Get(ScratchSlot.RowPartials, floats);

    private struct RowWork : IPartWork
    {
        public delegate*<ref RowArgs, int, int, int, void> Fn;
        public RowArgs Args;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Run(int part, long start, long end) => Fn(ref Args, part, (int)start, (int)end);
    }
}
