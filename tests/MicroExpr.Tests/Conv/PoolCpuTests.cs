using MicroExpr.Kernels;

namespace MicroExpr.Tests.Conv;

/// <summary>
/// <see cref="PoolCpu.MaxPool"/> (the vector kernel at 16 and at 8 lanes, and the scalar loop) against <see cref="PoolReference"/>:
/// values and int32 indices exactly, on inputs full of ties (ReLU zeros and values rounded to a few levels, as the stem
/// pool sees after ReLU) and with NaNs, outputs NaN-poisoned, on rows narrower than, equal to and wider than a vector's
/// 16 outputs, strides 1, 2, 3, padding 0 to 3, ceil mode, 2-d and 3-d, planes split at an odd point. Average pooling
/// (<see cref="PoolCpu.AvgPool"/>, both paths, forward and backward) likewise, within a float tolerance.
/// </summary>
public unsafe class PoolCpuTests
{
    /// <summary>Each case runs the Vector512 kernel, the same kernel on Vector256 (forced: CI's machine has AVX-512) and
    /// the scalar loops.</summary>
    private static readonly SimdIsa[] Paths = [SimdIsa.V512, SimdIsa.V256, SimdIsa.Scalar];

    // name, planes, D, H, W, kd, kh, kw, sd, sh, sw, pd, ph, pw, ceil
    private static IEnumerable<TestCaseData> Cases()
    {
        yield return new TestCaseData("stem 3x3/2 pad 1, 56", 3, 1, 56, 56, 1, 3, 3, 1, 2, 2, 0, 1, 1, false);
        yield return new TestCaseData("3x3/2 pad 1, 28 (one partial chunk)", 4, 1, 28, 28, 1, 3, 3, 1, 2, 2, 0, 1, 1, false);
        yield return new TestCaseData("3x3/2 pad 1, 33, ceil", 3, 1, 33, 33, 1, 3, 3, 1, 2, 2, 0, 1, 1, true);
        yield return new TestCaseData("2x2/2, 64 (exactly two chunks)", 2, 1, 64, 64, 1, 2, 2, 1, 2, 2, 0, 0, 0, false);
        yield return new TestCaseData("3x3/1 pad 1, 17 (16 + 1 lanes)", 3, 1, 17, 17, 1, 3, 3, 1, 1, 1, 0, 1, 1, false);
        yield return new TestCaseData("3x3/1 pad 0, 40x9", 2, 1, 9, 40, 1, 3, 3, 1, 1, 1, 0, 0, 0, false);
        yield return new TestCaseData("7x7/3 pad 3, 50 (gather)", 2, 1, 50, 50, 1, 7, 7, 1, 3, 3, 0, 3, 3, true);
        yield return new TestCaseData("5x2/2x3 pad 2x1, 19x61", 2, 1, 19, 61, 1, 5, 2, 1, 2, 3, 0, 2, 1, false);
        yield return new TestCaseData("1x1/1, 20", 2, 1, 5, 20, 1, 1, 1, 1, 1, 1, 0, 0, 0, false);
        yield return new TestCaseData("narrow 7, Wo 4 (scalar at 16 lanes, a partial chunk at 8)", 3, 1, 7, 7, 1, 3, 3, 1, 2, 2, 0, 1, 1, true);
        yield return new TestCaseData("narrow 5, Wo 3 (scalar loop)", 2, 1, 5, 5, 1, 3, 3, 1, 2, 2, 0, 1, 1, true);
        yield return new TestCaseData("3d 2x3x3/1x2x2 pad 0,1,1, 5x29x29", 3, 5, 29, 29, 2, 3, 3, 1, 2, 2, 0, 1, 1, false);
        yield return new TestCaseData("3d 3x3x3/2 pad 1, 4x18x40, ceil", 2, 4, 18, 40, 3, 3, 3, 2, 2, 2, 1, 1, 1, true);
    }

