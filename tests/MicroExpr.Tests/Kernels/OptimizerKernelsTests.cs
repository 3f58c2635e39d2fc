using MicroExpr.Kernels;

namespace MicroExpr.Tests.Kernels;

/// <summary>OptimizerKernels.AdamW: three steps against a literal double-precision AdamW.</summary>
[TestFixture(KernelBackend.Cpu)]
[TestFixture(KernelBackend.Cuda, Category = "Gpu")]
public class OptimizerKernelsTests(KernelBackend backend) : KernelFixture(backend)
{
    protected override int CpuWarpsPerGroup => 8; // groups of 256 threads (KernelTest.GroupSizes)

    [TestCaseSource(typeof(KernelTest), nameof(KernelTest.GroupsBySizes))]
    public void AdamWMatchesReference(int g, int n)
    {
        var k = Launcher(g, (a, gs) => new OptimizerKernels(a, gs));
        var p = Check.Random(n, 41);
        var m = new float[n];
        var v = new float[n];
        var pd = p.Select(x => (double)x).ToArray();
        var md = new double[n];
        var vd = new double[n];
        const float lr = 1e-2f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.05f;
        using var pb = Up(p);
        using var mb = Up(m);
        using var vb = Up(v);
        for (int step = 1; step <= 3; step++)
        {
            var grad = Check.Random(n, 42 + step);
            using var gb = Up(grad);
            k.AdamW(Stream, pb.View, gb.View, mb.View, vb.View, n, lr, b1, b2, eps, wd, step);
            for (int i = 0; i < n; i++)
            {
                md[i] = b1 * md[i] + (1 - b1) * grad[i];
                vd[i] = b2 * vd[i] + (1 - b2) * grad[i] * grad[i];
                double mh = md[i] / (1 - Math.Pow(b1, step)), vh = vd[i] / (1 - Math.Pow(b2, step));
                pd[i] -= lr * (mh / (Math.Sqrt(vh) + eps) + wd * pd[i]);
            }
        }
        Check.Close(Down(pb, n), pd, 1e-6, 1e-5, "p");
        Check.Close(Down(mb, n), md, 1e-6, 1e-5, "m");
        Check.Close(Down(vb, n), vd, 1e-7, 1e-4, "v");
    }
}
