using MicroExpr.Data.Motion;
using MicroExpr.Training;

namespace MicroExpr.Tests.Training;

public class MetricsTests
{
    private static Prediction P(int label, int pred, string subject = "s1") => new("c", subject, label, pred, []);

    [Test]
    public void Uf1UarAccuracyAndConfusionByHand()
    {
        // true 0: 3 clips → predicted 0,0,1; true 1: 2 clips → 1,2; true 2: 1 clip → 2
        var preds = new[] { P(0, 0), P(0, 0), P(0, 1, "s2"), P(1, 1, "s2"), P(1, 2, "s2"), P(2, 2) };
        var m = MetricSet.Compute(preds, 3);
        // class 0: tp 2, fp 0, fn 1 → F1 4/5; class 1: tp 1, fp 1, fn 1 → 1/2; class 2: tp 1, fp 1, fn 0 → 2/3
        Assert.That(m.F1PerClass, Is.EqualTo(new[] { 0.8, 0.5, 2.0 / 3 }).Within(1e-12));
        Assert.That(m.Uf1, Is.EqualTo((0.8 + 0.5 + 2.0 / 3) / 3).Within(1e-12));
        Assert.That(m.Uar, Is.EqualTo((2.0 / 3 + 0.5 + 1) / 3).Within(1e-12));
        Assert.That(m.Accuracy, Is.EqualTo(4.0 / 6).Within(1e-12));
        Assert.That(m.Confusion[0, 1], Is.EqualTo(1));
        Assert.That(m.Confusion[1, 2], Is.EqualTo(1));
        Assert.That(m.PerSubjectAccuracy["s1"], Is.EqualTo(1.0));
        Assert.That(m.PerSubjectAccuracy["s2"], Is.EqualTo(1.0 / 3).Within(1e-12));
        Assert.That(m.AbsentClasses, Is.Empty);
    }

    [Test]
    public void AbsentClassIsLeftOutOfTheMeans()
    {
        var preds = new[] { P(0, 0), P(1, 0), P(1, 1) };
        var m = MetricSet.Compute(preds, 3);
        Assert.That(m.AbsentClasses, Is.EqualTo(new[] { 2 }));
        // class 0: F1 = 2/(2+1) ; class 1: F1 = 2/(2+0+1)
        Assert.That(m.Uf1, Is.EqualTo((2.0 / 3 + 2.0 / 3) / 2).Within(1e-12));
        Assert.That(m.Uar, Is.EqualTo((1 + 0.5) / 2).Within(1e-12));
    }

    [Test]
    public void CosineScheduleWarmsUpThenDecaysToZero()
    {
        Assert.That(Schedule.CosineWithWarmup(1f, 0, 4, 20), Is.EqualTo(0.25f));
        Assert.That(Schedule.CosineWithWarmup(1f, 3, 4, 20), Is.EqualTo(1f));
        Assert.That(Schedule.CosineWithWarmup(1f, 4, 4, 20), Is.EqualTo(1f));
        Assert.That(Schedule.CosineWithWarmup(1f, 12, 4, 20), Is.EqualTo(0.5f).Within(1e-6));
        Assert.That(Schedule.CosineWithWarmup(1f, 20, 4, 20), Is.EqualTo(0f).Within(1e-6));
    }
}

public class AugmentTests
{
    [TestCase(FlowFlip.NegateU)]
    [TestCase(FlowFlip.Mirror)]
    [TestCase(FlowFlip.ComplementU)]
    public void FlipMirrorsAndMapsHorizontalFlow(FlowFlip rule)
    {
        // one frame, 3 channels of 2×2: values encode (channel, y, x)
        var src = new float[12];
        for (int c = 0; c < 3; c++) for (int y = 0; y < 2; y++) for (int x = 0; x < 2; x++) src[(c * 2 + y) * 2 + x] = 1 + c * 10 + y * 2 + x;
        var dst = new float[12];
        Augment.Apply(src, dst, 1, 3, 2, flip: true, dx: 0, dy: 0, rule);
        float U(float v) => rule switch { FlowFlip.NegateU => -v, FlowFlip.ComplementU => 1 - v, _ => v };
        Assert.That(dst[0], Is.EqualTo(U(src[1])), "channel 0 mirrored (and negated or complemented for u)");
        Assert.That(dst[1], Is.EqualTo(U(src[0])));
        Assert.That(dst[4], Is.EqualTo(src[5]), "channel 1 only mirrored");
        Augment.Apply(src, dst, 1, 3, 2, flip: false, dx: 1, dy: 0, rule);
        Assert.That(dst[0], Is.EqualTo(src[1]), "a shift by one column, edge replicated");
        Assert.That(dst[1], Is.EqualTo(src[1]));
    }
}
