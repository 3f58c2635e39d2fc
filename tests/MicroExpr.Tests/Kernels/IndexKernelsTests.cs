using MicroExpr.Kernels;

namespace MicroExpr.Tests.Kernels;

/// <summary>IndexKernels: gather and deterministic scatter-add (repeated indices) against literal loops.</summary>
[TestFixture(KernelBackend.Cpu)]
[TestFixture(KernelBackend.Cuda, Category = "Gpu")]
public class IndexKernelsTests(KernelBackend backend) : KernelFixture(backend)
{
    protected override int CpuWarpsPerGroup => 8; // groups of 256 threads (KernelTest.GroupSizes)

    private IndexKernels K(int g) => Launcher(g, (a, gs) => new IndexKernels(a, gs));

    [TestCase(1, 1, 1, new[] { 0 }, 32)]
    [TestCase(2, 5, 3, new[] { 4, 0, 4, 2 }, 32)]
    [TestCase(3, 17, 33, new[] { 16, 16, 16, 0, 5 }, 256)]
    [TestCase(1, 197, 7, new[] { 3, 196, 3, 100, 3, 0 }, 256)]
    [TestCase(6, 512 + 7, 1, new[] { 1, 2, 3, 518 }, 256)]
    public void SelectAndAdd(int outer, int len, int inner, int[] idx, int g)
    {
        int m = idx.Length;
        var x = Check.Random(outer * len * inner, 31);
        var dy = Check.Random(outer * m * inner, 32);
        var dx0 = Check.Random(outer * len * inner, 33);
        using var xb = Up(x);
        using var ib = Up(idx);
        using var yb = NaNs(outer * m * inner);
        using var dyb = Up(dy);
        using var dxb = Up(dx0);
        using var csr = Up(IndexKernels.BuildCsr(idx, len));
        K(g).IndexSelect(Stream, yb.View, xb.View, ib.View, m, outer, len, inner);
        K(g).IndexAdd(Stream, dxb.View, dyb.View, csr.View, m, outer, len, inner);
        var ey = new double[outer * m * inner];
        var edx = dx0.Select(v => (double)v).ToArray();
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < m; j++)
                for (int i = 0; i < inner; i++)
                {
                    ey[(o * m + j) * inner + i] = x[(o * len + idx[j]) * inner + i];
                    edx[(o * len + idx[j]) * inner + i] += dy[(o * m + j) * inner + i];
                }
        Check.Close(Down(yb, ey.Length), ey, 0, 0, "index_select");
        Check.Close(Down(dxb, edx.Length), edx, 1e-6, 1e-6, "index_add");
    }
}
