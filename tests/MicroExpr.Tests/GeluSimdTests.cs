using System.Runtime.Intrinsics;
using MicroExpr.Tensors.Cpu;

namespace MicroExpr.Tests;

/// <summary>
/// GeluSimd's own approximations (rational erf, polynomial 2^u) against double precision on dense grids, on every lane
/// width it can take (Vector512, Vector256, scalar), well past the range the op tests sample.
/// </summary>
public unsafe class GeluSimdTests
{
    /// <summary>erf in double: Maclaurin series for |z| &lt; 3, the erfc continued fraction beyond.</summary>
    public static double ErfD(double z)
    {
        double t = Math.Abs(z);
        if (t < 3) return Ops.ElementwiseOpTests<OnCpu>.Erf(z);
        double f = 0;
        for (int k = 80; k >= 1; k--) f = k / 2.0 / (t + f);
        double erfc = Math.Exp(-t * t) / Math.Sqrt(Math.PI) / (t + f);
        return Math.Sign(z) * (1 - erfc);
    }

    public static double GeluD(double x) => 0.5 * x * (1 + ErfD(x / Math.Sqrt(2)));

    static double GeluGradD(double x) => 0.5 * (1 + ErfD(x / Math.Sqrt(2))) + x * Math.Exp(-0.5 * x * x) / Math.Sqrt(2 * Math.PI);

    static float[] Grid(double lo, double hi, double step)
    {
        var g = new List<float>();
        for (double v = lo; v <= hi; v += step) g.Add((float)v);
        g.AddRange([0f, -0f, 1e-30f, -1e-30f, 30f, -30f, 1e4f, -1e4f]);
        return g.ToArray();
    }

    [Test]
    public void ErfOnEveryLaneWidthIsWithin4e7OfDouble()
    {
        var z = Grid(-7, 7, 1e-3);
        foreach (var v in z)
        {
            double want = ErfD(v);
            float s = Simd.Erf(v);
            float v2 = Simd.Erf(Vector256.Create(v)).GetElement(3);
            float v5 = Simd.Erf(Vector512.Create(v)).GetElement(11);
            Assert.That(Math.Abs(s - want), Is.LessThanOrEqualTo(4e-7), $"scalar erf({v})");
            Assert.That(Math.Abs(v2 - want), Is.LessThanOrEqualTo(4e-7), $"Vector256 erf({v})");
            Assert.That(Math.Abs(v5 - want), Is.LessThanOrEqualTo(4e-7), $"Vector512 erf({v})");
        }
    }

    [Test]
    public void Exp2IsWithin3e7RelativeDownToItsClamp()
    {
        for (double u = -124.9; u <= 0; u += 0.0137)
        {
            double want = Math.Pow(2, u);
            float s = Simd.Exp2((float)u);
            float v2 = Simd.Exp2(Vector256.Create((float)u)).GetElement(0);
            float v5 = Simd.Exp2(Vector512.Create((float)u)).GetElement(0);
            // (float)u itself moves 2^u by up to |u|·2^-24·ln2 relative.
            double tol = 3e-7 + Math.Abs(u) * 6e-8 * 0.7;
            Assert.That(Math.Abs(s / want - 1), Is.LessThanOrEqualTo(tol), $"scalar 2^{u}");
            Assert.That(Math.Abs(v2 / want - 1), Is.LessThanOrEqualTo(tol), $"Vector256 2^{u}");
            Assert.That(Math.Abs(v5 / want - 1), Is.LessThanOrEqualTo(tol), $"Vector512 2^{u}");
        }
        Assert.That(Simd.Exp2(-1000f), Is.LessThan(1e-37f).And.GreaterThanOrEqualTo(0f));
    }

    /// <summary>Forward and backward through the public entry points (whatever lanes this machine has, plus the scalar tail: n is not a multiple of 16).</summary>
    [Test]
    public void ForwardAndBackwardMatchDoubleOnADenseGrid()
    {
        var x = Grid(-12, 12, 7e-4);
        int n = x.Length;
        Assert.That(n % 16, Is.Not.Zero, "the grid must leave a scalar tail");
        var y = new float[n];
        var dx = new float[n];
        var dy = new float[n];
        for (int i = 0; i < n; i++) dy[i] = 1f + (i % 7) * 0.25f;
        fixed (float* px = x, py = y, pdx = dx, pdy = dy)
        {
            GeluSimd.Forward(py, px, n);
            GeluSimd.Backward(pdx, px, pdy, n);
        }
        for (int i = 0; i < n; i++)
        {
            double v = x[i];
            double atol = 1e-6 + 2e-7 * Math.Abs(v);
            Assert.That(Math.Abs(y[i] - GeluD(v)), Is.LessThanOrEqualTo(atol + 1e-7 * Math.Abs(GeluD(v))), $"gelu({v})");
            double g = dy[i] * GeluGradD(v);
            Assert.That(Math.Abs(dx[i] - g), Is.LessThanOrEqualTo(dy[i] * 1e-6 + 1e-6 * Math.Abs(g)), $"gelu'({v})");
        }
    }
}
