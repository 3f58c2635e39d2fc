using System.Globalization;
using System.Runtime.Intrinsics;
using MicroExpr.Tensors;

namespace MicroExpr.Cli.Bench;

/// <summary>
/// The ceilings a profile's "% ceiling" column divides by, for one device: compute (GFLOP/s) for the compute-bound
/// kinds, memory (GB/s) for the rest. Null where no figure is known; <see cref="Note"/> then says why.
/// </summary>
internal sealed record Ceilings(double? Gflops, double? Gbps, string Note);

/// <summary>
/// Ceilings and peer figures measured on the reference machine (2 vCPUs, AMD Zen 5, AVX-512) and recorded in
/// performance.md, and the GPU ceilings performance.md gives for the lent H100 and H200. They are constants, not
/// measurements of the machine this runs on: the output says so.
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

    /// <summary>FP32 (non-tensor-core) peak of an H100 SXM, GFLOP/s; the H200 has the same SMs and clocks.</summary>
    public const double HopperFp32Gflops = 67_000;

    /// <summary>Device-to-device copy bandwidth, GB/s (performance.md).</summary>
    public const double H100CopyGbps = 3_000;
    public const double H200CopyGbps = 4_300;

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

    /// <summary>
    /// The ceilings of a device: the reference machine's FMA peak and copy bandwidth for <c>cpu</c>; for <c>cuda</c>,
    /// performance.md's figures when the GPU's name says H100 (SXM: not PCIe or NVL, whose figures differ) or H200,
    /// none otherwise; none for <c>ilgpu-cpu</c>, whose times say nothing about a GPU.
    /// </summary>
    public static Ceilings For(Device device, int threads)
    {
        string F(double v) => v.ToString("0", CultureInfo.InvariantCulture);
        switch (device.Kind)
        {
            case DeviceKind.Cpu:
                var compute = ComputeCeiling(threads);
                var memory = MemoryCeiling(threads);
                return new(compute?.Value, memory.Value,
                    (compute is { } c ? $"F = of the FMA peak ({F(c.Value)} GFLOP/s at {threads} threads), " : "F: no FMA peak known (no Vector256), ") +
                    $"M = of copy bandwidth ({F(memory.Value)} GB/s; cached data can exceed it); reference-machine figures (performance.md)");
            case DeviceKind.Cuda:
                return ForCuda(device.Backend.AcceleratorName);
            default:
                return new(null, null, "not meaningful on ilgpu-cpu (the GPU kernels on host threads, for tests): omitted");
        }
    }

    /// <summary>A CUDA GPU's ceilings by the name its driver reports.</summary>
    public static Ceilings ForCuda(string name)
    {
        bool h200 = name.Contains("H200", StringComparison.OrdinalIgnoreCase);
        bool h100 = name.Contains("H100", StringComparison.OrdinalIgnoreCase)
            && !name.Contains("PCIe", StringComparison.OrdinalIgnoreCase) && !name.Contains("NVL", StringComparison.OrdinalIgnoreCase);
        if (!h200 && !h100)
            return new(null, null, $"omitted: no ceilings known for {name} (performance.md gives the H100 SXM and the H200)");
        double copy = h200 ? H200CopyGbps : H100CopyGbps;
        string F(double v) => v.ToString("0", CultureInfo.InvariantCulture);
        return new(HopperFp32Gflops, copy,
            $"F = of the FP32 peak ({F(HopperFp32Gflops / 1000)} TFLOP/s, no tensor cores), M = of device copy bandwidth ({F(copy)} GB/s); {name}, figures from performance.md");
    }

    // libtorch 2.10 (MKL) on the reference machine, 2 threads, forward only, at exactly these shapes.
    public static double? GemmGflops(int m, int n, int k, int threads) => m == 1024 && n == 1024 && k == 1024 && threads == 2 ? 195 : null;
    public static double? AttentionForwardGflops(int bh, int n, int d, int threads) => bh == 192 && n == 50 && d == 64 && threads == 2 ? 72 : null;
    public static double? LayerNormForwardGbps(int rows, int cols, int threads) => rows == 3200 && cols == 192 && threads == 2 ? 36.8 : null;
    public static double? SoftmaxForwardGbps(int rows, int cols, int threads) => rows == 9600 && cols == 50 && threads == 2 ? 16.2 : null;

    static string S(int n) => n == 1 ? "" : "s";
}
