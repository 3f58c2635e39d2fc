using MicroExpr.Models;
using MicroExpr.Tensors;
using MicroExpr.Bench;

namespace MicroExpr.Tests.Models;

/// <summary>The training/inference step of a preset behind `microexpr bench train-step` and GpuCheck's --train-step suite.</summary>
public class ModelStepTests
{
    // slstt-tiny shrunk to 16 px images (4 patches + class token): a step takes milliseconds.
    private static readonly SlsttConfig Small = SlsttPresets.Tiny with { ImageSize = 16, PatchSize = 8 };

    [Test]
    public void MeasureWarmsUpTimesAndTrains()
    {
        using var step = new ModelStep(Small, Device.Cpu, batch: 3, frames: 2, train: true);
        Assert.That(step.InputShape, Is.EqualTo(new[] { 3, 2, 3, 16, 16 }));
        // No progress callback: the warm-up count must still advance (it once sat inside progress?.Invoke(...)).
        var times = StepTimer.Measure(step, warmup: 2, runs: 3, minWarmupSeconds: 0);
        Assert.That(times.WarmupSteps, Is.EqualTo(2));
        Assert.That(times.Ms, Has.Length.EqualTo(3).And.All.GreaterThan(0));
        Assert.That(times.RunsCut, Is.Zero);
        Assert.That(float.IsFinite(times.FirstLoss) && float.IsFinite(times.LastLoss), $"{times.FirstLoss} -> {times.LastLoss}");
        Assert.That(times.LastLoss, Is.LessThan(times.FirstLoss), "the same batch every step: AdamW lowers its loss");
        Assert.That(times.MinMs, Is.LessThanOrEqualTo(times.MedianMs));
        Assert.That(times.MedianMs, Is.LessThanOrEqualTo(times.MaxMs));
        Assert.That(times.ClipsPerSecond(3), Is.EqualTo(3 / (times.MedianMs / 1000)).Within(1e-9));
    }

    [Test]
    public void SameSeedsGiveTheSameFirstLoss()
    {
        using var a = new ModelStep(Small, Device.Cpu, batch: 2, frames: 2, train: true);
        using var b = new ModelStep(Small, Device.Cpu, batch: 2, frames: 2, train: true);
        using var c = new ModelStep(Small, Device.Cpu, batch: 2, frames: 2, train: true, dataSeed: 7);
        float la = a.Run();
        Assert.That(b.Run(), Is.EqualTo(la));
        Assert.That(c.Run(), Is.Not.EqualTo(la));
    }

    [Test]
    public void TimeBudgetCutsTheTimedSteps()
    {
        using var step = new ModelStep(Small, Device.Cpu, batch: 1, frames: 1, train: true);
        var times = StepTimer.Measure(step, warmup: 1, runs: 10, minWarmupSeconds: 0, timeBudgetSeconds: 1e-9, minRuns: 2);
        Assert.That(times.Ms, Has.Length.EqualTo(2));
        Assert.That(times.RunsCut, Is.EqualTo(10));
    }

    [Test]
    public void InferenceHasNoLossAndWithoutWarmupCountsNone()
    {
        using var step = new ModelStep(Small, Device.Cpu, batch: 2, frames: 2, train: false);
        var lines = new List<string>();
        var reports = new List<TimerProgress>();
        var times = StepTimer.Measure(step, warmup: 0, runs: 2, progress: reports.Add);
        lines.AddRange(reports.Select(r => r.Text));
        Assert.That(times.WarmupSteps, Is.Zero);
        Assert.That(times.Ms, Has.Length.EqualTo(2));
        Assert.That(float.IsNaN(times.FirstLoss) && float.IsNaN(times.LastLoss));
        Assert.That(lines, Is.EqualTo(new[] { "step 1/2", "step 2/2" }));
        Assert.That(reports.Select(r => (r.Done, r.Total)), Is.EqualTo(new[] { (0, 2), (1, 2) }), "the timed steps carry done/total for the ETA");
    }

    [Test]
    public void MedianOfAnEvenCountIsTheMeanOfTheMiddleTwo()
    {
        var t = new StepTimes([4, 1, 3, 2], 0, 0, float.NaN, float.NaN);
        Assert.That(t.MedianMs, Is.EqualTo(2.5));
        Assert.That((t.MinMs, t.MaxMs, t.TotalMs), Is.EqualTo((1.0, 4.0, 10.0)));
        Assert.That(new StepTimes([5, 1, 3], 0, 0, float.NaN, float.NaN).MedianMs, Is.EqualTo(3));
    }
}
