using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;

namespace MicroExpr.Tests.Kernels;

/// <summary>
/// The accelerator every kernel test runs on: ILGPU's CPU accelerator with 32-lane warps (as on NVIDIA
/// GPUs) and groups of up to 256 threads, in its own context. Launchers are cached per group size so each
/// kernel is compiled once per run.
/// </summary>
public static class KernelTest
{
    private static readonly Lazy<(Context context, Accelerator accelerator)> Cpu = new(() =>
    {
        var context = Context.Create(b => b.CPU(new CPUDevice(32, 8, 1)).EnableAlgorithms());
        var accelerator = context.GetCPUDevice(0).CreateAccelerator(context);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            accelerator.Dispose();
            context.Dispose();
        };
        return (context, accelerator);
    });

    private static readonly Dictionary<(Type, int), object> Launchers = new();

    public static Accelerator Accelerator => Cpu.Value.accelerator;
    public static AcceleratorStream Stream => Accelerator.DefaultStream;

    /// <summary>A warp, and a group of 8 warps.</summary>
    public static readonly int[] GroupSizes = [32, 256];

    /// <summary>1, odd, one past a warp, a non-multiple of the group, and 6·512+7.</summary>
    public static readonly int[] Sizes = [1, 17, 33, 197, 6 * 512 + 7];

    public static T Launcher<T>(int groupSize, Func<Accelerator, int, T> make) where T : class
    {
        lock (Launchers)
        {
            if (!Launchers.TryGetValue((typeof(T), groupSize), out var l)) Launchers[(typeof(T), groupSize)] = l = make(Accelerator, groupSize);
            return (T)l;
        }
    }

    public static MemoryBuffer1D<float, Stride1D.Dense> Up(float[] data) => Accelerator.Allocate1D(data);
    public static MemoryBuffer1D<int, Stride1D.Dense> Up(int[] data) => Accelerator.Allocate1D(data);

    /// <summary>A device buffer pre-filled with NaN (an element the kernel never writes fails the check).</summary>
    public static MemoryBuffer1D<float, Stride1D.Dense> NaNs(int n) => Accelerator.Allocate1D(Check.NaNs(Math.Max(n, 1)));

    public static float[] Down(MemoryBuffer1D<float, Stride1D.Dense> buffer, int n)
    {
        Stream.Synchronize();
        var a = new float[n];
        buffer.View.SubView(0, n).CopyToCPU(a);
        return a;
    }

    /// <summary>Every (group size, n) pair.</summary>
    public static IEnumerable<TestCaseData> GroupsBySizes()
    {
        foreach (int g in GroupSizes)
            foreach (int n in Sizes)
                yield return new TestCaseData(g, n).SetArgDisplayNames($"g{g}", $"n{n}");
    }
}
