using MicroExpr.Data;
using MicroExpr.Data.Motion;
using OpenCvSharp;

namespace MicroExpr.Tests.Data;

/// <summary>SLSTT's released preprocessing: its frame window (<see cref="FrameSelection.SlsttReleased"/>) and its 8-bit HSV + JPEG motion image.</summary>
public class SlsttReleasedTests
{
    static double[] Sel(int onset, int apex, int offset, int t = 11) => FrameSelector.Select(onset, apex, offset, t, FrameSelection.SlsttReleased);

    static IEnumerable<double> Range(int from, int count) => Enumerable.Range(from, count).Select(i => (double)i);

    [Test]
    public void TheWindowStartsFiveBeforeTheApexAndEndsTenLater()
    {
        Assert.That(Sel(0, 10, 30), Is.EqualTo(Range(5, 11)), "start = apex − 5, end = start + 10");
        Assert.That(Sel(100, 120, 200), Is.EqualTo(Range(115, 11)));
    }

    [Test]
    public void NearTheOnsetTheWindowStartsAfterTheOnset()
    {
        Assert.That(Sel(0, 2, 30), Is.EqualTo(Range(1, 11)), "start = max(apex − 5, onset + 1) = 1");
        Assert.That(Sel(10, 12, 40), Is.EqualTo(Range(11, 11)), "start = onset + 1 = 11, end = 21");
        Assert.That(Sel(10, 11, 40), Is.EqualTo(Range(11, 11)), "apex one after the onset");
    }

    [Test]
    public void NearTheOffsetTheWindowIsNotShiftedBackButFilledInTheMiddleGaps()
    {
        // start = 23, end = min(33, 30) = 30: n = 8 real frames, 3 missing over 7 gaps: q = 0, r = 3, the extra ones go to
        // gaps 8/2 − 3/2 = 3, 4, 5 (between 26|27, 27|28, 28|29), one blend each, halfway.
        Assert.That(Sel(0, 28, 30), Is.EqualTo(new[] { 23, 24, 25, 26, 26.5, 27, 27.5, 28, 28.5, 29, 30 }));
        Assert.That(FrameSelector.Select(0, 28, 30, 11, FrameSelection.ApexCentred), Is.EqualTo(Range(20, 11)),
            "the apex-centred selection shifts instead: the two rules differ exactly here");
        // start = 25, end = 30: n = 6, 5 missing over 5 gaps: one blend in each.
        Assert.That(Sel(0, 30, 30), Is.EqualTo(new[] { 25, 25.5, 26, 26.5, 27, 27.5, 28, 28.5, 29, 29.5, 30 }));
    }

    [Test]
    public void AShortClipSpreadsTheBlendsOverEveryGapAndTheLeftOverInTheMiddle()
    {
        // start = 1, end = 4: n = 4, 7 missing over 3 gaps: q = 2 each, r = 1 extra in gap 4/2 − 0 = 2 (between 3 and 4).
        var p = Sel(0, 2, 4);
        var expected = new[] { 1, 1 + 1 / 3.0, 1 + 2 / 3.0, 2, 2 + 1 / 3.0, 2 + 2 / 3.0, 3, 3.25, 3.5, 3.75, 4 };
        Assert.That(p, Has.Length.EqualTo(11));
        for (int i = 0; i < 11; i++) Assert.That(p[i], Is.EqualTo(expected[i]).Within(1e-12), $"position {i}");
        // One real frame (start = offset, where the release divides by zero): it is repeated.
        Assert.That(Sel(0, 1, 1), Is.EqualTo(Enumerable.Repeat(1.0, 11)));
    }

