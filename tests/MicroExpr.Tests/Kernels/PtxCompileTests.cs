using System.Reflection;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using MicroExpr.Kernels;

namespace MicroExpr.Tests.Kernels;

/// <summary>
/// The CPU accelerator runs the kernels as .NET code, so it cannot tell whether ILGPU can compile them for a GPU. This
/// compiles every kernel with ILGPU's PTX backend (no GPU or driver needed) for Hopper (sm_90), so an unsupported construct
/// fails here rather than on the GPU machine.
/// </summary>
public class PtxCompileTests
{
    private static readonly (Type Type, string Method)[] Kernels =
    {
        (typeof(GemmKernels), "TiledKernel"),
        (typeof(ConvKernels), "ImplicitGemmKernel"),
        (typeof(ConvKernels), "SliceSumKernel"),
        (typeof(ConvKernels), "BiasGradKernel"),
        (typeof(AttentionKernels), "ForwardKernel"),
        (typeof(AttentionKernels), "RowDotKernel"),
        (typeof(AttentionKernels), "BackwardKvKernel"),
        (typeof(AttentionKernels), "BackwardQKernel"),
        (typeof(LayerNormKernels), "ForwardKernel"),
        (typeof(LayerNormKernels), "BackwardDxKernel"),
        (typeof(LayerNormKernels), "ParamPartialKernel"),
        (typeof(LayerNormKernels), "ParamReduceKernel"),
        (typeof(SoftmaxKernels), "ForwardKernel"),
        (typeof(SoftmaxKernels), "BackwardKernel"),
    };

    [Test]
    public void EveryKernelCompilesToPtxForSm90()
    {
        using var context = Context.Create(b => b.Cuda().Optimize(OptimizationLevel.O1));
        var arch = CudaArchitecture.SM_90;
        using var backend = new PTXBackend(context, new CudaCapabilityContext(arch), arch, CudaInstructionSet.ISA_80, null);
        foreach (var (type, name) in Kernels)
        {
            var method = type.GetMethod(name, BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public)
                         ?? throw new InvalidOperationException($"{type.Name}.{name} not found");
            var entry = EntryPointDescription.FromExplicitlyGroupedKernel(method);
            var specialization = KernelSpecialization.Empty;
            var compiled = (PTXCompiledKernel)backend.Compile(entry, specialization);
            Assert.That(compiled.PTXAssembly, Does.Contain(".entry"), $"{type.Name}.{name}");
            // Local memory in the PTX means a register array was not promoted (a performance bug, not a failure): report it.
            int local = compiled.PTXAssembly.Split(".local").Length - 1;
            TestContext.Out.WriteLine($"{type.Name}.{name}: {compiled.PTXAssembly.Length} chars of PTX, {local} .local mentions");
            if (Environment.GetEnvironmentVariable("MICROEXPR_PTX_DIR") is { Length: > 0 } dir)
                File.WriteAllText(Path.Combine(dir, $"{type.Name}.{name}.ptx"), compiled.PTXAssembly);
        }
    }
}
