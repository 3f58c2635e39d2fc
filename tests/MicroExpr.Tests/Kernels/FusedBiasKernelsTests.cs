using MicroExpr.Kernels;

namespace MicroExpr.Tests.Kernels;

/// <summary>FusedBiasKernels: bias + GELU (forward, backward with the bias gradient) and bias + residual against double references.</summary>
[TestFixture(KernelBackend.Cpu)]
[TestFixture(KernelBackend.Cuda, Category = "Gpu")]
public class FusedBiasKernelsTests(KernelBackend backend) : KernelFixture(backend)
{
    protected override int CpuWarpsPerGroup => 8; // groups of 256 threads (KernelTest.GroupSizes)

    private static IEnumerable<TestCaseData> Cases()
    {
        foreach (int g in KernelTest.GroupSizes)
            foreach (var (rows, c) in new[] { (1, 1), (17, 33), (197, 3), (6, 512 + 7), (2, 192) })
                yield return new TestCaseData(g, rows, c).SetArgDisplayNames($"g{g}", $"{rows}x{c}");
    }

    [TestCaseSource(nameof(Cases))]
    public void BiasGeluAndResidual(int g, int rows, int c)
    {
        var k = Launcher(g, (a, gs) => new FusedBiasKernels(a, gs));
        int n = rows * c;
        var x = Check.Random(n, 61, -3f, 3f);
        var b = Check.Random(c, 62);
        var res = Check.Random(n, 63);
        var dy = Check.Random(n, 64);
        using var xb = Up(x);
        using var bb = Up(b);
        using var rb = Up(res);
        using var dyb = Up(dy);
        using var yb = NaNs(n);
        using var dxb = NaNs(n);
        using var dbb = NaNs(c);
        using var zb = NaNs(n);
        using var db2 = NaNs(c);
        k.BiasGelu(Stream, yb.View, xb.View, bb.View, rows, c);
        k.BiasGeluBackward(Stream, dxb.View, dbb.View, dyb.View, xb.View, bb.View, rows, c);
        k.BiasResidual(Stream, zb.View, xb.View, bb.View, rb.View, rows, c);
        k.BiasResidualBackward(Stream, db2.View, dyb.View, rows, c);

        var ey = new double[n];
        var edx = new double[n];
        var edb = new double[c];
        var ez = new double[n];
        var edb2 = new double[c];
        for (int e = 0; e < n; e++)
        {
            double u = x[e] + b[e % c];
            ey[e] = Ops.ElementwiseOpTests<OnCpu>.Gelu(u);
            edx[e] = dy[e] * (0.5 * (1 + Ops.ElementwiseOpTests<OnCpu>.Erf(u / Math.Sqrt(2))) + u * Math.Exp(-u * u / 2) / Math.Sqrt(2 * Math.PI));
            edb[e % c] += edx[e];
            ez[e] = x[e] + b[e % c] + res[e];
            edb2[e % c] += dy[e];
        }
        Check.Close(Down(yb, n), ey, 2e-6, 2e-5, "bias_gelu");
        Check.Close(Down(dxb, n), edx, 2e-6, 5e-5, "bias_gelu backward dx");
        Check.Close(Down(dbb, c), edb, 1e-5, 1e-4, "bias_gelu backward dbias");
        Check.Close(Down(zb, n), ez, 1e-6, 1e-6, "bias_residual");
        Check.Close(Down(db2, c), edb2, 1e-5, 1e-5, "bias_residual backward dbias");
    }
}
