using MicroExpr.Kernels;
using MicroExpr.Tensors.Cpu;

namespace MicroExpr.Tests.Kernels;

[TestFixture(KernelBackend.Cpu)]
[TestFixture(KernelBackend.Cuda, Category = "Gpu")]
public class LayerNormKernelsTests : KernelFixture
{
    public LayerNormKernelsTests(KernelBackend backend) : base(backend) { }

    [Test]
    public void ForwardAndBackwardMatchReference([Values(1, 17, 192, 768)] int c, [Values(1, 3)] int warps)
    {
        using var kernels = new LayerNormKernels(Accelerator, warps);
        // 131 rows: three dgamma/dbeta chunks of 64, the last one partial (with 3 warps: the CPU accelerator is slow).
        foreach (int rows in c == 768 || warps == 1 ? new[] { 1, 5 } : new[] { 1, 5, 131 })
        {
            int seed = c * 7 + rows + warps * 1000, n = rows * c;
            const float eps = 1e-5f;
            var x = Check.Random(n, seed, -2f, 3f);
            var gamma = Check.Random(c, seed + 1, 0.5f, 1.5f);
            var beta = Check.Random(c, seed + 2);
            var dy = Check.Random(n, seed + 3);
            var yRef = new double[n];
            var meanRef = new double[rows];
            var rstdRef = new double[rows];
            LayerNormReference.Forward<double>(yRef, meanRef, rstdRef, D(x), D(gamma), D(beta), rows, c, eps);

            using var dX = Upload(x);
            using var dGamma = Upload(gamma);
            using var dBeta = Upload(beta);
            using var dYv = Upload(Check.NaNs(n));
            using var dMean = Upload(Check.NaNs(rows));
            using var dRstd = Upload(Check.NaNs(rows));
            kernels.Forward(Accelerator.DefaultStream, dYv.View, dMean.View, dRstd.View, dX.View, dGamma.View, dBeta.View, rows, c, eps);
            string what = $"LayerNorm warps={warps} [{rows},{c}]";
            Check.Close(Download(dYv), yRef, 1e-5, 1e-4, what + " y");
            Check.Close(Download(dMean), meanRef, 1e-6, 1e-5, what + " mean");
            // C = 1: var = 0, rstd = 1/√eps ≈ 316, and float cancellation in x − mean dominates; compare relatively.
            Check.Close(Download(dRstd), rstdRef, 1e-5, 1e-4, what + " rstd");

            var mean = Download(dMean);
            var rstd = Download(dRstd);
            var dxRef = new double[n];
            var dgRef = new double[c];
            var dbRef = new double[c];
            LayerNormReference.Backward<double>(dxRef, dgRef, dbRef, D(dy), D(x), D(mean), D(rstd), D(gamma), rows, c);
            using var dDy = Upload(dy);
            using var dDx = Upload(Check.NaNs(n));
            using var dDg = Upload(Check.NaNs(c));
            using var dDb = Upload(Check.NaNs(c));
            kernels.Backward(Accelerator.DefaultStream, dDx.View, dDg.View, dDb.View, dDy.View, dX.View, dMean.View, dRstd.View,
                dGamma.View, rows, c);
            Check.Close(Download(dDx), dxRef, 1e-4, 1e-4, what + " dx");
            Check.Close(Download(dDg), dgRef, 1e-4, 1e-4, what + " dgamma");
            Check.Close(Download(dDb), dbRef, 1e-4, 1e-4, what + " dbeta");
        }
    }

    private static double[] D(float[] a) => Array.ConvertAll(a, v => (double)v);
}
