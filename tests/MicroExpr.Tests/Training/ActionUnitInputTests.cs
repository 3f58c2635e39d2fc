using MicroExpr.Models;
using MicroExpr.Training;

namespace MicroExpr.Tests.Training;

/// <summary>
/// The ActionUnits input: a clip set parses each clip's raw coding into a multi-hot vector over the AU numbers the data
/// uses (FACS names in the data shape), an uncoded or unparsable coding is all zeros, the trainer's option overrides reach
/// the aie config, and the shuffled control keeps the codings' frequencies while moving them between clips.
/// </summary>
public class ActionUnitInputTests
{
    static ClipSet Data(params string[] codings)
    {
        var clips = codings.Select((c, i) => new Clip($"s{i % 2}/c{i}", $"s{i % 2}", i % 3, new float[3 * 3 * 2 * 2]) { ActionUnits = c }).ToList();
        return new ClipSet(clips, ["a", "b", "c"], 3, 3, 2, "test-cache");
    }

    [Test]
    public void EachClipsCodingBecomesAMultiHotVectorOverTheDatasAuNumbers()
    {
        var data = Data("4+L10", "R12", "", "4+X7", "L12+R12+10");
        Assert.That(data.AuVocabulary, Is.EqualTo(new[] { 4, 10, 12 }), "sides and unparsable codings add no AU");
        var shape = data.Shape;
        Assert.That(shape.Find(InputKind.ActionUnits), Is.EqualTo(new InputShape(InputKind.ActionUnits, 1, 3, 1)));
        Assert.That(shape.ActionUnits.Select(a => (a.Number, a.Description)),
            Is.EqualTo(new[] { (4, "brow lowerer"), (10, "upper lip raiser"), (12, "lip corner puller") }));
        float[][] want = [[1, 1, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0], [0, 1, 1]];
        for (int i = 0; i < want.Length; i++)
            Assert.That(data.Input(data.Clips[i], InputKind.ActionUnits), Is.EqualTo(want[i]), data.Clips[i].ActionUnits);
        var fitted = (AieConfig)new TrainOptions { Preset = "aie-tiny" }.WithOverrides(AiePresets.Tiny with { RgbSize = 2, MotionSize = 2 })
            .ForData(shape with { Inputs = [.. shape.Inputs, new InputShape(InputKind.RgbFrames, 3, 3, 2)] });
        Assert.That(fitted.ActionUnits.Select(a => a.Number), Is.EqualTo(new[] { 4, 10, 12 }));
        Assert.That(Data("", "").Shape.Find(InputKind.ActionUnits), Is.Null, "no coded clip: no action-unit input");
    }

    [Test]
    public void TheConWeightOverrideReachesTheAieConfigAndIsRefusedForOtherPresets()
    {
        var o = new TrainOptions { Preset = "aie-tiny", ContrastiveWeight = 0f };
        Assert.That(((AieConfig)o.WithOverrides(AiePresets.Tiny)).ContrastiveWeight, Is.EqualTo(0f));
        var ex = Assert.Throws<ArgumentException>(() => (o with { Preset = "stt-tiny" }).WithOverrides(SttPresets.Tiny))!;
        Assert.That(ex.Message, Does.Contain("--con-weight").And.Contain("stt-tiny"));
        Assert.Throws<ArgumentException>(() => (o with { ContrastiveWeight = float.NaN }).WithOverrides(AiePresets.Tiny));
    }

    [Test]
    public void TheShuffledControlPermutesTheCodingsAcrossClipsAndKeepsTheirCounts()
    {
        var codings = Enumerable.Range(0, 40).Select(i => (i % 5) switch { 0 => "4", 1 => "12", 2 => "1+2", 3 => "4+7", _ => "" }).ToArray();
        var data = Data(codings);
        var shuffled = data.WithShuffledActionUnits(3);
        Assert.That(shuffled.Clips.Select(c => c.ActionUnits), Is.EquivalentTo(codings), "the same codings");
        Assert.That(shuffled.Clips.Select(c => c.ActionUnits), Is.Not.EqualTo(codings), "on other clips");
        Assert.That(shuffled.Clips.Select(c => (c.Id, c.Label)), Is.EqualTo(data.Clips.Select(c => (c.Id, c.Label))), "ids and labels stay");
        Assert.That(data.WithShuffledActionUnits(3).Clips.Select(c => c.ActionUnits), Is.EqualTo(shuffled.Clips.Select(c => c.ActionUnits)), "seeded");
        Assert.That(shuffled.AuVocabulary, Is.EqualTo(data.AuVocabulary));
    }
}
