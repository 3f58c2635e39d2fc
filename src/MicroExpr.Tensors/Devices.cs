using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using MicroExpr.Tensors.Ilgpu;

namespace MicroExpr.Tensors;

/// <summary>A device found on this machine, for <c>microexpr devices</c>: whether it can run, and why not.</summary>
/// <param name="Name">The name <see cref="Devices.Resolve"/> takes (<c>cpu</c>, <c>ilgpu-cpu</c>, <c>cuda</c>, <c>cuda:1</c>).</param>
/// <param name="Description">Hardware in words (processor count, GPU name and compute capability, memory).</param>
/// <param name="Reason">Why it cannot be used; null when usable.</param>
public sealed record DeviceInfo(string Name, DeviceKind Kind, bool Usable, string Description, string? Reason);

/// <summary>
/// Device choice by name: <c>auto</c> (CUDA when present and usable, else the SIMD CPU backend — never
/// ILGPU's CPU accelerator), <c>cpu</c>, <c>cuda</c> (fails with the reason when CUDA cannot be used) and
/// <c>ilgpu-cpu</c> (ILGPU's CPU accelerator with 32-lane warps: the GPU kernels on the CPU, for tests).
/// One ILGPU context serves every ILGPU device; it lives until process exit, where it is disposed.
/// A CUDA device is "usable" when an accelerator can be created on it and a one-element kernel runs and
/// returns the right value (this catches drivers or architectures ILGPU cannot compile for).
/// </summary>
public static class Devices
{
    /// <summary>Lanes per warp of the <c>ilgpu-cpu</c> accelerator (as on NVIDIA GPUs, so warp-level code runs as it would there).</summary>
    public const int IlgpuCpuWarpSize = 32;

    /// <summary>Warps per group of the <c>ilgpu-cpu</c> accelerator: groups of up to 32·8 = 256 threads (one OS thread per lane).</summary>
    public const int IlgpuCpuWarpsPerGroup = 8;

    private static readonly object Gate = new();
    private static Context? context;
    private static string? contextCudaError;
    private static Device? ilgpuCpu;
    private static Accelerator? ilgpuCpuAccelerator;
    private static IlgpuBackend? ilgpuCpuBackend;
    private static Device? cuda;
    private static Accelerator? cudaAccelerator;
    private static IlgpuBackend? cudaBackend;
    private static string? cudaReason;
    private static bool cudaProbed;
    private static bool exitHooked;

    /// <summary>Why the last <c>auto</c> resolution fell back to the CPU (one line); null when it took CUDA.</summary>
    public static string? LastFallbackReason { get; private set; }

    /// <summary>The device for a name: auto, cpu, cuda, ilgpu-cpu (case-insensitive).</summary>
    public static Device Resolve(string name)
    {
        switch (name.Trim().ToLowerInvariant())
        {
            case "cpu":
                return Device.Cpu;
            case "ilgpu-cpu":
                return IlgpuCpu;
            case "cuda":
            case "cuda:0":
                return TryCuda(out string? why) ?? throw new InvalidOperationException($"cuda: {why}");
            case "auto":
                var d = TryCuda(out string? reason);
                LastFallbackReason = d is null ? reason : null;
                return d ?? Device.Cpu;
            default:
                throw new ArgumentException($"unknown device '{name}': expected auto, cpu, cuda or ilgpu-cpu", nameof(name));
        }
    }

    /// <summary>ILGPU's CPU accelerator (32-lane warps) running the device kernels.</summary>
    public static Device IlgpuCpu
    {
        get
        {
            lock (Gate)
            {
                if (ilgpuCpu != null) return ilgpuCpu;
                var ctx = GetContext();
                var acc = ctx.GetCPUDevice(0).CreateAccelerator(ctx);
                ilgpuCpuAccelerator = acc;
                Device? dev = null;
                dev = Device.Create(DeviceKind.IlgpuCpu, "ilgpu-cpu", () => ilgpuCpuBackend = new IlgpuBackend(acc, () => dev!));
                return ilgpuCpu = dev;
            }
        }
    }

    /// <summary>The CUDA device 0 when usable; otherwise null and a one-line reason.</summary>
    public static Device? TryCuda(out string? reason)
    {
        lock (Gate)
        {
            if (!cudaProbed)
            {
                cudaProbed = true;
                ProbeCuda();
            }
            reason = cudaReason;
            return cuda;
        }
    }