    [TestCaseSource(nameof(Cases))]
    public void MaxPoolMatchesReference(string name, int planes, int d, int h, int w, int kd, int kh, int kw, int sd, int sh, int sw,
        int pd, int ph, int pw, bool ceil)
    {
        var g = new PoolGeometry
        {
            Planes = planes, D = d, H = h, W = w, Kd = kd, Kh = kh, Kw = kw, Sd = sd, Sh = sh, Sw = sw, Pd = pd, Ph = ph, Pw = pw,
            Do = PoolGeometry.OutputSize(d, kd, sd, pd, ceil, "test"),
            Ho = PoolGeometry.OutputSize(h, kh, sh, ph, ceil, "test"),
            Wo = PoolGeometry.OutputSize(w, kw, sw, pw, ceil, "test"),
        };
        foreach (var kind in new[] { "random", "ties", "nan", "one-nan" })
        {
            var x = Input(kind, planes * g.InPlane, name.Length + kind.Length);
            var yRef = new double[planes * g.OutPlane];
            var iRef = new int[yRef.Length];
            PoolReference.MaxPool(yRef, iRef, x.Select(v => (double)v).ToArray(), g);
            foreach (var isa in Paths)
            {
                string what = $"{name} {kind} {isa}";
                var y = Check.NaNs(yRef.Length);
                var idx = Enumerable.Repeat(int.MinValue, yRef.Length).ToArray();
                var keep = SimdIsaSelect.Force;
                SimdIsaSelect.Force = isa;
                try
                {
                    fixed (float* py = y, px = x)
                    fixed (int* pi = idx)
                    {
                        // Two calls over an odd split of the planes, as the backend's threads would take them.
                        int split = planes / 2 + 1;
                        PoolCpu.MaxPool(py, pi, px, g, 0, split);
                        PoolCpu.MaxPool(py, pi, px, g, split, planes);
                    }
                }
                finally
                {
                    SimdIsaSelect.Force = keep;
                }
                Assert.That(idx, Is.EqualTo(iRef), what + ": indices");
                for (int i = 0; i < y.Length; i++)
                {
                    // The value is the input at the index (NaN where the window's winner is a NaN).
                    if (double.IsNaN(yRef[i])) Assert.That(float.IsNaN(y[i]), what + $": y[{i}] = {y[i]}, reference NaN");
                    else Assert.That(y[i], Is.EqualTo((float)yRef[i]), what + $": y[{i}]");
                }
            }
        }
    }

    // name, planes, D, H, W, kd, kh, kw, sd, sh, sw, pd, ph, pw, ceil
    private static IEnumerable<TestCaseData> AvgCases()
    {
        yield return new TestCaseData("2x2/2, 64 (FDP's pool, two chunks)", 3, 1, 64, 64, 1, 2, 2, 1, 2, 2, 0, 0, 0, false);
        yield return new TestCaseData("3x3/2 pad 1, 33, ceil (16 + 1 lanes)", 3, 1, 33, 33, 1, 3, 3, 1, 2, 2, 0, 1, 1, true);
        yield return new TestCaseData("3x3/1 pad 1, 17", 2, 1, 17, 17, 1, 3, 3, 1, 1, 1, 0, 1, 1, false);
        yield return new TestCaseData("5x2/2x3 pad 2x1, 19x61", 2, 1, 19, 61, 1, 5, 2, 1, 2, 3, 0, 2, 1, false);
        yield return new TestCaseData("7x7/3 pad 3, 50, ceil", 2, 1, 50, 50, 1, 7, 7, 1, 3, 3, 0, 3, 3, true);
        yield return new TestCaseData("narrow 7 (scalar loop)", 3, 1, 7, 7, 1, 3, 3, 1, 2, 2, 0, 1, 1, true);
        yield return new TestCaseData("3d 3x3x3/2 pad 1, 4x18x40, ceil", 2, 4, 18, 40, 3, 3, 3, 2, 2, 2, 1, 1, 1, true);
    }

    /// <summary><see cref="PoolCpu.AvgPool"/> forward (the vector kernel at 16 and 8 lanes, and the scalar loop) against
    /// <see cref="PoolReference.AvgPool"/>, with and without count_include_pad, outputs NaN-poisoned; and the backward
    /// (scalar) of the same geometry against the adjoint of the reference (dx[i] = Σ over windows holding i of dy/count).</summary>
    [TestCaseSource(nameof(AvgCases))]
    public void AvgPoolMatchesReference(string name, int planes, int d, int h, int w, int kd, int kh, int kw, int sd, int sh, int sw,
        int pd, int ph, int pw, bool ceil)
    {
        foreach (int include in new[] { 0, 1 })
        {
            var g = new PoolGeometry
            {
                Planes = planes, D = d, H = h, W = w, Kd = kd, Kh = kh, Kw = kw, Sd = sd, Sh = sh, Sw = sw, Pd = pd, Ph = ph, Pw = pw,
                Do = PoolGeometry.OutputSize(d, kd, sd, pd, ceil, "test"),
                Ho = PoolGeometry.OutputSize(h, kh, sh, ph, ceil, "test"),
                Wo = PoolGeometry.OutputSize(w, kw, sw, pw, ceil, "test"),
                CountIncludePad = include,
            };
            CheckAvg(g, $"{name} include {include}");
        }
    }

