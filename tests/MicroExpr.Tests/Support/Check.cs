using NUnit.Framework;

namespace MicroExpr.Tests.Support;

/// <summary>Shared test helpers: seeded inputs, NaN-filled outputs, element-wise tolerance checks.</summary>
public static class Check
{
    /// <summary>Fresh seeded uniform values in [lo, hi).</summary>
    public static float[] Random(int n, int seed, float lo = -1f, float hi = 1f)
    {
        var rng = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = lo + (hi - lo) * (float)rng.NextDouble();
        return a;
    }

    /// <summary>An output buffer pre-filled with NaN so that an element the code under test never writes fails the check.</summary>
    public static float[] NaNs(int n)
    {
        var a = new float[n];
        Array.Fill(a, float.NaN);
        return a;
    }

    /// <summary>Element by element: |actual - expected| ≤ atol + rtol·|expected|, and every element finite.</summary>
    public static void Close(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, double atol, double rtol, string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), $"{what}: length");
        for (int i = 0; i < actual.Length; i++)
        {
            double a = actual[i], e = expected[i];
            if (!double.IsFinite(a) || Math.Abs(a - e) > atol + rtol * Math.Abs(e))
                Assert.Fail($"{what}: element {i} is {a}, expected {e} (atol {atol}, rtol {rtol})");
        }
    }

    public static void Close(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double atol, double rtol, string what)
    {
        var e = new double[expected.Length];
        for (int i = 0; i < e.Length; i++) e[i] = expected[i];
        Close(actual, e, atol, rtol, what);
    }
}
