using MicroExpr.Kernels;

namespace MicroExpr.Tests.Conv;

/// <summary>
/// <see cref="BatchNormSimd"/> against <see cref="BatchNormReference"/> (double) at every ISA level the machine has
/// (<see cref="SimdIsaSelect.Force"/>), with row lengths S around the vector widths (masked tails) and channel ranges
/// that start past 0; outputs NaN-poisoned, so an element left unwritten fails.
/// </summary>
public unsafe class BatchNormSimdTests
{
    private static IEnumerable<TestCaseData> Cases()
    {
        foreach (var isa in LayerNormTests.Isas())
            foreach (int s in new[] { 1, 3, 4, 7, 8, 9, 16, 17, 33, 49 })
                foreach (bool affine in new[] { true, false })
                    yield return new TestCaseData(isa.ToString(), 3, 5, s, affine);
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesReference(string isa, int n, int c, int s, bool affine)
    {
        var rng = new Random(n * 1000 + c * 100 + s);
        int len = n * c * s;
        float[] x = Rand(rng, len, 2f, 1.5f), dy = Rand(rng, len, 0f, 1f);
        float[]? gamma = affine ? Rand(rng, c, 1f, 0.5f) : null, beta = affine ? Rand(rng, c, 0f, 0.5f) : null;
        const float eps = 1e-5f;
        var xd = LayerNormTests.ToDouble(x);
        double[] my = new double[len], mMean = new double[c], mVar = new double[c];
        BatchNormReference.TrainForward(my, mMean, mVar, xd, gamma is null ? [] : LayerNormTests.ToDouble(gamma),
            beta is null ? [] : LayerNormTests.ToDouble(beta), n, c, s, eps);
        double[] dx = new double[len], dg = new double[c], db = new double[c];
        BatchNormReference.Backward(dx, dg, db, LayerNormTests.ToDouble(dy), xd, mMean, mVar,
            gamma is null ? [] : LayerNormTests.ToDouble(gamma), n, c, s, eps, training: true);
        double[] ey = new double[len], edx = new double[len];
        BatchNormReference.Apply(ey, xd, mMean, mVar, gamma is null ? [] : LayerNormTests.ToDouble(gamma),
            beta is null ? [] : LayerNormTests.ToDouble(beta), n, c, s, eps);
        BatchNormReference.Backward(edx, new double[c], new double[c], LayerNormTests.ToDouble(dy), xd, mMean, mVar,
            gamma is null ? [] : LayerNormTests.ToDouble(gamma), n, c, s, eps, training: false);

        float[] y = Nan(len), mean = Nan(c), var = Nan(c), gx = Nan(len), gg = Nan(c), gb = Nan(c), y2 = Nan(len), gx2 = Nan(len);
        LayerNormTests.WithIsa(Enum.Parse<SimdIsa>(isa), () =>
        {
            fixed (float* py = y, pm = mean, pv = var, px = x, pg = gamma, pb = beta, pdy = dy, pgx = gx, pgg = gg, pgb = gb, py2 = y2, pgx2 = gx2)
            {
                // Two channel ranges, as two threads would run them.
                BatchNormSimd.TrainForward(py, pm, pv, px, pg, pb, n, c, s, eps, 0, 2);
                BatchNormSimd.TrainForward(py, pm, pv, px, pg, pb, n, c, s, eps, 2, c);
                BatchNormSimd.Backward(pgx, pgg, pgb, pdy, px, pm, pv, pg, n, c, s, eps, true, 0, 3);
                BatchNormSimd.Backward(pgx, pgg, pgb, pdy, px, pm, pv, pg, n, c, s, eps, true, 3, c);
                BatchNormSimd.Apply(py2, px, pm, pv, pg, pb, n, c, s, eps, 0, c);
                float[] junkG = new float[c], junkB = new float[c];
                fixed (float* pjg = junkG, pjb = junkB)
                    BatchNormSimd.Backward(pgx2, pjg, pjb, pdy, px, pm, pv, pg, n, c, s, eps, false, 0, c);
            }
        });
        string at = $"{isa} [{n},{c},{s}] affine {affine}";
        Close(mean, mMean, 1e-5, $"mean {at}");
        Close(var, mVar, 1e-4, $"var {at}");
        Close(y, my, 1e-4, $"y {at}");
        Close(y2, ey, 1e-4, $"eval y {at}");
        Close(gx, dx, 1e-4, $"dx {at}");
        Close(gx2, edx, 1e-4, $"eval dx {at}");
        Close(gg, dg, 1e-4, $"dgamma {at}");
        Close(gb, db, 1e-4, $"dbeta {at}");
    }

    private static float[] Rand(Random rng, int n, float mean, float spread)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = mean + spread * (float)(2 * rng.NextDouble() - 1);
        return a;
    }

    private static float[] Nan(int n)
    {
        var a = new float[n];
        Array.Fill(a, float.NaN);
        return a;
    }

    private static void Close(float[] got, double[] want, double tol, string what)
    {
        for (int i = 0; i < want.Length; i++)
            if (!(Math.Abs(got[i] - want[i]) <= tol + tol * Math.Abs(want[i])))
                Assert.Fail($"{what}: element {i} is {got[i]}, reference {want[i]}");
    }
}
