using MicroExpr.Data;
using MicroExpr.Data.Motion;
using OpenCvSharp;
using static MicroExpr.Tests.Data.DataFixtures;

namespace MicroExpr.Tests.Data;

public class MotionTests
{
    static double InteriorMean(float[] a, int h, int w, int border)
    {
        double s = 0;
        int n = 0;
        for (int y = border; y < h - border; y++)
            for (int x = border; x < w - border; x++) { s += a[y * w + x]; n++; }
        return s / n;
    }

    [TestCase(FlowMethod.Farneback)]
    [TestCase(FlowMethod.TvL1)]
    public void SubPixelShiftIsRecoveredAndItsStrainIsNearZero(FlowMethod method)
    {
        const int size = 96, border = 16;
        const double dx = 0.6, dy = -0.3;
        using var a = Texture(size, size, seed: 7);
        using var b = Shift(a, dx, dy); // b(x + d) = a(x): the flow from a to b is d
        var (u, v) = OpticalFlow.Compute(method, a, b);
        double mu = InteriorMean(u, size, size, border), mv = InteriorMean(v, size, size, border);
        Assert.That(mu, Is.EqualTo(dx).Within(0.1), $"{method} mean u");
        Assert.That(mv, Is.EqualTo(dy).Within(0.1), $"{method} mean v");
        var strain = OpticalFlow.Strain(u, v, size, size);
        Assert.That(InteriorMean(strain, size, size, border), Is.LessThan(0.05), $"{method}: a translation has no strain");
    }

