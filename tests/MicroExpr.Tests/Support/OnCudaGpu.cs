using MicroExpr.Tensors;

namespace MicroExpr.Tests.Support;

/// <summary>
/// The ILGPU backend on a CUDA GPU, for fixtures in category <c>Gpu</c>: a fixture instantiated with it calls
/// <see cref="RequireIfCuda{TDevice}"/> in its set-up, which ignores (never fails) the test where no usable CUDA device
/// exists. Small cases only (as on ILGPU's CPU accelerator), the same tolerances.
/// </summary>
public sealed class OnCudaGpu : ITestDevice
{
    public static Device Device => Devices.TryCuda(out string? reason) ?? throw new InvalidOperationException($"no CUDA device: {reason}");
    public static bool Small => true;

    /// <summary>Assert.Ignore when the fixture runs on CUDA and there is none.</summary>
    public static void RequireIfCuda<TDevice>() where TDevice : ITestDevice
    {
        if (typeof(TDevice) == typeof(OnCudaGpu) && Devices.TryCuda(out string? reason) is null) Assert.Ignore($"no CUDA device: {reason}");
    }
}
