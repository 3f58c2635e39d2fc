using MicroExpr.Tensors;

namespace MicroExpr.Tests.Ops;

/// <summary>sum, mean, max and variance over axes; once per backend (the ILGPU run takes a subset).</summary>
[TestFixture(typeof(OnCpu))]
[TestFixture(typeof(OnIlgpuCpu))]
public class ReduceOpTests<TDevice> where TDevice : ITestDevice
{
    /// <summary>Reference reduction: groups the elements of x by their index with the reduced axes set to 0.</summary>
    private static double[] Reduce(double[] x, int[] shape, int[] axes, Func<List<double>, double> f)
    {
        var red = axes.Length == 0 ? Enumerable.Range(0, shape.Length).ToHashSet() : axes.Select(a => a < 0 ? a + shape.Length : a).ToHashSet();
        var outShape = shape.Select((d, i) => red.Contains(i) ? 1 : d).ToArray();
        var groups = new List<double>[Ref.Numel(outShape)];
        for (int i = 0; i < groups.Length; i++) groups[i] = new List<double>();
        var idx = new int[shape.Length];
        for (int e = 0; e < x.Length; e++)
        {
            int rem = e;
            for (int d = shape.Length - 1; d >= 0; d--) { idx[d] = rem % shape[d]; rem /= shape[d]; }
            int o = 0;
            for (int d = 0; d < shape.Length; d++) o = o * outShape[d] + (red.Contains(d) ? 0 : idx[d]);
            groups[o].Add(x[e]);
        }
        return groups.Select(f).ToArray();
    }

    private static IEnumerable<TestCaseData> Cases()
    {
        (int[] shape, int[] axes)[] cases =
        [
            ([1], []), ([17], []), ([17], [0]), ([3, 4], [0]), ([3, 4], [1]), ([3, 4], [-1]), ([2, 3, 5], [0, 2]),
            ([2, 3, 5], [1]), ([4, 1, 33], [2]), ([2, 3, 4, 5], [1, 3]), ([6, 50, 192], [0, 1]),
            ([2000, 40], [0]), ([3, 700, 33], [0, 1]), // column sums split over threads, widths not a multiple of 16
        ];
        if (TDevice.Small) cases = [cases[1], cases[3], cases[6], cases[9], cases[10]];
        foreach (var (s, a) in cases)
            foreach (bool keep in TDevice.Small ? new[] { s.Length == 2 } : new[] { false, true })
                yield return new TestCaseData(s, a, keep).SetArgDisplayNames(ShapeUtil.Format(s), ShapeUtil.Format(a), keep ? "keep" : "drop");
    }

    [TestCaseSource(nameof(Cases))]
    public void Sum(int[] shape, int[] axes, bool keep) => new GradCheck
    {
        Device = TDevice.Device, Name = "sum", Shapes = [shape], Op = t => t[0].Sum(axes, keep),
        Reference = x => Reduce(x[0], shape, axes, g => g.Sum()), ForwardAtol = 1e-4, MaxGradChecks = 200,
    }.Run();

    [TestCaseSource(nameof(Cases))]
    public void Mean(int[] shape, int[] axes, bool keep) => new GradCheck
    {
        Device = TDevice.Device, Name = "mean", Shapes = [shape], Op = t => t[0].Mean(axes, keep),
        Reference = x => Reduce(x[0], shape, axes, g => g.Average()), MaxGradChecks = 200,
    }.Run();

    [TestCaseSource(nameof(Cases))]
    public void Variance(int[] shape, int[] axes, bool keep)
    {
        var red = axes.Length == 0 ? shape : axes.Select(a => shape[a < 0 ? a + shape.Length : a]).ToArray();
        bool unbiased = Ref.Numel(red) > 1;
        new GradCheck
        {
            Device = TDevice.Device, Name = "variance", Shapes = [shape], Op = t => t[0].Variance(axes, unbiased, keep),
            Reference = x => Reduce(x[0], shape, axes, g =>
            {
                double m = g.Average();
                return g.Sum(v => (v - m) * (v - m)) / (unbiased ? g.Count - 1 : g.Count);
            }),
            MaxGradChecks = 200,
        }.Run();
    }

    private static IEnumerable<TestCaseData> MaxCases()
    {
        (int[] shape, int axis)[] cases = [([1], 0), ([17], 0), ([3, 4], 0), ([3, 4], 1), ([2, 3, 5], 1), ([2, 33, 3], -1), ([4, 50, 5], 1)];
        if (TDevice.Small) cases = [cases[1], cases[4], cases[6]];
        foreach (var (s, a) in cases)
            yield return new TestCaseData(s, a).SetArgDisplayNames(ShapeUtil.Format(s), a.ToString());
    }

    [TestCaseSource(nameof(MaxCases))]
    public void Max(int[] shape, int axis)
    {
        int n = Ref.Numel(shape);
        new GradCheck
        {
            Device = TDevice.Device, Name = "max", Shapes = [shape], Op = t => t[0].Max(axis),
            Reference = x => Reduce(x[0], shape, [axis], g => g.Max()),
            // Distinct values spaced well apart so finite differences never cross a tie.
            Init = (_, j, _) => (float)(((j * 7919L) % n) * 0.01),
        }.Run();
    }
}
