using MicroExpr.Tensors.Cpu;
using static MicroExpr.Tests.LayerNormTests;

namespace MicroExpr.Tests;

/// <summary>SoftmaxSimd (softmax and log-softmax, forward and backward) against the double reference, plus gradchecks.</summary>
public unsafe class SoftmaxTests
{
    private static readonly int[] Cols = [1, 7, 15, 16, 17, 50, 63, 64, 65, 192, 197, 768, 3 * 512 + 7];

    private static IEnumerable<TestCaseData> Cases()
    {
        foreach (var isa in Isas())
            foreach (int threads in new[] { 1, 2 })
            {
                foreach (int c in Cols)
                    foreach (int rows in new[] { 1, 3, 37 })
                        yield return new TestCaseData(isa.ToString(), rows, c, threads);
                yield return new TestCaseData(isa.ToString(), 9600, 50, threads); // [192·50, 50]
                yield return new TestCaseData(isa.ToString(), 3200, 192, threads);
                yield return new TestCaseData(isa.ToString(), 100, 3 * 512 + 7, threads);
                yield return new TestCaseData(isa.ToString(), 1001, 65, threads);
            }
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesReference(string isa, int rows, int cols, int threads) =>
        WithIsa(Enum.Parse<SimdIsa>(isa), () => Compare(rows, cols, threads, -3f, 3f, seed: rows * 1000 + cols));

    /// <summary>Inputs up to ±80: exp(x) alone would overflow float; max subtraction must keep everything finite.</summary>
    [TestCase(5, 50), TestCase(3, 197), TestCase(2, 7), TestCase(4, 1543)]
    public void LargeInputsStayFinite(int rows, int cols)
    {
        foreach (var isa in Isas())
        {
            WithIsa(isa, () => Compare(rows, cols, 1, -80f, 80f, seed: 5));
            WithIsa(isa, () => Compare(rows, cols, 1, 70f, 80f, seed: 6));
            WithIsa(isa, () => Compare(rows, cols, 1, -80f, -70f, seed: 7));
        }
    }

    [Test]
    public void InPlace()
    {
        const int rows = 7, cols = 50;
        var x = Check.Random(rows * cols, 3, -3f, 3f);
        var y = Check.NaNs(rows * cols);
        var ly = Check.NaNs(rows * cols);
        var xy = (float[])x.Clone();
        var xly = (float[])x.Clone();
        fixed (float* px = x, py = y, ply = ly, pxy = xy, pxly = xly)
        {
            SoftmaxSimd.Forward(py, px, rows, cols, 1);
            SoftmaxSimd.LogForward(ply, px, rows, cols, 1);
            SoftmaxSimd.Forward(pxy, pxy, rows, cols, 1);
            SoftmaxSimd.LogForward(pxly, pxly, rows, cols, 1);
        }
        Check.Close(xy, y, 0, 0, "in-place softmax");
        Check.Close(xly, ly, 0, 0, "in-place log-softmax");
    }

    private static void Compare(int rows, int cols, int threads, float lo, float hi, int seed)
    {
        int n = rows * cols;
        var x = Check.Random(n, seed, lo, hi);
        var dy = Check.Random(n, seed + 1);
        double[] xd = ToDouble(x), dyd = ToDouble(dy);
        string at = $"[{rows},{cols}] threads {threads} {SimdIsaSelect.Current}";

        var ey = new double[n];
        var ely = new double[n];
        SoftmaxReference.Forward<double>(ey, xd, rows, cols);
        SoftmaxReference.LogForward<double>(ely, xd, rows, cols);
        var y = Check.NaNs(n);
        var ly = Check.NaNs(n);
        fixed (float* px = x, py = y, ply = ly)
        {
            SoftmaxSimd.Forward(py, px, rows, cols, threads);
            SoftmaxSimd.LogForward(ply, px, rows, cols, threads);
        }
        Check.Close(y, ey, 1e-7, 1e-5, "softmax y " + at);
        Check.Close(ly, ely, 2e-5, 1e-6, "log-softmax y " + at);

        // Backward from the reference outputs rounded to float, against the reference on the same floats.
        float[] yf = ToFloat(ey), lyf = ToFloat(ely);
        var edx = new double[n];
        var eldx = new double[n];
        SoftmaxReference.Backward<double>(edx, ToDouble(yf), dyd, rows, cols);
        SoftmaxReference.LogBackward<double>(eldx, ToDouble(lyf), dyd, rows, cols);
        var dx = Check.NaNs(n);
        var ldx = Check.NaNs(n);
        fixed (float* pdx = dx, pldx = ldx, py = yf, ply = lyf, pdy = dy)
        {
            SoftmaxSimd.Backward(pdx, py, pdy, rows, cols, threads);
            SoftmaxSimd.LogBackward(pldx, ply, pdy, rows, cols, threads);
        }
        Check.Close(dx, edx, 1e-6, 1e-4, "softmax dx " + at);
        Check.Close(ldx, eldx, 1e-5 * Math.Sqrt(cols), 1e-4, "log-softmax dx " + at);
    }

    // ------------------------------------------------------------ reference gradcheck (double, central differences)

    [TestCase(1, 1), TestCase(2, 5), TestCase(3, 17)]
    public void ReferenceBackwardMatchesFiniteDifferences(int rows, int cols)
    {
        const double h = 1e-6;
        int n = rows * cols;
        double[] x = ToDouble(Check.Random(n, 31, -3f, 3f)), g = ToDouble(Check.Random(n, 32));
        double Loss(bool log)
        {
            var y = new double[n];
            if (log) SoftmaxReference.LogForward<double>(y, x, rows, cols);
            else SoftmaxReference.Forward<double>(y, x, rows, cols);
            double l = 0;
            for (int i = 0; i < n; i++) l += y[i] * g[i];
            return l;
        }
        var y = new double[n];
        var dx = new double[n];
        SoftmaxReference.Forward<double>(y, x, rows, cols);
        SoftmaxReference.Backward<double>(dx, y, g, rows, cols);
        Check.Close(ToFloat(dx), Numeric(x, () => Loss(false), h), 1e-7, 1e-5, "softmax dx");

        SoftmaxReference.LogForward<double>(y, x, rows, cols);
        SoftmaxReference.LogBackward<double>(dx, y, g, rows, cols);
        Check.Close(ToFloat(dx), Numeric(x, () => Loss(true), h), 1e-7, 1e-5, "log-softmax dx");
    }
}