    /// <summary>Global average pooling (adaptive, one output per plane): the vector sum and its backward fill.</summary>
    [TestCase(1, 1, 1)]
    [TestCase(5, 7, 7)]
    [TestCase(3, 13, 29)]
    [TestCase(2, 4, 4, 3)]
    public void GlobalAvgPoolMatchesReference(int planes, int h, int w, int d = 1)
    {
        var g = new PoolGeometry { Planes = planes, D = d, H = h, W = w, Do = 1, Ho = 1, Wo = 1, Adaptive = 1 };
        CheckAvg(g, $"global {planes}x{d}x{h}x{w}");
    }

    private static void CheckAvg(PoolGeometry g, string name)
    {
        int planes = g.Planes;
        var x = Check.Random(planes * g.InPlane, name.Length);
        var yRef = new double[planes * g.OutPlane];
        PoolReference.AvgPool(yRef, x.Select(v => (double)v).ToArray(), g);
        var dy = Check.Random(yRef.Length, name.Length + 1);
        var dxRef = AvgAdjoint(g, dy);
        foreach (var isa in Paths)
        {
            string what = $"{name} {isa}";
            var y = Check.NaNs(yRef.Length);
            var dx = Check.NaNs(x.Length);
            var keep = SimdIsaSelect.Force;
            SimdIsaSelect.Force = isa;
            try
            {
                fixed (float* py = y, px = x, pdy = dy, pdx = dx)
                {
                    int split = planes / 2 + 1;
                    PoolCpu.AvgPool(py, px, g, false, 0, Math.Min(split, planes));
                    PoolCpu.AvgPool(py, px, g, false, Math.Min(split, planes), planes);
                    PoolCpu.AvgPool(pdy, pdx, g, true, 0, Math.Min(split, planes));
                    PoolCpu.AvgPool(pdy, pdx, g, true, Math.Min(split, planes), planes);
                }
            }
            finally
            {
                SimdIsaSelect.Force = keep;
            }
            for (int i = 0; i < y.Length; i++)
                Assert.That(y[i], Is.EqualTo(yRef[i]).Within(1e-6 + 1e-5 * Math.Abs(yRef[i])), what + $": y[{i}]");
            for (int i = 0; i < dx.Length; i++)
                Assert.That(dx[i], Is.EqualTo(dxRef[i]).Within(1e-6 + 1e-5 * Math.Abs(dxRef[i])), what + $": dx[{i}]");
        }
    }

    /// <summary>The reference's adjoint in double: each output's dy/count spread over its window.</summary>
    private static double[] AvgAdjoint(in PoolGeometry g, float[] dy)
    {
        var dx = new double[g.Planes * g.InPlane];
        bool ad = g.Adaptive != 0;
        for (int p = 0; p < g.Planes; p++)
            for (int od = 0; od < g.Do; od++)
                for (int oh = 0; oh < g.Ho; oh++)
                    for (int ow = 0; ow < g.Wo; ow++)
                    {
                        PoolGeometry.Window(od, g.D, g.Do, g.Kd, g.Sd, g.Pd, ad, out int d0, out int d1, out int pd);
                        PoolGeometry.Window(oh, g.H, g.Ho, g.Kh, g.Sh, g.Ph, ad, out int h0, out int h1, out int ph);
                        PoolGeometry.Window(ow, g.W, g.Wo, g.Kw, g.Sw, g.Pw, ad, out int w0, out int w1, out int pw);
                        int count = g.CountIncludePad != 0 && !ad ? pd * ph * pw : (d1 - d0) * (h1 - h0) * (w1 - w0);
                        double v = (double)dy[p * g.OutPlane + (od * g.Ho + oh) * g.Wo + ow] / count;
                        for (int d = d0; d < d1; d++)
                            for (int h = h0; h < h1; h++)
                                for (int w = w0; w < w1; w++) dx[p * g.InPlane + (d * g.H + h) * g.W + w] += v;
                    }
        return dx;
    }

    /// <summary>random: uniform in [−1, 1); ties: ReLU of values rounded to quarters (about half zeros, many equal maxima,
    /// some −0); nan: the ties input with one element in 7 NaN and a few −∞; one-nan: the ties input with one NaN in the
    /// middle, so one plane (the vector kernel hands that plane alone to the scalar rule) among NaN-free ones.</summary>
    private static float[] Input(string kind, int n, int seed)
    {
        var x = Check.Random(n, seed);
        if (kind == "random") return x;
        for (int i = 0; i < n; i++) x[i] = x[i] < 0 ? (i % 5 == 0 ? -0f : 0f) : MathF.Round(x[i] * 4) / 4;
        if (kind == "one-nan")
        {
            x[Math.Min(n - 1, n / 2 + 3)] = float.NaN;
            return x;
        }
        if (kind == "nan")
            for (int i = 0; i < n; i++)
            {
                if (i % 7 == 3) x[i] = float.NaN;
                else if (i % 11 == 5) x[i] = float.NegativeInfinity;
            }
        return x;
    }
}
