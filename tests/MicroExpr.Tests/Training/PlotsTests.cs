using MicroExpr.Training;
using SkiaSharp;

namespace MicroExpr.Tests.Training;

/// <summary>
/// The report charts: the embedded font is found and draws glyphs, every chart writes a PNG of the expected size
/// whose pixels change with its text and data. The PNGs stay in the test's work folder (bin/, ignored) to look at.
/// </summary>
public class PlotsTests
{
    private string dir = "";

    [SetUp]
    public void SetUp() => dir = Directory.CreateDirectory(Path.Combine(TestContext.CurrentContext.WorkDirectory, "plots-test")).FullName;

    private static SKBitmap Load(string path) => SKBitmap.Decode(path) ?? throw new AssertionException($"{path} is not a decodable PNG");

    /// <summary>Pixels in rows [y0, y1) that are not (almost) white.</summary>
    private static int Ink(SKBitmap bmp, int y0, int y1)
    {
        int n = 0;
        for (int y = y0; y < Math.Min(y1, bmp.Height); y++)
            for (int x = 0; x < bmp.Width; x++)
            {
                var c = bmp.GetPixel(x, y);
                if (c.Red < 200 || c.Green < 200 || c.Blue < 200) n++;
            }
        return n;
    }

    private static Plots.Line Rising(string? label) => new(label, [1, 2, 3, 4], [1.0, 0.8, 0.5, 0.45], Bold: true);

    [Test]
    public void EmbeddedFontIsDejaVuSansWithLatinGlyphs()
    {
        var tf = Plots.Typeface;
        Assert.That(tf.FamilyName, Is.EqualTo(Plots.FontName));
        Assert.That(tf.ContainsGlyphs("0123456789 epoch loss accuracy true predicted ÷×"), Is.True);
        Assert.That(tf.GlyphCount, Is.GreaterThan(1000));
    }

    [Test]
    public void TitleTextIsDrawn()
    {
        string a = Path.Combine(dir, "title.png"), b = Path.Combine(dir, "no-title.png");
        Plots.LineChart(a, "a title that must be visible", "epoch", "loss", [Rising("mean")]);
        Plots.LineChart(b, "", "epoch", "loss", [Rising("mean")]);
        using var withTitle = Load(a);
        using var without = Load(b);
        Assert.That((withTitle.Width, withTitle.Height), Is.EqualTo((720, 440)));
        // Without a usable font the title would draw nothing and both top bands would be white.
        Assert.That(Ink(withTitle, 0, 30), Is.GreaterThan(200), "title pixels");
        Assert.That(Ink(without, 0, 12), Is.LessThan(Ink(withTitle, 0, 12) + 1));
    }

    [Test]
    public void LineChartRejectsRaggedSeries()
    {
        var ex = Assert.Throws<ArgumentException>(() =>
            Plots.LineChart(Path.Combine(dir, "bad.png"), "t", "x", "y", [new Plots.Line("l", [1, 2], [1.0])]));
        Assert.That(ex!.Message, Does.Contain("2 x values but 1 y values"));
    }

    [Test]
    public void ConfusionHeatmapShowsCountsAndShades()
    {
        string a = Path.Combine(dir, "confusion.png"), b = Path.Combine(dir, "confusion-other.png");
        var cm = new[,] { { 9, 1, 0 }, { 2, 7, 1 }, { 0, 3, 6 } };
        Report.DrawConfusion(a, cm, ["negative", "positive", "surprise"]);
        var other = new[,] { { 8, 2, 0 }, { 2, 7, 1 }, { 0, 3, 6 } };
        Report.DrawConfusion(b, other, ["negative", "positive", "surprise"]);
        using var img = Load(a);
        using var img2 = Load(b);
        Assert.That((img.Width, img.Height), Is.EqualTo((200 + 3 * 90, 150 + 3 * 90)));
        int blue = 0, differ = 0;
        for (int y = 0; y < img.Height; y++)
            for (int x = 0; x < img.Width; x++)
            {
                var c = img.GetPixel(x, y);
                if (c.Blue > c.Red + 80) blue++;
                if (c != img2.GetPixel(x, y)) differ++;
            }
        Assert.That(blue, Is.GreaterThan(3 * 40 * 40), "dark cells of the diagonal");
        // Two counts (9 → 8, 1 → 2) and their shades change: pixels differ, but only in part of the image.
        Assert.That(differ, Is.InRange(50, img.Width * img.Height / 4));
    }

    [Test]
    public void CurvesOfARunHaveLossAndAccuracyPanels()
    {
        var folds = Enumerable.Range(0, 3).Select(f => new FoldResult
        {
            Subject = $"sub{f}", Epochs = 4, TrainSubjects = [], Predictions = [],
            EpochLoss = [1.1 - 0.05 * f, 0.9, 0.6 + 0.02 * f, 0.5],
            EpochTrainAccuracy = [0.3, 0.5 + 0.05 * f, 0.7, 0.8],
        }).ToList();
        string path = Path.Combine(dir, "curves.png");
        Report.DrawCurves(path, folds);
        using var img = Load(path);
        Assert.That((img.Width, img.Height), Is.EqualTo((1400, 460)));
        // Both halves hold a chart (axes, lines, labels).
        int leftInk = 0, rightInk = 0;
        for (int y = 0; y < img.Height; y++)
            for (int x = 0; x < img.Width; x++)
            {
                var c = img.GetPixel(x, y);
                if (c.Red < 200 || c.Green < 200 || c.Blue < 200) { if (x < 700) leftInk++; else rightInk++; }
            }
        Assert.That(leftInk, Is.GreaterThan(2000));
        Assert.That(rightInk, Is.GreaterThan(2000));

        string lossOnly = Path.Combine(dir, "curves-loss-only.png");
        Report.DrawCurves(lossOnly, folds.Select(f => f with { EpochTrainAccuracy = [] }).ToList());
        using var single = Load(lossOnly);
        Assert.That((single.Width, single.Height), Is.EqualTo((720, 440)));
    }

    [Test]
    public void RooflineDrawsAndRejectsNonPositiveValues()
    {
        string path = Path.Combine(dir, "roofline.png");
        Plots.Roofline(path, "roofline (test figures, not measurements)", 246, 35,
            [new("gemm", 170, 200), new("layernorm", 0.6, 12), new("softmax", 1.2, 20)]);
        using var img = Load(path);
        Assert.That((img.Width, img.Height), Is.EqualTo((760, 480)));
        Assert.That(Ink(img, 0, img.Height), Is.GreaterThan(3000));
        var ex = Assert.Throws<ArgumentException>(() => Plots.Roofline(path, "t", 246, 35, [new("bad", 0, 1)]));
        Assert.That(ex!.Message, Does.Contain("'bad'"));
    }
}
