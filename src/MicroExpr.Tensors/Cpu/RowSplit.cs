using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MicroExpr.Tensors.Cpu;

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

/// <summary>Instruction-set level of the row kernels (LayerNorm, softmax): chosen once at run time.</summary>
internal enum RowIsa { Scalar = 0, V256 = 1, V512 = 2 }

internal static class RowIsaSelect
{
    /// <summary>The best level this machine runs: Vector512 (AVX-512F masked loads), else Vector256 (AVX masked loads), else scalar.</summary>
    public static readonly RowIsa Detected =
        Vector512.IsHardwareAccelerated && Avx512F.IsSupported ? RowIsa.V512
        : Vector256.IsHardwareAccelerated && Avx.IsSupported ? RowIsa.V256
        : RowIsa.Scalar;

    /// <summary>Tests force a lower level here to cover every path on one machine; null means <see cref="Detected"/>.</summary>
    internal static RowIsa? Force;

    public static RowIsa Current => Force is { } f && f <= Detected ? f : Detected;
}

/// <summary>Masked tail loads/stores and horizontal max for the row kernels, overloaded by width.</summary>
internal static unsafe class RowSimd
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> TailMask512(int rem) => Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(rem)).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> TailMask256(int rem) => Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(rem)).AsSingle();

    /// <summary>Lanes where mask is set come from p; the others are <paramref name="merge"/> (and are not read).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadTail(float* p, Vector512<float> mask, Vector512<float> merge) => Avx512F.MaskLoad(p, mask, merge);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LoadTail(float* p, Vector256<float> mask, Vector256<float> merge) =>
        Vector256.ConditionalSelect(mask, Avx.MaskLoad(p, mask), merge);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreTail(float* p, Vector512<float> mask, Vector512<float> v) => Avx512F.MaskStore(p, mask, v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreTail(float* p, Vector256<float> mask, Vector256<float> v) => Avx.MaskStore(p, mask, v);

    /// <summary>Horizontal sum: halve the width three times, then two in-register shuffles (fewer steps than Vector512.Sum).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HSum(Vector512<float> v) => HSum(v.GetLower() + v.GetUpper());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HSum(Vector256<float> v)
    {
        var q = v.GetLower() + v.GetUpper();
        q += Vector128.Shuffle(q, Vector128.Create(2, 3, 0, 1));
        q += Vector128.Shuffle(q, Vector128.Create(1, 0, 3, 2));
        return q.ToScalar();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HMax(Vector512<float> v) => HMax(Vector256.MaxNative(v.GetLower(), v.GetUpper()));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HMax(Vector256<float> v)
    {
        var q = Vector128.MaxNative(v.GetLower(), v.GetUpper());
        q = Vector128.MaxNative(q, Vector128.Shuffle(q, Vector128.Create(2, 3, 0, 1)));
        q = Vector128.MaxNative(q, Vector128.Shuffle(q, Vector128.Create(1, 0, 3, 2)));
        return q.ToScalar();
    }

    // exp(x) = 2ⁿ·exp(r), n = round(x·log₂e), r = x − n·ln2 (Cody–Waite, two constants), exp(r) by a degree-5
    // minimax polynomial for relative error on |r| ≤ ln2/2 (Remez: 7.5e-8 exact, ≈1.9e-7 ≈ 1.5 ulp in float Horner/FMA),
    // five FMAs. NaN propagates.
    private const float Log2E = 1.44269504088896341f, Ln2Hi = 0.693359375f, Ln2Lo = -2.12194440e-4f;
    private const float C0 = 1.0000001192092896f, C1 = 0.9999997019767761f, C2 = 0.49998894333839417f,
        C3 = 0.16667574644088745f, C4 = 0.04191538318991661f, C5 = 0.008297654800117016f;

    /// <summary>
    /// Vector512 exp. 2ⁿ is applied with vscalefps, which underflows to 0 and overflows to +∞ by itself; inputs below
    /// −110 (e.g. −∞) are clamped there first so that r stays finite, and give exactly 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        x = Vector512.MaxNative(Vector512.Create(-110f), x); // x second: a NaN x is returned as is
        var n = Avx512F.RoundScale(x * Vector512.Create(Log2E), 0); // round to nearest
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Hi), x);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Lo), r);
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(C5), r, Vector512.Create(C4));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C3));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C2));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C1));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C0));
        return Avx512F.Scale(p, n);
    }

    /// <summary>Vector256 exp: 2ⁿ built in the exponent field; x clamped to [−87.3, 88.7], and x below −87.3 gives 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        var under = Vector256.LessThan(x, Vector256.Create(-87.33f));
        x = Vector256.MinNative(Vector256.Create(88.72f), Vector256.MaxNative(Vector256.Create(-87.33f), x));
        var n = Vector256.Round(x * Vector256.Create(Log2E));
        var r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Hi), x);
        r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Lo), r);
        var p = Vector256.FusedMultiplyAdd(Vector256.Create(C5), r, Vector256.Create(C4));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C3));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C2));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C1));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C0));
        // n ∈ [−126, 128]: 2ⁿ = (n + 127) << 23, except n = 128 (x ≈ 88.72), done as 2·2¹²⁷.
        var ni = Vector256.ConvertToInt32(n);
        var top = Vector256.Equals(ni, Vector256.Create(128));
        ni -= top & Vector256<int>.One;
        var pow = Vector256.ShiftLeft(ni + Vector256.Create(127), 23).AsSingle();
        p *= pow;
        p += top.AsSingle() & p;
        return Vector256.AndNot(p, under.AsSingle());
    }

    /// <summary>
    /// Natural log of a float without a libm call (a call would spill every live vector register around it):
    /// s = m·2ᵉ with m ∈ [√½, √2), ln m = 2·atanh t, t = (m − 1)/(m + 1), |t| ≤ 0.172, series to t⁹ in double
    /// (relative error &lt; 1e-8). For s ≥ the smallest normal float; +∞ and NaN are returned as they are.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Log(float s)
    {
        int bits = BitConverter.SingleToInt32Bits(s);
        if ((uint)bits >= 0x7F800000u) return s;
        // Branch-free split (as in musl logf): subtracting the bits of √½ makes the exponent field count from √½.
        int e = (bits - 0x3F3504F3) >> 23;
        double m = BitConverter.Int32BitsToSingle(bits - (e << 23));
        double t = (m - 1) / (m + 1), t2 = t * t;
        double series = 1 + t2 * (1.0 / 3 + t2 * (1.0 / 5 + t2 * (1.0 / 7 + t2 * (1.0 / 9))));
        return (float)(e * 0.6931471805599453 + 2 * t * series);
    }
}
