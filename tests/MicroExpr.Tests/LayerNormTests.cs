using MicroExpr.Tensors.Cpu;

namespace MicroExpr.Tests;

/// <summary>LayerNormSimd against the double-accumulating reference, every ISA level, and gradchecks of the reference.</summary>
public unsafe class LayerNormTests
{
    private const float Eps = 1e-5f;
    private static readonly int[] Cs = [1, 7, 15, 16, 17, 50, 63, 64, 65, 192, 197, 768, 3 * 512 + 7];

    internal static IEnumerable<SimdIsa> Isas() =>
        new[] { SimdIsa.Scalar, SimdIsa.V256, SimdIsa.V512 }.Where(i => i <= SimdIsaSelect.Detected);

    private static IEnumerable<TestCaseData> Cases()
    {
        foreach (var isa in Isas())
            foreach (int threads in new[] { 1, 2 })
            {
                foreach (int c in Cs)
                    foreach (int rows in new[] { 1, 3, 37 })
                        yield return new TestCaseData(isa.ToString(), rows, c, threads);
                // Large enough that threads = 2 really splits the rows.
                yield return new TestCaseData(isa.ToString(), 64, 768, threads);
                yield return new TestCaseData(isa.ToString(), 100, 3 * 512 + 7, threads);
                yield return new TestCaseData(isa.ToString(), 3200, 192, threads);
                yield return new TestCaseData(isa.ToString(), 301, 197, threads);
            }
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesReference(string isa, int rows, int c, int threads) =>
        WithIsa(Enum.Parse<SimdIsa>(isa), () => Compare(rows, c, threads, offset: 0f, seed: rows * 1000 + c));

    /// <summary>Rows with a large mean and small spread: one-pass E[x²] − E[x]² in float would lose the variance.</summary>
    [TestCase(3, 192, 1000f), TestCase(37, 197, 1000f), TestCase(5, 768, 10000f), TestCase(4, 17, 1000f)]
    public void LargeMeanStaysAccurate(int rows, int c, float offset)
    {
        foreach (var isa in Isas())
            WithIsa(isa, () => Compare(rows, c, 1, offset, seed: 7));
    }

    [Test]
    public void ForwardInPlace()
    {
        const int rows = 9, c = 197;
        var x = Check.Random(rows * c, 3);
        var gamma = Check.Random(c, 4, 0.5f, 1.5f);
        var beta = Check.Random(c, 5);
        var (y, _, _) = RunForward(x, gamma, beta, rows, c, 1);
        var xy = (float[])x.Clone();
        var mean = Check.NaNs(rows);
        var rstd = Check.NaNs(rows);
        fixed (float* pxy = xy, pm = mean, pr = rstd, pg = gamma, pb = beta)
            LayerNormSimd.Forward(pxy, pm, pr, pxy, pg, pb, rows, c, Eps, 1);
        Check.Close(xy, y, 0, 0, "in-place y");
    }

    [Test]
    public void TwoThreadsMatchOneThreadOnForward()
    {
        const int rows = 3200, c = 192;
        var x = Check.Random(rows * c, 11);
        var gamma = Check.Random(c, 12, 0.5f, 1.5f);
        var beta = Check.Random(c, 13);
        var (y1, m1, r1) = RunForward(x, gamma, beta, rows, c, 1);
        var (y2, m2, r2) = RunForward(x, gamma, beta, rows, c, 2);
        Check.Close(y2, y1, 0, 0, "y");
        Check.Close(m2, m1, 0, 0, "mean");
        Check.Close(r2, r1, 0, 0, "rstd");
    }

    private static void Compare(int rows, int c, int threads, float offset, int seed)
    {
        var x = Check.Random(rows * c, seed, offset - 1f, offset + 1f);
        var gamma = Check.Random(c, seed + 1, 0.5f, 1.5f);
        var beta = Check.Random(c, seed + 2);
        var dy = Check.Random(rows * c, seed + 3);

        // Reference in double on the same float inputs.
        double[] xd = ToDouble(x), gd = ToDouble(gamma), bd = ToDouble(beta), dyd = ToDouble(dy);
        var ey = new double[rows * c];
        var em = new double[rows];
        var er = new double[rows];
        LayerNormReference.Forward<double>(ey, em, er, xd, gd, bd, rows, c, Eps);

        var (y, mean, rstd) = RunForward(x, gamma, beta, rows, c, threads);
        string at = $"[{rows},{c}] threads {threads} {SimdIsaSelect.Current}";
        Check.Close(mean, em, 1e-5, 1e-6, "mean " + at);
        Check.Close(rstd, er, 0, 2e-4, "rstd " + at);
        Check.Close(y, ey, 2e-4, 2e-4, "y " + at);

        // Backward from the reference's float statistics, compared with the reference on the same floats.
        var meanF = ToFloat(em);
        var rstdF = ToFloat(er);
        var edx = new double[rows * c];
        var edg = new double[c];
        var edb = new double[c];
        LayerNormReference.Backward<double>(edx, edg, edb, dyd, xd, ToDouble(meanF), ToDouble(rstdF), gd, rows, c);
        var dx = Check.NaNs(rows * c);
        var dg = Check.NaNs(c);
        var db = Check.NaNs(c);
        fixed (float* pdx = dx, pdg = dg, pdb = db, pdy = dy, px = x, pm = meanF, pr = rstdF, pg = gamma)
            LayerNormSimd.Backward(pdx, pdg, pdb, pdy, px, pm, pr, pg, rows, c, threads);
        Check.Close(dx, edx, 1e-4, 1e-3, "dx " + at);
        double sumTol = 2e-6 * rows + 1e-5;
        Check.Close(dg, edg, sumTol, 1e-4, "dgamma " + at);
        Check.Close(db, edb, sumTol, 1e-4, "dbeta " + at);
    }

    private static (float[] y, float[] mean, float[] rstd) RunForward(float[] x, float[] gamma, float[] beta, int rows, int c, int threads)
    {
        var y = Check.NaNs(rows * c);
        var mean = Check.NaNs(rows);
        var rstd = Check.NaNs(rows);
        fixed (float* py = y, pm = mean, pr = rstd, px = x, pg = gamma, pb = beta)
            LayerNormSimd.Forward(py, pm, pr, px, pg, pb, rows, c, Eps, threads);
        return (y, mean, rstd);
    }

    // ------------------------------------------------------------ reference gradcheck (double, central differences)

    [TestCase(1, 1), TestCase(3, 5), TestCase(2, 7)]
    public void ReferenceBackwardMatchesFiniteDifferences(int rows, int c)
    {
        const double eps = 1e-3, h = 1e-6;
        double[] x = ToDouble(Check.Random(rows * c, 21, -2f, 2f)), gamma = ToDouble(Check.Random(c, 22, 0.5f, 1.5f));
        double[] beta = ToDouble(Check.Random(c, 23)), g = ToDouble(Check.Random(rows * c, 24));
        double Loss(double[] xx, double[] gg, double[] bb)
        {
            var y = new double[rows * c];
            LayerNormReference.Forward<double>(y, new double[rows], new double[rows], xx, gg, bb, rows, c, eps);
            double l = 0;
            for (int i = 0; i < y.Length; i++) l += y[i] * g[i];
            return l;
        }
        var mean = new double[rows];
        var rstd = new double[rows];
        LayerNormReference.Forward<double>(new double[rows * c], mean, rstd, x, gamma, beta, rows, c, eps);
        var dx = new double[rows * c];
        var dgamma = new double[c];
        var dbeta = new double[c];
        LayerNormReference.Backward<double>(dx, dgamma, dbeta, g, x, mean, rstd, gamma, rows, c);

        Check.Close(ToFloat(dx), Numeric(x, () => Loss(x, gamma, beta), h), 1e-6, 1e-5, "dx");
        Check.Close(ToFloat(dgamma), Numeric(gamma, () => Loss(x, gamma, beta), h), 1e-6, 1e-5, "dgamma");
        Check.Close(ToFloat(dbeta), Numeric(beta, () => Loss(x, gamma, beta), h), 1e-6, 1e-5, "dbeta");
    }

    /// <summary>Central differences of loss() with respect to each element of v (perturbed in place).</summary>
    internal static double[] Numeric(double[] v, Func<double> loss, double h)
    {
        var d = new double[v.Length];
        for (int i = 0; i < v.Length; i++)
        {
            double keep = v[i];
            v[i] = keep + h;
            double lp = loss();
            v[i] = keep - h;
            double lm = loss();
            v[i] = keep;
            d[i] = (lp - lm) / (2 * h);
        }
        return d;
    }

    internal static void WithIsa(SimdIsa isa, Action body)
    {
        var keep = SimdIsaSelect.Force;
        SimdIsaSelect.Force = isa;
        try { body(); }
        finally { SimdIsaSelect.Force = keep; }
    }

    internal static double[] ToDouble(float[] a) => Array.ConvertAll(a, v => (double)v);
    internal static float[] ToFloat(double[] a) => Array.ConvertAll(a, v => (float)v);
}
