using System.Runtime.Intrinsics;

namespace MicroExpr.Tests;

/// <summary>
/// The SIMD toolkit (kernels/MicroExpr.Kernels/Simd): eˣ against double on every lane width this machine has, and the
/// generic lane operations the kernels build on (masked first-n loads and stores, horizontal sum and max) through
/// <see cref="ISimd{TV}"/> at Vector512, Vector256 and Vector128. (2ˣ and erf: <see cref="GeluSimdTests"/>.)
/// </summary>
public unsafe class SimdToolkitTests
{
    private static IEnumerable<double> ExpGrid()
    {
        for (double x = -87; x <= 88; x += 0.0173) yield return x;
        yield return 0;
        yield return -1e-30;
    }

    [Test]
    public void ExpIsWithin4e7RelativeOnEveryLaneWidth()
    {
        foreach (double xd in ExpGrid())
        {
            float x = (float)xd;
            double want = Math.Exp(x);
            double tol = 4e-7;
            float v1 = Simd.Exp(Vector128.Create(x)).GetElement(2);
            Assert.That(Math.Abs(v1 / want - 1), Is.LessThanOrEqualTo(tol), $"Vector128 exp({x})");
            if (Vector256.IsHardwareAccelerated)
            {
                float v2 = Simd.Exp(Vector256.Create(x)).GetElement(5);
                Assert.That(Math.Abs(v2 / want - 1), Is.LessThanOrEqualTo(tol), $"Vector256 exp({x})");
            }
            if (SimdIsaSelect.Detected == SimdIsa.V512)
            {
                float v5 = Simd.Exp(Vector512.Create(x)).GetElement(13);
                Assert.That(Math.Abs(v5 / want - 1), Is.LessThanOrEqualTo(tol), $"Vector512 exp({x})");
            }
        }
    }

    [Test]
    public void ExpOfMinusInfinityIsZeroAndNaNStaysNaN()
    {
        Assert.That(Simd.Exp(Vector128.Create(float.NegativeInfinity)).GetElement(0), Is.EqualTo(0f));
        Assert.That(float.IsNaN(Simd.Exp(Vector128.Create(float.NaN)).GetElement(0)), "Vector128 NaN");
        if (SimdIsaSelect.Detected == SimdIsa.V512)
        {
            Assert.That(Simd.Exp(Vector512.Create(float.NegativeInfinity)).GetElement(0), Is.EqualTo(0f));
            Assert.That(float.IsNaN(Simd.Exp(Vector512.Create(float.NaN)).GetElement(0)), "Vector512 NaN");
        }
    }

    /// <summary>Every n from 0 to Count: LoadFirst reads n floats and fills the rest; StoreFirst writes n and leaves the rest.</summary>
    private static void FirstN<TS, TV>() where TS : struct, ISimd<TV> where TV : struct
    {
        int w = TS.Count;
        var src = new float[w];
        for (int i = 0; i < w; i++) src[i] = i + 1;
        for (int n = 0; n <= w; n++)
        {
            var dst = Check.NaNs(w);
            fixed (float* ps = src, pd = dst)
            {
                var v = TS.LoadFirst(ps, n, -7f);
                Assert.That(TS.HSum(v), Is.EqualTo(n * (n + 1) / 2 - 7 * (w - n)), $"{typeof(TS).Name}: LoadFirst n = {n}");
                Assert.That(TS.HMax(v), Is.EqualTo(n == 0 ? -7f : n), $"{typeof(TS).Name}: HMax n = {n}");
                TS.StoreFirst(pd, n, v);
            }
            for (int i = 0; i < w; i++)
                Assert.That(dst[i], i < n ? Is.EqualTo(src[i]) : Is.NaN, $"{typeof(TS).Name}: StoreFirst n = {n}, lane {i}");
        }
    }

    [Test]
    public void FirstNLoadsAndStoresAndHorizontalReductionsOnEveryWidth()
    {
        FirstN<Simd128, Vector128<float>>();
        if (SimdIsaSelect.Detected >= SimdIsa.V256) FirstN<Simd256, Vector256<float>>();
        if (SimdIsaSelect.Detected == SimdIsa.V512) FirstN<Simd512, Vector512<float>>();
    }
}
