using System.Globalization;
using System.Runtime.Intrinsics;
using System.Text.Json;
using MicroExpr.Tensors;

namespace MicroExpr.Bench;

/// <summary>
/// The ceilings a profile's "% ceiling" column divides by, for one device: compute (GFLOP/s) for the compute-bound
/// kinds, memory (GB/s) for the rest. Null where no figure is known; <see cref="Note"/> then says why.
/// </summary>
public sealed record Ceilings(double? Gflops, double? Gbps, string Note);

/// <summary>
/// Ceilings and peer figures measured on the reference machine (2 vCPUs, AMD Zen 5, AVX-512), and the GPU ceilings for
/// the lent H100 and H200, as recorded in docs/performance.md and committed as data (<c>reference-figures.json</c>,
/// embedded in this assembly). They are not measurements of the machine this runs on: the output says so.
/// </summary>
public static class ReferenceFigures
{
    private static readonly JsonElement Root = Load();

    private static JsonElement Load()
    {
        using var stream = typeof(ReferenceFigures).Assembly.GetManifestResourceStream("reference-figures.json")
            ?? throw new InvalidOperationException("reference-figures.json is not embedded in MicroExpr.Bench");
        using var doc = JsonDocument.Parse(stream);
        return doc.RootElement.Clone();
    }

    private static double Cpu(string name) => Root.GetProperty("cpu").GetProperty(name).GetDouble();
    private static double Gpu(string name) => Root.GetProperty("gpu").GetProperty(name).GetDouble();

    /// <summary>FP32 FMA peak per thread: 16 lanes × 2 FMA pipes × 2 FLOP × clock, measured.</summary>
    public static double FmaPeakPerThreadVector512 { get; } = Cpu("fmaPeakGflopsPerThreadVector512");
    public static double FmaPeakPerThreadVector256 { get; } = Cpu("fmaPeakGflopsPerThreadVector256");

    /// <summary>Memory copy, 256 MiB, read + write bytes, 1 and 2 threads.</summary>
    public static double CopyGbps1Thread { get; } = Cpu("copyGbps1Thread");
    public static double CopyGbps2Threads { get; } = Cpu("copyGbps2Threads");

    public static string PeerLabel { get; } = Root.GetProperty("peerLabel").GetString() ?? "";

    /// <summary>FP32 (non-tensor-core) peak of an H100 SXM, GFLOP/s; the H200 has the same SMs and clocks.</summary>
    public static double HopperFp32Gflops { get; } = Gpu("hopperFp32Gflops");

    /// <summary>Device-to-device copy bandwidth, GB/s.</summary>
    public static double H100CopyGbps { get; } = Gpu("h100CopyGbps");
    public static double H200CopyGbps { get; } = Gpu("h200CopyGbps");

    /// <summary>The peer's figure for <paramref name="op"/> at exactly this shape and thread count, or null.</summary>
    public static double? Peer(string op, int[] shape, int threads)
    {
        foreach (var e in Root.GetProperty("peers").EnumerateArray())
        {
            if (e.GetProperty("op").GetString() != op || e.GetProperty("threads").GetInt32() != threads) continue;
            var s = e.GetProperty("shape").EnumerateArray().Select(v => v.GetInt32()).ToArray();
            if (s.AsSpan().SequenceEqual(shape)) return e.GetProperty("value").GetDouble();
        }
        return null;
    }

    /// <summary>The reference machine's CPU as /proc/cpuinfo names it: AMD (AuthenticAMD), family 26 (0x1A, Zen 5).</summary>
    public const string ReferenceVendor = "AuthenticAMD";
    public const int ReferenceFamily = 26;

    /// <summary>
    /// A line saying that this machine's CPU is not the reference machine's, read from <paramref name="cpuinfo"/>
    /// (/proc/cpuinfo's text: the first <c>vendor_id</c>, <c>cpu family</c> and <c>model name</c>); null when it is the
    /// same vendor and family, or when the text does not say (another OS).
    /// </summary>
    public static string? OtherCpuNote(string? cpuinfo)
    {
        if (string.IsNullOrEmpty(cpuinfo)) return null;
        string? Field(string key)
        {
            foreach (var line in cpuinfo.Split('\n'))
            {
                int colon = line.IndexOf(':');
                if (colon > 0 && line[..colon].Trim() == key) return line[(colon + 1)..].Trim();
            }
            return null;
        }
        string? vendor = Field("vendor_id");
        if (vendor == null || !int.TryParse(Field("cpu family"), NumberStyles.Integer, CultureInfo.InvariantCulture, out int family)) return null;
        if (vendor == ReferenceVendor && family == ReferenceFamily) return null;
        string name = Field("model name") is { Length: > 0 } m ? m : vendor;
        return $"note: this CPU ({name}, {vendor} family {family} = 0x{family:X2}) is not the reference machine's (AMD Zen 5, family " +
               $"{ReferenceFamily} = 0x{ReferenceFamily:X2}): the ceilings and libtorch figures above are not this machine's, so their " +
               "ratios are not comparisons; compare two builds or settings in one run instead (--compare)";
    }

    /// <summary><see cref="OtherCpuNote(string?)"/> for this machine (/proc/cpuinfo; null where it cannot be read).</summary>
    public static string? OtherCpuNote()
    {
        try
        {
            return File.Exists("/proc/cpuinfo") ? OtherCpuNote(File.ReadAllText("/proc/cpuinfo")) : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

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
    public static double? GemmGflops(int m, int n, int k, int threads) => Peer("gemm", [m, n, k], threads);
    public static double? AttentionForwardGflops(int bh, int n, int d, int threads) => Peer("attention", [bh, n, d], threads);
    public static double? LayerNormForwardGbps(int rows, int cols, int threads) => Peer("layernorm", [rows, cols], threads);
    public static double? SoftmaxForwardGbps(int rows, int cols, int threads) => Peer("softmax", [rows, cols], threads);

    static string S(int n) => n == 1 ? "" : "s";
}
