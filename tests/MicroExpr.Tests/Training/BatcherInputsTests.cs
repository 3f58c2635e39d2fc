using MicroExpr.Models;
using MicroExpr.Tensors;
using MicroExpr.Training;

namespace MicroExpr.Tests.Training;

/// <summary>The trainer's batcher with several kinds per clip: one augmentation draw for all of them, targets only in training.</summary>
public class BatcherInputsTests
{
    const int T = 3, S = 7;

    /// <summary>A config that reads motion and RGB frames and whose loss reads a dynamic-image target.</summary>
    sealed record TwoStreamConfig : IMerModelConfig
    {
        public string Name => "two-stream-test";
        public string Family => "test";
        public int Classes => 2;
        public IReadOnlyList<InputShape> Inputs => [new(InputKind.MotionFrames, 0, 3, S), new(InputKind.RgbFrames, 0, 3, S)];
        public IReadOnlyList<InputShape> Targets => [new(InputKind.DynamicImage, 1, 3, S)];
        public IReadOnlyList<string> Differences(IMerModelConfig other) => [];
        public IMerModelConfig ForData(DataShape data) => this;
    }

    /// <summary>RGB frames r; motion frames with r in every channel; the DI is RGB frame 0. So after one shared augmentation,
    /// motion = RGB except for the sign of channel 0 under a flip, and the DI = RGB frame 0.</summary>
    static ClipSet Data()
    {
        var rng = new Rng(5);
        var rgb = new float[T * 3 * S * S];
        for (int i = 0; i < rgb.Length; i++) rgb[i] = (float)rng.NextDouble();
        var motion = (float[])rgb.Clone();
        var di = rgb.AsSpan(0, 3 * S * S).ToArray();
        var clip = new Clip("s/c", "s", 1, new Dictionary<InputKind, float[]>
        {
            [InputKind.MotionFrames] = motion, [InputKind.RgbFrames] = rgb, [InputKind.DynamicImage] = di,
        });
        InputShape[] shapes = [new(InputKind.MotionFrames, T, 3, S), new(InputKind.RgbFrames, T, 3, S), new(InputKind.DynamicImage, 1, 3, S)];
        return new ClipSet([clip], ["a", "b"], shapes, "test") { HorizontalFlip = MicroExpr.Data.Motion.FlowFlip.NegateU };
    }

    [TestCase(true, 2, -1)]
    [TestCase(true, 0, 0)]
    [TestCase(false, -3, 2)]
    public void OneFlipAndShiftAppliesToEveryKindAndOnlyMotionNegatesU(bool flip, int dx, int dy)
    {
        var data = Data();
        var clip = data.Clips[0];
        var batcher = new Batcher(data, new TwoStreamConfig(), 2, Device.Cpu, targets: true);
        batcher.Fill(1, clip, flip, dx, dy);
        var batch = batcher.Batch(2);
        Assert.That(batch.Inputs.Keys, Is.EquivalentTo(new[] { InputKind.MotionFrames, InputKind.RgbFrames, InputKind.DynamicImage }));
        Assert.That(batch[InputKind.RgbFrames].Shape, Is.EqualTo(new[] { 2, T, 3, S, S }));
        Assert.That(batch[InputKind.DynamicImage].Shape, Is.EqualTo(new[] { 2, 1, 3, S, S }));
        int n = T * 3 * S * S, plane = S * S;
        var rgb = batch[InputKind.RgbFrames].ToArray().AsSpan(n).ToArray();
        var motion = batch[InputKind.MotionFrames].ToArray().AsSpan(n).ToArray();
        var di = batch[InputKind.DynamicImage].ToArray().AsSpan(3 * plane).ToArray();

        // The augmentation's definition, literally: dst[t, c, y, x] = src[t, c, clamp(y + dy), clamp(x' + dx)], x' mirrored when flipped.
        var src = data.Input(clip, InputKind.RgbFrames);
        for (int t = 0; t < T; t++)
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < S; y++)
                    for (int x = 0; x < S; x++)
                    {
                        int sy = Math.Clamp(y + dy, 0, S - 1), sx = Math.Clamp((flip ? S - 1 - x : x) + dx, 0, S - 1);
                        int at = (t * 3 + c) * plane + y * S + x;
                        float want = src[(t * 3 + c) * plane + sy * S + sx];
                        Assert.That(rgb[at], Is.EqualTo(want), $"rgb [{t}, {c}, {y}, {x}]");
                        Assert.That(motion[at], Is.EqualTo(flip && c == 0 ? -want : want), $"motion [{t}, {c}, {y}, {x}]");
                        if (t == 0) Assert.That(di[c * plane + y * S + x], Is.EqualTo(want), $"dynamic image [{c}, {y}, {x}]");
                    }
    }

    [Test]
    public void PredictionBatchesHoldTheInputsOnly()
    {
        var data = Data();
        var batcher = new Batcher(data, new TwoStreamConfig(), 1, Device.Cpu, targets: false);
        batcher.Fill(0, data.Clips[0], false, 0, 0);
        Assert.That(batcher.Batch(1).Inputs.Keys, Is.EquivalentTo(new[] { InputKind.MotionFrames, InputKind.RgbFrames }));
    }

    [Test]
    public void AKindTheClipSetLacksIsRefusedNamingIt()
    {
        var toy = LosoTests.ToyClips();
        var ex = Assert.Throws<InvalidDataException>(() => new Batcher(toy, new TwoStreamConfig(), 1, Device.Cpu, targets: true))!;
        Assert.That(ex.Message, Does.Contain("toy").And.Contain("RGB face frames"));
    }
}

/// <summary>Runs recorded before other kinds existed resume: a motion-only clip set keeps its fingerprint.</summary>
public class RunFingerprintKindsTests
{
    [Test]
    public void AMotionOnlySetKeepsTheFingerprintOfBeforeAndOtherKindsChangeIt()
    {
        var toy = LosoTests.ToyClips();
        // The fingerprint as it was defined before: XXH3 over "id\0subject\0label\0" and the motion values, clip by clip.
        var hash = new System.IO.Hashing.XxHash3();
        foreach (var c in toy.Clips)
        {
            hash.Append(System.Text.Encoding.UTF8.GetBytes($"{c.Id}\u0000{c.Subject}\u0000{c.Label}\u0000"));
            hash.Append(System.Runtime.InteropServices.MemoryMarshal.AsBytes(c.Data.AsSpan()));
        }
        Assert.That(RunFingerprint.Of(toy), Is.EqualTo("xxh3:" + hash.GetCurrentHashAsUInt64().ToString("x16", System.Globalization.CultureInfo.InvariantCulture)));

        var withRgb = toy.Clips.Select(c => c with { Inputs = new Dictionary<InputKind, float[]>(c.Inputs) { [InputKind.RgbFrames] = c.Data } }).ToList();
        var shapes = new[] { new InputShape(InputKind.MotionFrames, 2, 3, 16), new InputShape(InputKind.RgbFrames, 2, 3, 16) };
        Assert.That(RunFingerprint.Of(new ClipSet(withRgb, toy.ClassNames, shapes, "toy")), Is.Not.EqualTo(RunFingerprint.Of(toy)));
        var withAu = toy.Clips.Select((c, i) => i == 0 ? c with { ActionUnits = "4" } : c).ToList();
        Assert.That(RunFingerprint.Of(new ClipSet(withAu, toy.ClassNames, 2, 3, 16, "toy")), Is.Not.EqualTo(RunFingerprint.Of(toy)));
    }
}
