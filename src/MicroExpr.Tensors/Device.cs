namespace MicroExpr.Tensors;

/// <summary>Where a tensor's storage lives. The backend behind a device runs every op on that storage.</summary>
public enum DeviceKind
{
    /// <summary>The SIMD CPU backend (System.Numerics.Tensors, Vector512/Vector256, multi-threaded).</summary>
    Cpu,
    /// <summary>ILGPU kernels on ILGPU's CPU accelerator: for tests and teaching, never the default.</summary>
    IlgpuCpu,
    /// <summary>ILGPU kernels on a CUDA GPU.</summary>
    Cuda,
}

/// <summary>A device a tensor can live on, with the backend that computes there.</summary>
public sealed class Device
{
    private Device(DeviceKind kind, string name, Func<IBackend> backend)
    {
        Kind = kind;
        Name = name;
        backendFactory = backend;
    }

    private readonly Func<IBackend> backendFactory;
    private IBackend? backend;

    public DeviceKind Kind { get; }
    public string Name { get; }

    /// <summary>
    /// The backend that runs ops on this device, created on first use: the device's own backend behind the profiling
    /// decorator (<see cref="ProfiledBackend"/>), which times each call while <see cref="OpProfiler.Enabled"/>.
    /// </summary>
    public IBackend Backend => backend ??= new ProfiledBackend(backendFactory());

    /// <summary>The device's own backend, without the profiling decorator (for its device-specific members).</summary>
    public IBackend Unprofiled => ((ProfiledBackend)Backend).Inner;

    /// <summary>The SIMD CPU device: the default.</summary>
    public static Device Cpu { get; } = new(DeviceKind.Cpu, "cpu", () => new Cpu.CpuBackend());

    /// <summary>Registers a device whose backend lives in another assembly (the ILGPU backend).</summary>
    public static Device Create(DeviceKind kind, string name, Func<IBackend> backend) => new(kind, name, backend);

    public override string ToString() => Name;
}
