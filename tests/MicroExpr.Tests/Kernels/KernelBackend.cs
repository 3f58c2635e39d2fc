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

    [OneTimeSetUp]
    public void CreateAccelerator()
    {
        if (_backend == KernelBackend.Cpu)
        {
            var device = new CPUDevice(numThreadsPerWarp: 32, numWarpsPerMultiprocessor: 4, numMultiprocessors: 1);
            _context = Context.Create(b => b.CPU(device));
            _accelerator = _context.CreateCPUAccelerator(0);
        }
        else
        {
            _context = Context.Create(b => b.Cuda());
            if (_context.GetCudaDevices().Count == 0)
            {
                _context.Dispose();
                _context = null;
                Assert.Ignore("no CUDA device");
            }
            _accelerator = _context.CreateCudaAccelerator(0);
        }
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