    [Test]
    public void AClipWithoutAUsableApexIsDroppedNotEstimated()
    {
        var unknown = Assert.Throws<ApexUnusableException>(() => Sel(0, -1, 30))!;
        Assert.That(unknown.Message, Does.Contain("apex is unknown"));
        Assert.That(unknown, Is.InstanceOf<ClipDroppedException>(), "the preprocessor lists it as dropped, not failed");
        var atOnset = Assert.Throws<ApexUnusableException>(() => Sel(5, 5, 30))!;
        Assert.That(atOnset.Message, Does.Contain("apex 5 is not after onset 5"));

        // Through the pipeline: the unknown apex is not estimated, the clip is dropped before any face or flow work.
        var frames = GreyFrames(8);
        try
        {
            var settings = new PreprocessSettings(Frames: 11, Size: 16, FaceDetect: false, Selection: FrameSelection.SlsttReleased, Inputs: CacheInputs.Rgb);
            Assert.Throws<ApexUnusableException>(() => MotionPipeline.ProcessInputs(frames, 0, -1, 7, settings, CacheInputs.Rgb));
        }
        finally
        {
            foreach (var f in frames) f.Dispose();
        }
    }

    /// <summary>Frames of one grey level each, 40 + 20·i (BGR, 16×16): a blended frame's level tells its position.</summary>
    static List<Mat> GreyFrames(int count) =>
        Enumerable.Range(0, count).Select(i => new Mat(16, 16, MatType.CV_8UC3, new Scalar(40 + 20 * i, 40 + 20 * i, 40 + 20 * i))).ToList();

    [Test]
    public void TheFillIsTheLinearBlendOfTheNeighbouringFrames()
    {
        // onset 0, apex 2, offset 4: positions 1, 1⅓, 1⅔, 2, 2⅓, 2⅔, 3, 3¼, 3½, 3¾, 4 (above); frame i has level 40 + 20·i, so
        // the frame at position p must be (40 + 20·p)/255 in every pixel and channel; the onset frame is not in the window.
        var frames = GreyFrames(5);
        try
        {
            var settings = new PreprocessSettings(Frames: 11, Size: 16, FaceDetect: false, Selection: FrameSelection.SlsttReleased, Inputs: CacheInputs.Rgb);
            var rgb = MotionPipeline.ProcessInputs(frames, 0, 2, 4, settings, CacheInputs.Rgb)[CacheInputs.Rgb];
            Assert.That(rgb.T, Is.EqualTo(11));
            var positions = Sel(0, 2, 4);
            int frame = 3 * 16 * 16;
            for (int t = 0; t < 11; t++)
            {
                double expected = (40 + 20 * positions[t]) / 255.0;
                for (int k = 0; k < frame; k++)
                    Assert.That(rgb.Data[t * frame + k], Is.EqualTo(expected).Within(1e-5), $"frame {t} (position {positions[t]:0.###}), value {k}");
            }
        }
        finally
        {
            foreach (var f in frames) f.Dispose();
        }
    }

    [Test]
    public void HueAndValueAreQuantisedAsTheReleasedCode()
    {
        // H = ang·180/π/2 truncated: 1 rad → 28.65 → 28; 6 rad → 171.89 → 171; 0 → 0.
        Assert.That(MotionEncoder.QuantiseHue(0f), Is.EqualTo(0));
        Assert.That(MotionEncoder.QuantiseHue(1f), Is.EqualTo(28));
        Assert.That(MotionEncoder.QuantiseHue(6f), Is.EqualTo(171));
        // V = 255·(m − min)/(max − min) truncated (not rounded): 1 of 0..2 → 127.5 → 127; 0.1 of 0..2 → 12.75 → 12.
        Assert.That(MotionEncoder.QuantiseValue([0f, 1f, 2f, 0.1f, 1.99f]), Is.EqualTo(new byte[] { 0, 127, 255, 12, 253 }));
        Assert.That(MotionEncoder.QuantiseValue([1.5f, 1.5f]), Is.EqualTo(new byte[] { 0, 0 }), "a frame of one magnitude is 0 (cv2.normalize's scale 0)");
        Assert.That(MotionEncoder.QuantiseValue([1f, 3f, 2f]), Is.EqualTo(new byte[] { 0, 255, 127 }), "min–max over the frame, not from zero");
    }