    [Test]
    public void StrainOfKnownFields()
    {
        const int h = 9, w = 11;
        var u = new float[h * w];
        var v = new float[h * w];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) { u[y * w + x] = 0.2f * x + 3; v[y * w + x] = -0.1f * y; }
        var e = OpticalFlow.Strain(u, v, h, w);
        Assert.That(e, Has.All.EqualTo(MathF.Sqrt(0.04f + 0.01f)).Within(1e-5), "stretch: sqrt(u_x² + v_y²)");
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) { u[y * w + x] = 0.4f * y; v[y * w + x] = 0; }
        e = OpticalFlow.Strain(u, v, h, w);
        Assert.That(e, Has.All.EqualTo(0.4f / MathF.Sqrt(2)).Within(1e-5), "shear: sqrt(½ u_y²)");
    }

    [Test]
    public void FrameSelectionPicksPositions()
    {
        Assert.That(FrameSelector.Select(0, 10, 30, 11, FrameSelection.ApexCentred), Is.EqualTo(Enumerable.Range(5, 11).Select(i => (double)i)));
        Assert.That(FrameSelector.Select(0, 29, 30, 11, FrameSelection.ApexCentred), Is.EqualTo(Enumerable.Range(20, 11).Select(i => (double)i)), "shifted to end at the offset");
        Assert.That(FrameSelector.Select(0, 0, 30, 4, FrameSelection.ApexCentred), Is.EqualTo(new double[] { 1, 2, 3, 4 }), "starts after the onset");
        Assert.That(FrameSelector.Select(0, 10, 30, 4, FrameSelection.Uniform), Is.EqualTo(new double[] { 0, 10, 20, 30 }));
        Assert.That(FrameSelector.Select(0, 2, 4, 7, FrameSelection.ApexCentred), Is.EqualTo(new[] { 1, 1.5, 2, 2.5, 3, 3.5, 4 }), "a short clip interpolates");
        Assert.That(FrameSelector.Select(3, 3, 3, 2, FrameSelection.ApexCentred), Is.EqualTo(new double[] { 3, 3 }));
        Assert.Throws<ArgumentException>(() => FrameSelector.Select(0, 9, 5, 2, FrameSelection.Uniform));
    }

    [Test]
    public void EncodingsStayInTheirRanges()
    {
        var flows = new List<(float[] U, float[] V)>();
        var rng = new Random(3);
        for (int t = 0; t < 3; t++)
            flows.Add((Enumerable.Range(0, 64).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray(), Enumerable.Range(0, 64).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray()));
        var uvs = MotionEncoder.Encode(flows, 8, 8, MotionEncoding.Uvs);
        Assert.That(uvs, Has.Length.EqualTo(3 * 3 * 64));
        double maxMag = 0;
        for (int t = 0; t < 3; t++)
            for (int k = 0; k < 64; k++)
            {
                float u = uvs[t * 192 + k], v = uvs[t * 192 + 64 + k], s = uvs[t * 192 + 128 + k];
                maxMag = Math.Max(maxMag, Math.Sqrt(u * u + v * v));
                Assert.That(s, Is.InRange(0f, 1f));
            }
        Assert.That(maxMag, Is.EqualTo(1).Within(1e-5), "u, v divided by the clip's largest magnitude");
        var hsv = MotionEncoder.Encode(flows, 8, 8, MotionEncoding.Hsv);
        Assert.That(hsv, Has.All.InRange(0f, 1f));
        Assert.That(MotionEncoder.HsvToRgb(0, 1, 1), Is.EqualTo((1f, 0f, 0f)));
        Assert.That(MotionEncoder.HsvToRgb(120, 1, 1), Is.EqualTo((0f, 1f, 0f)));
        Assert.That(MotionEncoder.HsvToRgb(240, 1, 0.5f), Is.EqualTo((0f, 0f, 0.5f)));
        var still = MotionEncoder.Encode([(new float[64], new float[64])], 8, 8, MotionEncoding.Uvs);
        Assert.That(still, Has.All.EqualTo(0f), "no motion: zeros, not NaN");
    }

    [Test]
    public void PipelineShapesPadsShortClipsAndFindsTheApex()
    {
        using var tex = Texture(64, 64, seed: 5);
        var frames = new List<Mat>();
        for (int i = 0; i < 9; i++) frames.Add(Shift(tex, 0.3 * Math.Min(i, 8 - i), 0)); // largest motion at frame 4
        try
        {
            var settings = new PreprocessSettings(Frames: 4, Size: 32, FaceDetect: false);
            var data = MotionPipeline.Process(frames, 0, -1, 8, settings, out int t, out int c, out int h, out int w);
            Assert.That((t, c, h, w), Is.EqualTo((4, 3, 32, 32)));
            Assert.That(data, Has.Length.EqualTo(4 * 3 * 32 * 32).And.All.Not.NaN);
            // The apex-centred window around the estimated apex 4 is frames 2..5: channel u of each is positive on average.
            for (int f = 0; f < 4; f++)
                Assert.That(data.Skip(f * 3 * 1024).Take(1024).Average(), Is.GreaterThan(0.1), $"frame {f} moves right");
            var padded = MotionPipeline.Process(frames.Take(3).ToList(), 0, 1, 2, settings with { Frames = 6, Encoding = MotionEncoding.Hsv }, out t, out _, out _, out _);
            Assert.That(t, Is.EqualTo(6));
            Assert.That(padded, Has.All.InRange(0f, 1f));
            Assert.Throws<ArgumentException>(() => MotionPipeline.Process(frames, 0, 9, 8, settings, out _, out _, out _, out _));
        }
        finally
        {
            foreach (var f in frames) f.Dispose();
        }
    }

    [Test]
    public void SettingsHashIsStableAndChangesWithEverySetting()
    {
        var a = new PreprocessSettings();
        Assert.That(new PreprocessSettings().Hash, Is.EqualTo(a.Hash));
        Assert.That(a.Hash, Has.Length.EqualTo(16));
        var variants = new[]
        {
            a with { Flow = FlowMethod.TvL1 }, a with { Frames = 8 }, a with { Size = 64 }, a with { Encoding = MotionEncoding.Hsv },
            a with { Selection = FrameSelection.Uniform }, a with { FaceDetect = false }, a with { CascadePath = "/x.xml" }, a with { Margin = 0.2 },
        };
        Assert.That(variants.Select(v => v.Hash).Append(a.Hash).Distinct().Count(), Is.EqualTo(variants.Length + 1));
        Assert.That((a with { FaceDetect = false, Margin = 0.3 }).Hash, Is.EqualTo((a with { FaceDetect = false }).Hash), "margin is irrelevant without detection");
        Assert.That(a.Describe(), Does.Contain("farneback").And.Contain("T 11").And.Contain("112x112"));
    }
}
