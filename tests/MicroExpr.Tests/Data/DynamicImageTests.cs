using MicroExpr.Data.Motion;

namespace MicroExpr.Tests.Data;

public class DynamicImageTests
{
    [Test]
    public void CoefficientsForEightFramesAreThePublishedOnes()
    {
        double[] published = [-8.461, -1.461, 1.039, 2.039, 2.289, 2.089, 1.589, 0.875];
        Assert.That(DynamicImage.Coefficients(8), Is.EqualTo(published).Within(5e-4));
        // By hand: α₈ = (16 − 9)/8 = 7/8, α₇ = 7/8 + 5/7, α₁ = Σ_{i=1}^{8} (2i − 9)/i.
        Assert.That(DynamicImage.Coefficients(8)[7], Is.EqualTo(7.0 / 8).Within(1e-15));
        Assert.That(DynamicImage.Coefficients(8)[6], Is.EqualTo(7.0 / 8 + 5.0 / 7).Within(1e-15));
        Assert.That(DynamicImage.Coefficients(8)[0], Is.EqualTo(Enumerable.Range(1, 8).Sum(i => (2.0 * i - 9) / i)).Within(1e-12));
        // T = 1: α₁ = (2 − 2)/1 = 0; T = 2: α₁ = −1/1 + 1/2 = −0.5, α₂ = 1/2.
        Assert.That(DynamicImage.Coefficients(1), Is.EqualTo(new[] { 0.0 }));
        Assert.That(DynamicImage.Coefficients(2), Is.EqualTo(new[] { -0.5, 0.5 }));
    }

    [Test]
    public void AHandComputedDynamicImage()
    {
        // Two frames of three pixels: DI = −0.5·I₁ + 0.5·I₂ = [0.5, 0, −1], scaled to [0, 1] → [1, 2/3, 0].
        var di = DynamicImage.Compute([[0f, 1f, 2f], [1f, 1f, 0f]]);
        Assert.That(di, Is.EqualTo(new[] { 1f, 2f / 3, 0f }).Within(1e-7));
        // A pixel that brightens over time gets the largest value; identical frames give zeros.
        var frames = Enumerable.Range(0, 8).Select(t => new[] { 0.5f, t / 7f, 1 - t / 7f }).ToList();
        var d8 = DynamicImage.Compute(frames);
        Assert.That(d8[1], Is.EqualTo(1f));
        Assert.That(d8[2], Is.EqualTo(0f));
        Assert.That(DynamicImage.Compute(Enumerable.Repeat(new[] { 3f, 3f }, 8).ToList()), Is.EqualTo(new[] { 0f, 0f }));
    }

    [TestCase(8, new[] { 0, 1, 2, 3, 4, 5, 6, 7 })]
    [TestCase(17, new[] { 0, 2, 4, 6, 8, 10, 12, 14 })]
    [TestCase(31, new[] { 0, 3, 6, 9, 12, 15, 18, 21 })]
    public void FdpSamplesIFloorLOver8(int length, int[] expected) => Assert.That(DynamicImage.FdpFrameIndices(length), Is.EqualTo(expected));

    [Test]
    public void ClipsUnderEightFramesCannotBeSampled() => Assert.That(DynamicImage.FdpFrameIndices(7), Is.Null);

    /// <summary>The preprocessor's fdp selection is the released sampling offset to the onset, and drops short clips.</summary>
    [TestCase(10, 26, new[] { 10, 12, 14, 16, 18, 20, 22, 24 })]
    [TestCase(0, 7, new[] { 0, 1, 2, 3, 4, 5, 6, 7 })]
    public void TheFdpSelectionIsTheReleasedSampling(int onset, int offset, int[] expected)
    {
        var p = FrameSelector.Select(onset, onset, offset, 8, MicroExpr.Data.FrameSelection.Fdp);
        Assert.That(p, Is.EqualTo(expected.Select(i => (double)i).ToArray()));
        Assert.That(p.Select(v => (int)v - onset), Is.EqualTo(DynamicImage.FdpFrameIndices(offset - onset + 1)));
    }

    [Test]
    public void TheFdpSelectionDropsClipsUnderEightFrames()
    {
        var e = Assert.Throws<ClipTooShortException>(() => FrameSelector.Select(3, 5, 9, 8, MicroExpr.Data.FrameSelection.Fdp))!;
        Assert.That((e.Length, e.Needed), Is.EqualTo((7, 8)));
        Assert.That(e.Message, Does.Contain("dropped").And.Contain("7 frames"));
    }
}
