using MicroExpr.Kernels;
using MicroExpr.Tensors.Cpu;

namespace MicroExpr.Tests.Kernels;

[TestFixture(KernelBackend.Cpu)]
[TestFixture(KernelBackend.Cuda, Category = "Gpu")]
public class SoftmaxKernelsTests : KernelFixture
{
    public SoftmaxKernelsTests(KernelBackend backend) : base(backend) { }

    private static readonly int[] Cols = { 1, 17, 50, 197 };

    [Test]
    public void ForwardAndBackwardMatchReference([Values(false, true)] bool log, [Values(1, 3)] int warps)
    {
        var kernels = new SoftmaxKernels(Accelerator, warps);
        int seed = (log ? 300 : 400) + warps * 10;
        foreach (int rows in new[] { 1, 7 })
            foreach (int cols in Cols)
            {
                int n = rows * cols;
                var x = Check.Random(n, seed++, -4f, 4f);
                var dy = Check.Random(n, seed++);
                var yRef = new double[n];
                var xd = Array.ConvertAll(x, v => (double)v);
                if (log) SoftmaxReference.LogForward<double>(yRef, xd, rows, cols);
                else SoftmaxReference.Forward<double>(yRef, xd, rows, cols);

                using var dX = Upload(x);
                using var dY = Upload(Check.NaNs(n));
                if (log) kernels.LogForward(Accelerator.DefaultStream, dY.View, dX.View, rows, cols);
                else kernels.Forward(Accelerator.DefaultStream, dY.View, dX.View, rows, cols);
                var y = Download(dY);
                string what = $"{(log ? "log-" : "")}softmax warps={warps} [{rows},{cols}]";
                Check.Close(y, yRef, 1e-6, 1e-5, what + " y");

                // Backward from the kernel's own y (what training does), against the reference on the same y.
                var dxRef = new double[n];
                var yd = Array.ConvertAll(y, v => (double)v);
                var dyd = Array.ConvertAll(dy, v => (double)v);
                if (log) SoftmaxReference.LogBackward<double>(dxRef, yd, dyd, rows, cols);
                else SoftmaxReference.Backward<double>(dxRef, yd, dyd, rows, cols);
                using var dDy = Upload(dy);
                using var dDx = Upload(Check.NaNs(n));
                if (log) kernels.LogBackward(Accelerator.DefaultStream, dDx.View, dY.View, dDy.View, rows, cols);
                else kernels.Backward(Accelerator.DefaultStream, dDx.View, dY.View, dDy.View, rows, cols);
                Check.Close(Download(dDx), dxRef, 1e-5, 1e-4, what + " dx");
            }
    }
}
