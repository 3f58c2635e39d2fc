using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace MicroExpr.Kernels;

/// <summary>One ILGPU accelerator as seen by this process.</summary>
/// <param name="Kind">"cuda", "opencl" or "ilgpu-cpu".</param>
/// <param name="Name">The device name the driver reports.</param>
/// <param name="MemoryBytes">Device memory in bytes (the CPU accelerator reports a nominal figure).</param>
/// <param name="WarpSize">Threads per warp (NVIDIA) or sub-group.</param>
/// <param name="MaxGroupSize">Most threads in one group (CUDA block).</param>
/// <param name="Usable">An accelerator could be created on it (and, when probed, a tiny kernel ran correctly).</param>
/// <param name="Reason">One line saying why it is not usable; null when it is.</param>
/// <param name="Detail">Extra facts worth a glance (compute capability, driver), or a note such as "testing/teaching".</param>
public sealed record AcceleratorInfo(
    string Kind, string Name, long MemoryBytes, int WarpSize, int MaxGroupSize, bool Usable, string? Reason, string? Detail);

/// <summary>
/// What <see cref="AcceleratorCatalog.List"/> found: the accelerators, and <see cref="Error"/> when the enumeration
/// failed in part (only the CPU accelerator listed) or entirely (none listed).
/// </summary>
public sealed record AcceleratorCatalogResult(IReadOnlyList<AcceleratorInfo> Accelerators, string? Error);

/// <summary>
/// Lists the ILGPU accelerators of this machine. Never throws: a missing or broken driver becomes a one-line
/// reason on the device (or <see cref="AcceleratorCatalogResult.Error"/> when ILGPU itself cannot start).
/// </summary>
public static class AcceleratorCatalog
{
    /// <summary>Kind name of ILGPU's CPU accelerator: it runs kernels on host threads, for tests and teaching, not speed.</summary>
    public const string CpuKind = "ilgpu-cpu";

    /// <summary>
    /// Enumerates every accelerator ILGPU supports here and tries to create each one. With <paramref name="probe"/>,
    /// also compiles and runs a tiny kernel (i → 2·i + 1 over 64 ints) and checks its result: this catches
    /// devices that initialise but cannot run generated code (e.g. an architecture this ILGPU does not know).
    /// </summary>
    public static AcceleratorCatalogResult List(bool probe = false)
    {
        Context context;
        string? error = null;
        try
        {
            context = Context.Create(b => b.AllAccelerators());
        }
        catch (Exception e)
        {
            // A broken GPU driver can fail the whole enumeration: still list the CPU accelerator, and say why.
            error = $"GPU enumeration failed, only the CPU accelerator is listed: {OneLine(e)}";
            try
            {
                context = Context.Create(b => b.CPU());
            }
            catch (Exception cpu)
            {
                return new AcceleratorCatalogResult([], $"ILGPU could not start: {OneLine(e)}; CPU only: {OneLine(cpu)}");
            }
        }

        using (context)
        {
            var list = new List<AcceleratorInfo>();
            foreach (var device in context.Devices)
                list.Add(Describe(context, device, probe));
            return new AcceleratorCatalogResult(list, error);
        }
    }

    static AcceleratorInfo Describe(Context context, Device device, bool probe)
    {
        string kind = device.AcceleratorType switch
        {
            AcceleratorType.Cuda => "cuda",
            AcceleratorType.OpenCL => "opencl",
            AcceleratorType.CPU => CpuKind,
            var other => other.ToString().ToLowerInvariant(),
        };
        string? detail = device.AcceleratorType == AcceleratorType.CPU ? "testing/teaching" : null;
        string name = "?";
        long memory = 0;
        int warp = 0, group = 0;
        try
        {
            name = device.Name;
            memory = device.MemorySize;
            warp = device.WarpSize;
            group = device.MaxNumThreadsPerGroup;
            if (device is CudaDevice cuda)
                detail = CudaDetail(cuda);
        }
        catch (Exception e)
        {
            return new AcceleratorInfo(kind, name, memory, warp, group, false, $"device query failed: {OneLine(e)}", detail);
        }

        try
        {
            using var accelerator = device.CreateAccelerator(context);
            if (probe)
            {
                string? failure = RunProbe(accelerator);
                if (failure != null)
                    return new AcceleratorInfo(kind, name, memory, warp, group, false, failure, detail);
            }
            return new AcceleratorInfo(kind, name, memory, warp, group, true, null, detail);
        }
        catch (Exception e)
        {
            return new AcceleratorInfo(kind, name, memory, warp, group, false, $"initialisation failed: {OneLine(e)}", detail);
        }
    }

    static string CudaDetail(CudaDevice cuda)
    {
        // Architecture is null when the device is newer than this ILGPU release knows about.
        string arch = cuda.Architecture is { } a ? $"compute capability {a}" : "compute capability unknown to this ILGPU";
        return $"{arch}, driver {cuda.DriverVersion}";
    }

    /// <summary>Probe kernel: data[i] = 2·i + 1. One element per thread.</summary>
    static void ProbeKernel(Index1D i, ArrayView1D<int, Stride1D.Dense> data) => data[i] = 2 * i + 1;

    static string? RunProbe(Accelerator accelerator)
    {
        const int n = 64;
        try
        {
            var kernel = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView1D<int, Stride1D.Dense>>(ProbeKernel);
            using var buffer = accelerator.Allocate1D<int>(n);
            kernel(n, buffer.View);
            accelerator.Synchronize();
            int[] got = buffer.GetAsArray1D();
            for (int i = 0; i < n; i++)
                if (got[i] != 2 * i + 1)
                    return $"probe kernel gave a wrong result at element {i}: {got[i]} instead of {2 * i + 1}";
            return null;
        }
        catch (Exception e)
        {
            return $"probe kernel failed: {OneLine(e)}";
        }
    }

    /// <summary>The exception's type and first message line, innermost cause first when there is one.</summary>
    static string OneLine(Exception e)
    {
        var inner = e;
        while (inner.InnerException != null && inner is System.Reflection.TargetInvocationException or TypeInitializationException)
            inner = inner.InnerException;
        string message = inner.Message.Split('\n', 2)[0].Trim();
        return $"{inner.GetType().Name}: {message}";
    }
}
