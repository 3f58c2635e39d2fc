using ILGPU;
using ILGPU.Runtime;
using MicroExpr.Kernels;

namespace MicroExpr.Tests.Kernels;

/// <summary>
/// <see cref="ConvKernels"/> (tiled implicit GEMM) against <see cref="ConvReference"/> in double: forward with bias and
/// ReLU, dx (tiled, and direct for at most 3 input channels per group), dw (one slice and several: the deterministic sliced reduction), db; small shapes on ILGPU's CPU accelerator,
/// the model's shapes on CUDA (category Gpu, ignored without a GPU). Outputs NaN-filled.
/// </summary>
[TestFixture(KernelBackend.Cpu)]
[TestFixture(KernelBackend.Cuda, Category = "Gpu")]
public class ConvKernelsTests : KernelFixture
{
    public ConvKernelsTests(KernelBackend backend) : base(backend) { }

    public static IEnumerable<TestCaseData> Shapes()
    {
        // name, N, Cin, Cout, (D, H, W), (kd, kh, kw), stride, pad, dilation, groups, gpuOnly
        yield return new TestCaseData("3x3 odd", 2, 5, 7, (1, 7, 9), (1, 3, 3), (1, 1, 1), (0, 1, 1), (1, 1, 1), 1, false);
        yield return new TestCaseData("stem 7x7/2", 1, 3, 4, (1, 13, 13), (1, 7, 7), (1, 2, 2), (0, 3, 3), (1, 1, 1), 1, false);
        yield return new TestCaseData("depthwise dilated", 2, 6, 6, (1, 7, 7), (1, 3, 3), (1, 1, 1), (0, 2, 2), (1, 2, 2), 6, false);
        yield return new TestCaseData("1x1/2 groups 2", 2, 4, 6, (1, 5, 5), (1, 1, 1), (1, 2, 2), (0, 0, 0), (1, 1, 1), 2, false);
        yield return new TestCaseData("3d", 1, 3, 5, (4, 5, 6), (3, 3, 3), (2, 1, 2), (1, 1, 0), (1, 1, 1), 1, false);
        // FDP's rank scorer (fdp-tiny, batch 2): one input channel, so backward data takes the direct kernel.
        yield return new TestCaseData("fdp rank scorer 3d", 2, 1, 8, (32, 32, 8), (3, 3, 8), (1, 1, 1), (1, 1, 0), (1, 1, 1), 1, false);
        yield return new TestCaseData("4 channels per group (tiled dx)", 1, 8, 4, (1, 6, 5), (1, 3, 3), (1, 1, 1), (0, 1, 1), (1, 1, 1), 2, false);
        yield return new TestCaseData("resnet 3x3 64 (GPU)", 8, 64, 64, (1, 28, 28), (1, 3, 3), (1, 1, 1), (0, 1, 1), (1, 1, 1), 1, true);
        yield return new TestCaseData("3d 64 (GPU)", 2, 64, 64, (4, 14, 14), (3, 3, 3), (1, 1, 1), (1, 1, 1), (1, 1, 1), 1, true);
    }

    [TestCaseSource(nameof(Shapes))]
    public void MatchesReference(string name, int n, int cin, int cout, (int, int, int) input, (int, int, int) k, (int, int, int) s,
        (int, int, int) p, (int, int, int) d, int groups, bool gpuOnly)
    {
        if (gpuOnly && IsCpu) Assert.Ignore("model size: CUDA only (ILGPU's CPU accelerator is slow)");
        var g = ConvGeometry.Create(n, cin, cout, groups, input, k, s, p, d);
        var x = Check.Random((int)g.XLength, 11);
        var w = Check.Random((int)g.WLength, 12, -0.3f, 0.3f);
        var b = Check.Random(cout, 13);
        var dy = Check.Random((int)g.YLength, 14);
        var yRef = new double[g.YLength];
        var dxRef = new double[g.XLength];
        var dwRef = new double[g.WLength];
        var dbRef = new double[cout];
        ConvReference.Forward<double>(yRef, D(x), D(w), D(b), g, relu: true);
        ConvReference.BackwardData<double>(dxRef, D(dy), D(w), g);
        ConvReference.BackwardWeight<double>(dwRef, dbRef, D(dy), D(x), g);

        // The default slice depth, and one small enough to cut dW's reduction into several slices.
        foreach (int slice in new[] { ConvKernels.DefaultWeightSlice, 37 })
        {
            using var kernels = IsCpu ? new ConvKernels(Accelerator, 8, 4, slice) : new ConvKernels(Accelerator, 16, 16, slice);
            var stream = Accelerator.DefaultStream;
            using var dX = Accelerator.Allocate1D(x);
            using var dW = Accelerator.Allocate1D(w);
            using var dB = Accelerator.Allocate1D(b);
            using var dDy = Accelerator.Allocate1D(dy);
            using var dY = Accelerator.Allocate1D(Check.NaNs((int)g.YLength));
            using var dDx = Accelerator.Allocate1D(Check.NaNs((int)g.XLength));
            using var dDw = Accelerator.Allocate1D(Check.NaNs((int)g.WLength));
            using var dDb = Accelerator.Allocate1D(Check.NaNs(cout));
            kernels.Forward(stream, dY.View, dX.View, dW.View, dB.View, g, relu: true);
            kernels.BackwardData(stream, dDx.View, dDy.View, dW.View, g);
            kernels.BackwardWeight(stream, dDw.View, dDb.View, dDy.View, dX.View, g);
            stream.Synchronize();
            string what = $"{name} {g} slice={slice}";
            Check.Close(dY.GetAsArray1D(), yRef, 1e-4, 1e-4, what + " y");
            Check.Close(dDx.GetAsArray1D(), dxRef, 1e-4, 1e-4, what + " dx");
            Check.Close(dDw.GetAsArray1D(), dwRef, 5e-4, 1e-4, what + " dw");
            Check.Close(dDb.GetAsArray1D(), dbRef, 5e-4, 1e-4, what + " db");
        }
    }

    private static double[] D(float[] a) => a.Select(v => (double)v).ToArray();
}
