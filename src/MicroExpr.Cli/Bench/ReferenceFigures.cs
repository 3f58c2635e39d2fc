using System.Runtime.Intrinsics;

namespace MicroExpr.Cli.Bench;

/// <summary>
/// Ceilings and peer figures measured on the reference machine (2 vCPUs, AMD Zen 5, AVX-512) and recorded in
/// performance.md. They are constants, not measurements of the machine this runs on: the output says so.
/// </summary>
internal static class ReferenceFigures
{
    /// <summary>FP32 FMA peak per thread: 16 lanes × 2 FMA pipes × 2 FLOP × clock, measured.</summary>
    public const double FmaPeakPerThreadVector512 = 246;
    public const double FmaPeakPerThreadVector256 = 123;

    /// <summary>Memory copy, 256 MiB, read + write bytes, 1 and 2 threads.</summary>
    public const double CopyGbps1Thread = 35;
    public const double CopyGbps2Threads = 39;

    public const string PeerLabel = "libtorch (performance.md)";

    /// <summary>Compute ceiling for <paramref name="threads"/> threads with the widest accelerated vector, or null when neither is.</summary>
    public static (double Value, string Label)? ComputeCeiling(int threads)
    {
        if (Vector512.IsHardwareAccelerated)
            return (FmaPeakPerThreadVector512 * threads,
                $"FP32 FMA peak {FmaPeakPerThreadVector512:0} GFLOP/s per thread (Vector512) x {threads} thread{S(threads)}");
        if (Vector256.IsHardwareAccelerated)
            return (FmaPeakPerThreadVector256 * threads,
                $"FP32 FMA peak {FmaPeakPerThreadVector256:0} GFLOP/s per thread (Vector256) x {threads} thread{S(threads)}");
        return null;
    }

    /// <summary>Memory ceiling: the measured copy bandwidth (one thread, or two and more: the machine has two).</summary>
    public static (double Value, string Label) MemoryCeiling(int threads) => threads <= 1
        ? (CopyGbps1Thread, "memory copy bandwidth, 256 MiB, read + write bytes, 1 thread")
        : (CopyGbps2Threads, "memory copy bandwidth, 256 MiB, read + write bytes, 2 threads");

    // libtorch 2.10 (MKL) on the reference machine, 2 threads, forward only, at exactly these shapes.
    public static double? GemmGflops(int m, int n, int k, int threads) => m == 1024 && n == 1024 && k == 1024 && threads == 2 ? 195 : null;
    public static double? AttentionForwardGflops(int bh, int n, int d, int threads) => bh == 192 && n == 50 && d == 64 && threads == 2 ? 72 : null;
    public static double? LayerNormForwardGbps(int rows, int cols, int threads) => rows == 3200 && cols == 192 && threads == 2 ? 36.8 : null;
    public static double? SoftmaxForwardGbps(int rows, int cols, int threads) => rows == 9600 && cols == 50 && threads == 2 ? 16.2 : null;

    static string S(int n) => n == 1 ? "" : "s";
}
