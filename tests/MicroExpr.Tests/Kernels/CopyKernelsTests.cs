using MicroExpr.Kernels;

namespace MicroExpr.Tests.Kernels;

/// <summary>CopyKernels (strided copy, rank ≤ 6, accumulate) against a literal index walk.</summary>
[TestFixture(KernelBackend.Cpu)]
[TestFixture(KernelBackend.Cuda, Category = "Gpu")]
public class CopyKernelsTests(KernelBackend backend) : KernelFixture(backend)
{
    protected override int CpuWarpsPerGroup => 8; // groups of 256 threads (KernelTest.GroupSizes)

    private CopyKernels K(int g) => Launcher(g, (a, gs) => new CopyKernels(a, gs));

    private static int[] Strides(int[] shape)
    {
        var s = new int[shape.Length];
        int acc = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]; }
        return s;
    }

    /// <summary>(name, shape, dst offset, dst strides, dst length, src offset, src strides, src length).</summary>
    private static IEnumerable<TestCaseData> Cases()
    {
        var cases = new List<(string, int[], int, int[], int, int, int[], int)>
        {
            ("contiguous", [6 * 512 + 7], 0, [1], 6 * 512 + 7, 0, [1], 6 * 512 + 7),
            ("scalar", [], 3, [], 5, 1, [], 2),
            ("transpose", [17, 33], 0, [1, 17], 17 * 33, 0, [33, 1], 17 * 33),
            ("permute4", [2, 3, 5, 7], 0, Strides([2, 3, 5, 7]), 210, 0, [105, 7, 21, 1], 210),
            ("slice", [3, 4], 0, [4, 1], 12, 2, [7, 1], 21),
            ("expand", [197, 3], 0, [3, 1], 197 * 3, 1, [0, 1], 4),
            ("rank6", [2, 1, 3, 2, 2, 3], 0, Strides([2, 1, 3, 2, 2, 3]), 72, 0, [36, 36, 1, 18, 3, 6], 72),
            ("into-slice", [2, 5], 3, [9, 1], 21, 0, [5, 1], 10),
        };
        foreach (var c in cases)
            foreach (int g in KernelTest.GroupSizes)
                foreach (bool acc in new[] { false, true })
                    yield return new TestCaseData(c.Item2, c.Item3, c.Item4, c.Item5, c.Item6, c.Item7, c.Item8, acc, g)
                        .SetArgDisplayNames(c.Item1, acc ? "accumulate" : "assign", $"g{g}");
    }

    [TestCaseSource(nameof(Cases))]
    public void CopyMatchesIndexWalk(int[] shape, int dOff, int[] dStr, int dLen, int sOff, int[] sStr, int sLen, bool accumulate, int g)
    {
        var src = Check.Random(sLen, 7);
        var dst0 = Check.Random(dLen, 8);
        var expected = dst0.Select(v => (double)v).ToArray();
        int n = Support.Ref.Numel(shape);
        var idx = new int[shape.Length];
        for (int e = 0; e < n; e++)
        {
            int rem = e, d = dOff, s = sOff;
            for (int j = shape.Length - 1; j >= 0; j--) { idx[j] = rem % shape[j]; rem /= shape[j]; d += idx[j] * dStr[j]; s += idx[j] * sStr[j]; }
            expected[d] = accumulate ? expected[d] + src[s] : src[s];
        }
        using var sb = Up(src);
        using var db = Up(dst0);
        K(g).Copy(Stream, db.View.SubView(dOff, dLen - dOff), dStr, sb.View.SubView(sOff, sLen - sOff), sStr, shape, accumulate);
        Check.Close(Down(db, dLen), expected, 1e-6, 1e-6, "copy");
    }

    [Test]
    public void AccumulatingIntoABroadcastViewIsRefused()
    {
        using var sb = Up(new float[4]);
        using var db = Up(new float[2]);
        Assert.Throws<ArgumentException>(() => K(32).Copy(Stream, db.View, [0, 1], sb.View, [2, 1], [2, 2], true));
    }
}
