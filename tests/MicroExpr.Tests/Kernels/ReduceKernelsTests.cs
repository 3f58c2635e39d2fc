using ILGPU.Runtime;
using MicroExpr.Kernels;

namespace MicroExpr.Tests.Kernels;

/// <summary>ReduceKernels (SumTo with its three versions, MaxAxis, non-finite flag) against double references.</summary>
[TestFixture(KernelBackend.Cpu)]
[TestFixture(KernelBackend.Cuda, Category = "Gpu")]
public class ReduceKernelsTests(KernelBackend backend) : KernelFixture(backend)
{
    protected override int CpuWarpsPerGroup => 8; // groups of 256 threads (KernelTest.GroupSizes)

    private ReduceKernels K(int g) => Launcher(g, (a, gs) => new ReduceKernels(a, gs));

    private static double[] SumToRef(float[] x, int[] src, int[] dst)
    {
        var r = new double[Support.Ref.Numel(dst)];
        var idx = new int[src.Length];
        for (int e = 0; e < x.Length; e++)
        {
            int rem = e;
            for (int d = src.Length - 1; d >= 0; d--) { idx[d] = rem % src[d]; rem /= src[d]; }
            int o = 0;
            for (int d = 0; d < src.Length; d++) o = o * dst[d] + (dst[d] == 1 ? 0 : idx[d]);
            r[o] += x[e];
        }
        return r;
    }

    private static IEnumerable<TestCaseData> SumCases()
    {
        (int[] src, int[] dst, string path)[] cases =
        [
            ([197, 33], [1, 33], "leading"), ([6 * 512 + 7, 3], [1, 3], "leading"), ([2, 17, 5], [1, 1, 5], "leading"),
            ([17, 197], [17, 1], "trailing"), ([6 * 512 + 7], [1], "trailing"), ([3, 2, 100], [3, 1, 1], "trailing"),
            ([17, 33], [17, 1], "generic"), ([1], [1], "generic"), ([2, 3, 4, 5], [2, 1, 4, 1], "generic"), ([4, 5], [4, 5], "generic"),
            ([2, 3, 2, 3, 2, 3], [1, 3, 1, 3, 1, 3], "generic"),
        ];
        foreach (var (s, d, p) in cases)
            foreach (int g in KernelTest.GroupSizes)
                yield return new TestCaseData(s, d, p, g).SetArgDisplayNames(string.Join("x", s), string.Join("x", d), $"g{g}");
    }

    [TestCaseSource(nameof(SumCases))]
    public void SumToMatchesReference(int[] src, int[] dst, string path, int g)
    {
        var x = Check.Random(Support.Ref.Numel(src), 21);
        int n = Support.Ref.Numel(dst);
        using var xb = Up(x);
        using var yb = NaNs(n);
        var k = K(g);
        k.SumTo(Stream, yb.View, dst, xb.View, src);
        Assert.That(k.LastSumPath, Is.EqualTo(path));
        Check.Close(Down(yb, n), SumToRef(x, src, dst), 1e-5, 1e-5, $"sum_to {path}");
    }

    [TestCaseSource(typeof(KernelTest), nameof(KernelTest.GroupsBySizes))]
    public void SumLeadingAndTrailingOddSizes(int g, int n)
    {
        // [n, 5] → [5] (leading) and [5, n] → [5] (trailing).
        var x = Check.Random(5 * n, 22);
        using var xb = Up(x);
        using var yb = NaNs(5);
        K(g).SumLeading(Stream, yb.View, xb.View, n, 5);
        Check.Close(Down(yb, 5), SumToRef(x, [n, 5], [1, 5]), 1e-5, 1e-5, "leading");
        K(g).SumTrailing(Stream, yb.View, xb.View, 5, n);
        Check.Close(Down(yb, 5), SumToRef(x, [5, n], [5, 1]), 1e-5, 1e-5, "trailing");
    }

    [TestCase(1, 1, 1, 32)]
    [TestCase(3, 17, 5, 32)]
    [TestCase(2, 33, 1, 256)]
    [TestCase(1, 197, 3, 256)]
    [TestCase(7, 6 * 512 + 7, 1, 256)]
    public void MaxAxisAndBackward(int outer, int len, int inner, int g)
    {
        int n = outer * len * inner;
        // Distinct values (a permutation), so the arg-max is unique.
        var x = Enumerable.Range(0, n).Select(i => (float)((i * 7919L) % n) * 0.01f).ToArray();
        var dy = Check.Random(outer * inner, 23);
        using var xb = Up(x);
        using var yb = NaNs(outer * inner);
        using var ab = NaNs(outer * inner);
        using var dyb = Up(dy);
        using var dxb = NaNs(n);
        K(g).MaxAxis(Stream, yb.View, ab.View, xb.View, outer, len, inner);
        K(g).MaxAxisBackward(Stream, dxb.View, dyb.View, ab.View, outer, len, inner);
        var ey = new double[outer * inner];
        var ea = new double[outer * inner];
        var edx = new double[n];
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                int best = 0;
                for (int j = 1; j < len; j++)
                    if (x[(o * len + j) * inner + i] > x[(o * len + best) * inner + i]) best = j;
                ey[o * inner + i] = x[(o * len + best) * inner + i];
                ea[o * inner + i] = best;
                edx[(o * len + best) * inner + i] = dy[o * inner + i];
            }
        Check.Close(Down(yb, outer * inner), ey, 0, 0, "max");
        Check.Close(Down(ab, outer * inner), ea, 0, 0, "argmax");
        Check.Close(Down(dxb, n), edx, 0, 0, "max backward");
    }

    [Test]
    public void MaxAxisTakesFirstNaN()
    {
        using var xb = Up([1f, float.NaN, 5f, float.NaN]);
        using var yb = NaNs(1);
        using var ab = NaNs(1);
        K(32).MaxAxis(Stream, yb.View, ab.View, xb.View, 1, 4, 1);
        Assert.That(float.IsNaN(Down(yb, 1)[0]));
        Assert.That(Down(ab, 1)[0], Is.EqualTo(1f));
    }

    [TestCaseSource(typeof(KernelTest), nameof(KernelTest.GroupsBySizes))]
    public void NonFiniteFlag(int g, int n)
    {
        var k = K(g);
        foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity, 0f })
        {
            var x = Check.Random(n, 24, -1e30f, 1e30f);
            x[n - 1] = bad == 0f ? x[n - 1] : bad;
            using var xb = Up(x);
            using var flag = Up(new int[1]);
            k.NonFinite(Stream, flag.View, xb.View, n);
            Stream.Synchronize();
            var r = new int[1];
            flag.View.CopyToCPU(r);
            Assert.That(r[0], Is.EqualTo(bad == 0f ? 0 : 1), $"last element {bad}");
        }
    }
}