    [Test]
    public void AHandComputedPixelSurvivesHsvToBgrAndTheJpegRoundTrip()
    {
        // 32×32 flow in four 16×16 quadrants (JPEG's 4:2:0 blocks), all at angle 0 (H = 0, S = 255):
        //   top-left (0, 0): V = 0 → black; top-right (2, 0): V = 255 → HSV (0, 255, 255) = BGR (0, 0, 255), red;
        //   bottom-left (1, 0): V = 127 → red 127; bottom-right (0.5, 0): V = 255·0.25 = 63.75 → 63.
        const int n = 32;
        var u = new float[n * n];
        var v = new float[n * n];
        for (int y = 0; y < n; y++)
            for (int x = 0; x < n; x++)
                u[y * n + x] = (y < 16, x < 16) switch { (true, true) => 0f, (true, false) => 2f, (false, true) => 1f, _ => 0.5f };
        using var bgr = MotionEncoder.Hsv8Bgr(u, v, n, n);
        Assert.That(bgr.Type(), Is.EqualTo(MatType.CV_8UC3));
        Assert.That(bgr.At<Vec3b>(8, 8), Is.EqualTo(new Vec3b(0, 0, 0)));
        Assert.That(bgr.At<Vec3b>(8, 24), Is.EqualTo(new Vec3b(0, 0, 255)));
        Assert.That(bgr.At<Vec3b>(24, 8), Is.EqualTo(new Vec3b(0, 0, 127)));
        Assert.That(bgr.At<Vec3b>(24, 24), Is.EqualTo(new Vec3b(0, 0, 63)));

        // After JPEG (quality 95) and back as RGB / 255: the centres of the flat quadrants within 3 levels (the loss is real:
        // the image is not returned unchanged, so the round trip is not skipped).
        var rgb = MotionEncoder.JpegRoundTrip(bgr);
        int plane = n * n;
        void Pixel(int y, int x, double r, double g, double b)
        {
            Assert.That(rgb[y * n + x] * 255, Is.EqualTo(r).Within(3), $"R at ({y}, {x})");
            Assert.That(rgb[plane + y * n + x] * 255, Is.EqualTo(g).Within(3), $"G at ({y}, {x})");
            Assert.That(rgb[2 * plane + y * n + x] * 255, Is.EqualTo(b).Within(3), $"B at ({y}, {x})");
        }
        Pixel(8, 8, 0, 0, 0);
        Pixel(8, 24, 255, 0, 0);
        Pixel(24, 8, 127, 0, 0);
        Pixel(24, 24, 63, 0, 0);
        // Where the quadrants meet, chroma subsampling blends: some value differs from the BGR image it came from.
        bgr.GetArray(out Vec3b[] before);
        double maxDiff = 0;
        for (int k = 0; k < plane; k++) maxDiff = Math.Max(maxDiff, Math.Abs(rgb[k] * 255 - before[k].Item2));
        Assert.That(maxDiff, Is.GreaterThan(0), "the JPEG round trip changes the image somewhere");

        // The whole encoding: Encode(…, Hsv8) is exactly these two steps per frame.
        var encoded = MotionEncoder.Encode([(u, v)], n, n, MotionEncoding.Hsv8);
        Assert.That(encoded, Is.EqualTo(rgb));
    }

    [Test]
    public void TheSettingsNameTheNewSelectionAndEncoding()
    {
        var s = new PreprocessSettings(Encoding: MotionEncoding.Hsv8, Selection: FrameSelection.SlsttReleased);
        Assert.That(s.Canonical, Does.Contain("enc=hsv8").And.Contain("sel=slstt-released"));
        Assert.That(s.Hash, Is.Not.EqualTo(new PreprocessSettings(Encoding: MotionEncoding.Hsv, Selection: FrameSelection.SlsttReleased).Hash));
    }
}
