using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace MicroExpr.Tests.Kernels;

/// <summary>Where the kernel tests run: ILGPU's CPU accelerator (always) or a CUDA GPU (category Gpu, ignored without one).</summary>
public enum KernelBackend { Cpu, Cuda }

/// <summary>
/// One accelerator per fixture. Each kernel test class is a parameterised fixture run once per backend (ILGPU's own test
/// layout): only the accelerator differs. The CPU accelerator simulates 32-lane warps, up to 8 warps per group (256
/// threads) and 2 groups at a time, so warp shuffles and barriers really execute.
/// </summary>
public abstract class KernelFixture
{
    private readonly KernelBackend _backend;
    private Context? _context;
    private Accelerator? _accelerator;

    protected KernelFixture(KernelBackend backend) => _backend = backend;

    protected Accelerator Accelerator => _accelerator ?? throw new InvalidOperationException("no accelerator");

    protected bool IsCpu => _backend == KernelBackend.Cpu;

    /// <summary>Warps per group on the CPU accelerator: 4 (groups of 128), or 8 (256) for the fixtures that launch 256-thread groups.</summary>
    protected virtual int CpuWarpsPerGroup => 4;

    [OneTimeSetUp]
    public void CreateAccelerator()
    {
        if (_backend == KernelBackend.Cpu)
        {
            var device = new CPUDevice(numThreadsPerWarp: 32, numWarpsPerMultiprocessor: CpuWarpsPerGroup, numMultiprocessors: 1);
            _context = Context.Create(b => b.CPU(device).EnableAlgorithms());
            _accelerator = _context.CreateCPUAccelerator(0);
        }
        else
        {
            _context = Context.Create(b => b.Cuda().EnableAlgorithms());
            if (_context.GetCudaDevices().Count == 0)
            {
                _context.Dispose();
                _context = null;
                Assert.Ignore("no CUDA device");
            }
            _accelerator = _context.CreateCudaAccelerator(0);
        }
    }

    private readonly Dictionary<(Type, int), object> _launchers = new();

    protected AcceleratorStream Stream => Accelerator.DefaultStream;

    /// <summary>One launcher per type and group size for this fixture's accelerator (each kernel compiled once per fixture).</summary>
    protected T Launcher<T>(int groupSize, Func<Accelerator, int, T> make) where T : class
    {
        if (!_launchers.TryGetValue((typeof(T), groupSize), out var l)) _launchers[(typeof(T), groupSize)] = l = make(Accelerator, groupSize);
        return (T)l;
    }

    protected MemoryBuffer1D<float, Stride1D.Dense> Up(float[] data) => Accelerator.Allocate1D(data);
    protected MemoryBuffer1D<int, Stride1D.Dense> Up(int[] data) => Accelerator.Allocate1D(data);

    /// <summary>A device buffer pre-filled with NaN (an element the kernel never writes fails the check).</summary>
    protected MemoryBuffer1D<float, Stride1D.Dense> NaNs(int n) => Accelerator.Allocate1D(Check.NaNs(Math.Max(n, 1)));

    protected float[] Down(MemoryBuffer1D<float, Stride1D.Dense> buffer, int n)
    {
        Stream.Synchronize();
        var a = new float[n];
        buffer.View.SubView(0, n).CopyToCPU(a);
        return a;
    }

    [OneTimeTearDown]
    public void DisposeAccelerator()
    {
        _accelerator?.Dispose();
        _context?.Dispose();
    }

    protected MemoryBuffer1D<float, Stride1D.Dense> Upload(float[] data) => Accelerator.Allocate1D(data);

    protected float[] Download(MemoryBuffer1D<float, Stride1D.Dense> buffer)
    {
        Accelerator.Synchronize();
        return buffer.GetAsArray1D();
    }
}
