using MicroExpr.Kernels;
using MicroExpr.Tensors.Cpu;

namespace MicroExpr.Tests.Kernels;

[TestFixture(KernelBackend.Cpu)]
[TestFixture(KernelBackend.Cuda, Category = "Gpu")]
public class GemmKernelsTests : KernelFixture
{
    public GemmKernelsTests(KernelBackend backend) : base(backend) { }

    // (groupX, groupY) → tile (4·groupY)×(4·groupX): 16×8 (32×64), 8×8 (32×32), a non-square 8×4 (16×32); on a GPU also
    // the default 16×16 (64×64). The CPU test accelerator allows 128 threads per group.
    private (int X, int Y)[] Groups => IsCpu ? new[] { (16, 8), (8, 8), (8, 4) } : new[] { (16, 16), (16, 8), (8, 8), (8, 4) };

    private static readonly (int M, int N, int K)[] Shapes =
    {
        (1, 1, 1), (17, 33, 65), (64, 64, 64), (65, 100, 17), (100, 65, 33), (33, 1, 100), (1, 17, 64),
    };

    [Test]
    public void AllTransposesMatchReference([Values(false, true)] bool transA, [Values(false, true)] bool transB)
    {
        int seed = 100 + (transA ? 2 : 0) + (transB ? 1 : 0);
        foreach (var g in Groups)
        {
            var kernels = new GemmKernels(Accelerator, g.X, g.Y);
            foreach (var (m, n, k) in Shapes)
                Run(kernels, 1, m, n, k, transA, transB, shareA: false, shareB: false, alpha: 1f, beta: 0f, seed++, $"group {g}");
        }
    }

    [Test]
    public void BatchedWithSharedOperandAlphaBeta([Values(false, true)] bool transA, [Values(false, true)] bool transB)
    {
        int seed = 200 + (transA ? 2 : 0) + (transB ? 1 : 0);
        foreach (var g in Groups)
        {
            var kernels = new GemmKernels(Accelerator, g.X, g.Y);
            Run(kernels, 3, 33, 17, 65, transA, transB, shareA: false, shareB: true, alpha: 0.5f, beta: 0f, seed++, $"group {g}");
            Run(kernels, 2, 65, 50, 33, transA, transB, shareA: true, shareB: false, alpha: 1.5f, beta: -0.75f, seed++, $"group {g}");
            Run(kernels, 2, 17, 1, 100, transA, transB, shareA: false, shareB: false, alpha: 1f, beta: 1f, seed++, $"group {g}");
        }
    }

    private void Run(GemmKernels kernels, int batch, int m, int n, int k, bool transA, bool transB, bool shareA, bool shareB,
        float alpha, float beta, int seed, string what)
    {
        long sa = shareA ? 0 : (long)m * k, sb = shareB ? 0 : (long)k * n, sc = (long)m * n;
        var a = Check.Random((int)(shareA ? m * k : batch * sa), seed);
        var b = Check.Random((int)(shareB ? k * n : batch * sb), seed + 1000);
        var c0 = beta == 0f ? Check.NaNs(batch * m * n) : Check.Random(batch * m * n, seed + 2000);
        using var da = Upload(a);
        using var db = Upload(b);
        using var dc = Upload(c0);
        kernels.Gemm(Accelerator.DefaultStream, dc.View, sc, da.View, sa, transA, db.View, sb, transB, batch, m, n, k, alpha, beta);
        var c = Download(dc);
        for (int i = 0; i < batch; i++)
        {
            var expected = GemmReference.RunDouble(c0.AsSpan(i * m * n, m * n), n, a.AsSpan((int)(i * sa), m * k), transA ? m : k,
                transA, b.AsSpan((int)(i * sb), k * n), transB ? k : n, transB, m, n, k, alpha, beta);
            Check.Close(c.AsSpan(i * m * n, m * n), expected, 1e-5 * k + 1e-5, 1e-5,
                $"GEMM {what} batch {i}/{batch} M={m} N={n} K={k} transA={transA} transB={transB}");
        }
    }
}
