using MicroExpr.Tensors;

namespace MicroExpr.Tests.Support;

/// <summary>
/// The backend an op-test fixture runs on, as a type argument (ILGPU's test style: one test class per
/// feature, instantiated once per backend; only the device differs). <see cref="Small"/> asks the fixture
/// for its reduced case list: ILGPU's CPU accelerator runs the GPU kernels with real threads and barriers
/// and is slow, so it gets a representative subset.
/// </summary>
public interface ITestDevice
{
    static abstract Device Device { get; }
    static abstract bool Small { get; }
}

/// <summary>The SIMD CPU backend: every case.</summary>
public sealed class OnCpu : ITestDevice
{
    public static Device Device => Device.Cpu;
    public static bool Small => false;
}

/// <summary>The ILGPU backend on ILGPU's CPU accelerator (32-lane warps): a subset of the cases.</summary>
public sealed class OnIlgpuCpu : ITestDevice
{
    public static Device Device => Devices.IlgpuCpu;
    public static bool Small => true;
}