    /// <summary>Every device on this machine, usable or not (CUDA devices are probed on the first call).</summary>
    public static IReadOnlyList<DeviceInfo> List()
    {
        var list = new List<DeviceInfo>
        {
            new("cpu", DeviceKind.Cpu, true,
                $"SIMD CPU backend, {Environment.ProcessorCount} threads, {(System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? "Vector512" : System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated ? "Vector256" : "Vector128")}",
                null),
        };
        string? ilgpuReason = null;
        try { _ = IlgpuCpu; }
        catch (Exception e) { ilgpuReason = OneLine(e); }
        list.Add(new("ilgpu-cpu", DeviceKind.IlgpuCpu, ilgpuReason is null,
            $"ILGPU CPU accelerator, {IlgpuCpuWarpSize}-lane warps, groups of up to {IlgpuCpuWarpSize * IlgpuCpuWarpsPerGroup} threads (tests; slow)",
            ilgpuReason));

        TryCuda(out string? reason);
        lock (Gate)
        {
            var ctx = context;
            var found = new List<CudaDevice>();
            if (ctx != null)
            {
                var all = ctx.GetCudaDevices();
                for (int i = 0; i < all.Count; i++) found.Add(all[i]);
            }
            if (found.Count == 0)
            {
                list.Add(new("cuda", DeviceKind.Cuda, false, "no CUDA device", reason));
            }
            for (int i = 0; i < found.Count; i++)
            {
                var d = found[i];
                string desc = $"{d.Name}, compute capability {d.Architecture?.ToString() ?? "unknown"}, {d.MemorySize / (1024 * 1024)} MiB";
                if (i == 0) list.Add(new("cuda", DeviceKind.Cuda, cuda != null, desc, cuda != null ? null : reason));
                else list.Add(new($"cuda:{i}", DeviceKind.Cuda, false, desc, "not used: the engine runs on CUDA device 0"));
            }
        }
        return list;
    }

    private static Context GetContext()
    {
        if (context != null) return context;
        var cpu = new CPUDevice(IlgpuCpuWarpSize, IlgpuCpuWarpsPerGroup, 1);
        // Profiling is always on, so OpProfiler can be switched on at any time in a process whose context already
        // exists. It costs nothing while no marker is asked for: in ILGPU 1.5.3 the flag only lets
        // AcceleratorStream.AddProfilingMarker run. CUDA streams are created as without it (a marker is a CUDA
        // event, created and recorded only when the profiler asks for one), the CPU accelerator's markers are host
        // timestamps, and only OpenCL would change its queues (CL_QUEUE_PROFILING_ENABLE); this engine creates no
        // OpenCL accelerator.
        // O2: the kernels are compiled once per process, so ILGPU's most thorough IR optimisation costs start-up time
        // only; the GPU check harness uses the same level, so its kernel timings are the engine's.
        try
        {
            context = Context.Create(b => b.CPU(cpu).Cuda().EnableAlgorithms().Profiling().Optimize(OptimizationLevel.O2));
        }
        catch (Exception e)
        {
            // A broken CUDA installation must not take the CPU accelerator down with it.
            contextCudaError = "the CUDA runtime could not be initialised: " + OneLine(e);
            context = Context.Create(b => b.CPU(cpu).EnableAlgorithms().Profiling().Optimize(OptimizationLevel.O2));
        }
        if (!exitHooked)
        {
            exitHooked = true;
            AppDomain.CurrentDomain.ProcessExit += (_, _) => Shutdown();
        }
        return context;
    }

    private static void ProbeCuda()
    {
        Context ctx;
        try { ctx = GetContext(); }
        catch (Exception e)
        {
            cudaReason = "ILGPU could not start: " + OneLine(e);
            return;
        }
        if (contextCudaError != null)
        {
            cudaReason = contextCudaError;
            return;
        }
        var devices = ctx.GetCudaDevices();
        if (devices.Count == 0)
        {
            cudaReason = "no CUDA device found (no NVIDIA driver, or no GPU visible to this process)";
            return;
        }
        var cd = devices[0];
        Accelerator? acc = null;
        IlgpuBackend? backend = null;
        try
        {
            acc = cd.CreateAccelerator(ctx);
            Device? dev = null;
            backend = new IlgpuBackend(acc, () => dev!);
            var b = backend;
            dev = Device.Create(DeviceKind.Cuda, "cuda", () => b);
            // Smoke test: one kernel compiled for this GPU, run, and read back.
            var s = backend.Allocate(1, zero: false);
            backend.Fill(s, 1.5f);
            Span<float> r = stackalloc float[1];
            backend.Download(r, s);
            s.Release();
            if (r[0] != 1.5f) throw new InvalidOperationException($"smoke kernel returned {r[0]}, expected 1.5");
            cuda = dev;
            cudaAccelerator = acc;
            cudaBackend = backend;
        }
        catch (Exception e)
        {
            cudaReason = $"CUDA device '{cd.Name}' ({cd.Architecture?.ToString() ?? "unknown architecture"}) cannot be used: {OneLine(e)}";
            try { backend?.Dispose(); } catch (Exception) { /* already failing */ }
            try { acc?.Dispose(); } catch (Exception) { /* already failing */ }
        }
    }

    private static string OneLine(Exception e)
    {
        var inner = e;
        while (inner is TypeInitializationException or System.Reflection.TargetInvocationException && inner.InnerException != null)
            inner = inner.InnerException;
        string msg = inner.Message.ReplaceLineEndings(" ").Trim();
        return $"{inner.GetType().Name}: {msg}";
    }

    private static void Shutdown()
    {
        lock (Gate)
        {
            try
            {
                cudaBackend?.Dispose();
                cudaAccelerator?.Dispose();
                ilgpuCpuBackend?.Dispose();
                ilgpuCpuAccelerator?.Dispose();
                context?.Dispose();
            }
            catch (Exception)
            {
                // Process exit: nothing left to report to.
            }
            cuda = null;
            ilgpuCpu = null;
            context = null;
        }
    }
}
