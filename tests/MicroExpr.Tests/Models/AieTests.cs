using MicroExpr.Data.ActionUnitCodes;
using MicroExpr.Models;
using MicroExpr.Nn;
using MicroExpr.Tensors;
using MicroExpr.Tensors.Autograd;

namespace MicroExpr.Tests.Models;

/// <summary>
/// AIE-CCL: the attribute encoders (shape, unit rows, determinism, order), the InfoNCE and L2 normalisation against double
/// references with finite differences, the whole loss (prototypes from the fold, value, gradients to the encoder and the
/// temperature), the model's shapes, config fitting and a checkpoint round trip.
/// </summary>
public class AieTests
{
    internal static readonly int[] Numbers = [1, 4, 7, 12, 26];
    internal static IReadOnlyList<AuVocabularyEntry> Vocabulary => Numbers.Select(n => new AuVocabularyEntry(n, Facs.Name(n))).ToList();

    /// <summary>A small fitted config: T = 4, 16 px, streams (4, 8), D = 8, the word encoder at width 8.</summary>
    internal static AieConfig Small(AuTextKind text = AuTextKind.Words) => AiePresets.Tiny with
    {
        RgbSize = 16, MotionSize = 16, StreamChannels = [4, 8], EmbedDim = 8, TextWidth = 8, TextHeads = 2, TextMlpHidden = 16,
        ActionUnits = Vocabulary, Text = text,
    };

    private static readonly int[][] Sets = [[1, 2], [0], [0, 1, 4], [3], [2, 3]];

    [TestCase(AuTextKind.Words)]
    [TestCase(AuTextKind.Table)]
    public void TheAttributeEncoderGivesUnitRowsPerSetDeterministicallyAndInTheCallersOrder(AuTextKind kind)
    {
        using var a = AuSetEncoder.Create(Small(kind), new Rng(3));
        using var b = AuSetEncoder.Create(Small(kind), new Rng(3));
        using var scope = new TensorScope();
        using var noGrad = GradMode.NoGrad();
        var t = a.Encode(Sets);
        Assert.That(t.Shape, Is.EqualTo(new[] { Sets.Length, 8 }));
        var rows = t.ToArray();
        for (int k = 0; k < Sets.Length; k++)
            Assert.That(rows.AsSpan(k * 8, 8).ToArray().Sum(x => (double)x * x), Is.EqualTo(1.0).Within(1e-5), $"row {k} has unit norm");
        Assert.That(a.Encode(Sets).ToArray(), Is.EqualTo(rows), "the same encoder twice");
        Assert.That(b.Encode(Sets).ToArray(), Is.EqualTo(rows), "another encoder from the same seed");
        var reversed = b.Encode(Sets.Reverse().ToArray()).ToArray();
        for (int k = 0; k < Sets.Length; k++)
            Assert.That(reversed.AsSpan((Sets.Length - 1 - k) * 8, 8).ToArray(), Is.EqualTo(rows.AsSpan(k * 8, 8).ToArray()).Within(1e-6), $"set {k} encodes alike wherever it is in the list");
        Assert.That(rows.AsSpan(0, 8).ToArray(), Is.Not.EqualTo(rows.AsSpan(8, 8).ToArray()), "different sets, different embeddings");
        Assert.Throws<ArgumentException>(() => a.Encode([Array.Empty<int>()]));
        Assert.Throws<ArgumentException>(() => a.Encode([[2, 1]]));
        Assert.Throws<ArgumentException>(() => a.Encode([[5]]));
    }

    [Test]
    public void TheWordEncoderReadsTheFacsDescriptionsAsWords()
    {
        using var enc = (AuWordEncoder)AuSetEncoder.Create(Small(), new Rng(1));
        // 1 inner brow raiser, 4 brow lowerer, 7 lid tightener, 12 lip corner puller, 26 jaw drop.
        Assert.That(enc.Words, Is.EqualTo(new[] { "brow", "corner", "drop", "inner", "jaw", "lid", "lip", "lowerer", "puller", "raiser", "tightener" }));
        Assert.That(enc.MaxTokens, Is.EqualTo(3 + 2 + 2 + 3 + 2));
        Assert.That(enc.TokensOf([0, 1]).Select(i => enc.Words[i]), Is.EqualTo(new[] { "inner", "brow", "raiser", "brow", "lowerer" }));
        Assert.That(AuWordEncoder.Tokenise("Lip-corner  puller"), Is.EqualTo(new[] { "lip", "corner", "puller" }));
    }

    /// <summary>(1/B) Σᵢ −log softmax_k(exp(s₀ + θ)·vᵢ·t_k)[yᵢ] in double.</summary>
    private static double InfoNceRef(double[] v, double[] t, double theta, double s0, int[] y, int d)
    {
        int b = y.Length, k = t.Length / d;
        double scale = Math.Exp(s0 + theta), total = 0;
        for (int i = 0; i < b; i++)
        {
            var z = new double[k];
            for (int j = 0; j < k; j++)
            {
                double dot = 0;
                for (int e = 0; e < d; e++) dot += v[i * d + e] * t[j * d + e];
                z[j] = scale * dot;
            }
            double m = z.Max(), lse = m + Math.Log(z.Sum(x => Math.Exp(x - m)));
            total += lse - z[y[i]];
        }
        return total / b;
    }

    [Test]
    public void InfoNceMatchesTheDoubleReferenceAndItsFiniteDifferences()
    {
        int[] y = [2, 0, 4];
        float s0 = MathF.Log(1f / 0.07f) * 0.3f; // a smaller scale keeps the finite differences well conditioned
        new GradCheck
        {
            Name = "infonce",
            Shapes = [[3, 5], [5, 5], [1, 1]],
            Op = x => AieLoss.InfoNce(x[0], x[1], x[2], s0, y),
            Reference = x => [InfoNceRef(x[0], x[1], x[2][0], s0, y, 5)],
            GradAtol = 1e-4, GradRtol = 2e-3, Step = 1e-4,
        }.Run();
    }

    [Test]
    public void L2NormalisationMatchesTheDoubleReferenceAndItsFiniteDifferences()
    {
        new GradCheck
        {
            Name = "l2_normalize",
            Shapes = [[4, 6]],
            Op = x => AieModel.L2Normalize(x[0]),
            Reference = x =>
            {
                var r = new double[24];
                for (int i = 0; i < 4; i++)
                {
                    double n = Math.Sqrt(Enumerable.Range(0, 6).Sum(e => x[0][i * 6 + e] * x[0][i * 6 + e]) + 1e-12);
                    for (int e = 0; e < 6; e++) r[i * 6 + e] = x[0][i * 6 + e] / n;
                }
                return r;
            },
            Step = 1e-4,
        }.Run();
    }

    /// <summary>Multi-hot rows over the 5-AU vocabulary for the given sets (empty set = an uncoded clip).</summary>
    internal static float[] MultiHot(params int[][] sets)
    {
        var m = new float[sets.Length * Numbers.Length];
        for (int i = 0; i < sets.Length; i++) foreach (int a in sets[i]) m[i * Numbers.Length + a] = 1f;
        return m;
    }

    internal static TrainingFold Fold(float[] multiHot)
    {
        int a = Numbers.Length;
        return new TrainingFold(multiHot.Length / a, (i, kind) =>
            kind == InputKind.ActionUnits ? multiHot.AsSpan(i * a, a).ToArray() : throw new ArgumentException(kind.ToString()));
    }

    [TestCase(AuTextKind.Words)]
    [TestCase(AuTextKind.Table)]
    public void TheLossIsCrossEntropyPlusInfoNceOverTheFoldsPrototypesAndTrainsTheEncoderAndTemperature(AuTextKind kind)
    {
        var cfg = Small(kind) with { ContrastiveWeight = 0.5f };
        using var loss = new AieLoss(cfg, new Rng(4));
        // The fold: 6 clips, 4 distinct coded sets (one repeated), one uncoded clip.
        loss.BeginFold(Fold(MultiHot([1, 2], [0], [1, 2], [], [3], [0, 1, 4])));
        Assert.That(loss.Prototypes.Select(p => string.Join(",", p)), Is.EqualTo(new[] { "0", "3", "1,2", "0,1,4" }), "distinct sets, by size then indices");
        Assert.That(loss.Temperature, Is.EqualTo(0.07f).Within(1e-6));

        using var scope = new TensorScope();
        var logits = Tensor.RandN([3, 3], new Rng(5));
        var v = AieModel.L2Normalize(Tensor.RandN([3, 8], new Rng(6)));
        var batch = ModelBatch.Of(InputKind.ActionUnits, Tensor.FromSpan(MultiHot([0, 1, 4], [], [1, 2]), [3, 1, 5, 1, 1], Device.Cpu));
        var output = new ModelOutput(logits, new Dictionary<string, Tensor> { [AieModel.Embedding] = v });
        int[] labels = [1, 0, 2];
        var l = loss.Forward(output, batch, labels);

        double[] D(Tensor x) => x.ToArray().Select(f => (double)f).ToArray();
        double ce;
        using (GradMode.NoGrad()) ce = Tensor.CrossEntropy(logits, labels).Item();
        double[] t;
        using (GradMode.NoGrad()) t = D(loss.Encoder.Encode(loss.Prototypes));
        var vv = D(v);
        var coded = vv.Take(8).Concat(vv.Skip(16)).ToArray();                      // clips 0 and 2; clip 1 is uncoded
        double want = ce + 0.5 * InfoNceRef(coded, t, 0, loss.LogScale0, [3, 2], 8);
        Assert.That(l.Item(), Is.EqualTo(want).Within(1e-5 + 1e-4 * Math.Abs(want)));

        l.Backward();
        var dTheta = loss.LogScaleOffset.Grad!.ToArray()[0];
        var encoderGrads = loss.Encoder.Parameters().Select(p => p.Grad?.ToArray() ?? []).ToList();
        Assert.That(encoderGrads.Any(g => g.Any(x => x != 0f)), "the attribute encoder gets a gradient");
        // Finite differences of the whole loss in θ: the float loss at θ ± h.
        double At(float theta)
        {
            using var s = new TensorScope();
            using var _ = GradMode.NoGrad();
            loss.LogScaleOffset.Backend.Upload(loss.LogScaleOffset.Storage, [theta]);
            return loss.Forward(output, batch, labels).Item();
        }
        const float h = 1e-2f;
        double numeric = (At(h) - At(-h)) / (2 * h);
        loss.LogScaleOffset.Backend.Upload(loss.LogScaleOffset.Storage, [0f]);
        Assert.That(dTheta, Is.EqualTo(numeric).Within(2e-3 + 2e-2 * Math.Abs(numeric)), "dL/dθ");
        loss.ZeroGrad();

        // A batch clip whose set the fold never saw is refused by name.
        var stranger = ModelBatch.Of(InputKind.ActionUnits, Tensor.FromSpan(MultiHot([2], [0], [0]), [3, 1, 5, 1, 1], Device.Cpu));
        var ex = Assert.Throws<InvalidDataException>(() => loss.Forward(output, stranger, labels))!;
        Assert.That(ex.Message, Does.Contain("{7}").And.Contain("not among the fold's 4 prototypes"));
    }

    [Test]
    public void WithoutBeginFoldOrWithWeightZeroTheLossSaysSoOrIsCrossEntropy()
    {
        using var loss = new AieLoss(Small(), new Rng(1));
        using var scope = new TensorScope();
        var output = new ModelOutput(Tensor.RandN([1, 3], new Rng(2)), new Dictionary<string, Tensor> { [AieModel.Embedding] = Tensor.RandN([1, 8], new Rng(3)) });
        var batch = ModelBatch.Of(InputKind.ActionUnits, Tensor.FromSpan(MultiHot([0]), [1, 1, 5, 1, 1], Device.Cpu));
        Assert.That(Assert.Throws<InvalidOperationException>(() => loss.Forward(output, batch, [0]))!.Message, Does.Contain("BeginFold"));
        using var model = new AieModel(Small() with { ContrastiveWeight = 0f }, new Rng(1));
        Assert.That(model.CreateLoss(new Rng(1)), Is.TypeOf<CrossEntropyLoss>());
        Assert.That(model.Config.Targets, Is.Empty, "no action units needed without the contrastive term");
    }

    [Test]
    public void TheModelGivesLogitsAndUnitEmbeddingsAndRefusesWrongInputs()
    {
        using var model = new AieModel(Small(), new Rng(1));
        using var scope = new TensorScope();
        var rgb = Tensor.RandN([2, 4, 3, 16, 16], new Rng(2));
        var motion = Tensor.RandN([2, 4, 3, 16, 16], new Rng(3));
        var o = model.Forward(new ModelBatch(new Dictionary<InputKind, Tensor> { [InputKind.RgbFrames] = rgb, [InputKind.MotionFrames] = motion }));
        Assert.That(o.Logits.Shape, Is.EqualTo(new[] { 2, 3 }));
        var v = o.Get(AieModel.Embedding);
        Assert.That(v.Shape, Is.EqualTo(new[] { 2, 8 }));
        var vs = v.ToArray();
        for (int i = 0; i < 2; i++) Assert.That(vs.AsSpan(i * 8, 8).ToArray().Sum(x => (double)x * x), Is.EqualTo(1.0).Within(1e-5));
        Assert.That(Assert.Throws<ShapeException>(() => model.Forward(rgb, Tensor.RandN([2, 4, 3, 8, 8], new Rng(4))))!.Message, Does.Contain("motion frames"));
        Assert.That(model.Forward(Tensor.RandN([2, 1, 3, 16, 16], new Rng(5)), Tensor.RandN([2, 1, 3, 16, 16], new Rng(6))).Logits.Shape, Is.EqualTo(new[] { 2, 3 }), "any T: one frame");
        Assert.That(Assert.Throws<ArgumentException>(() => model.Forward(ModelBatch.Of(InputKind.MotionFrames, motion)))!.Message, Does.Contain("RGB face frames"));
    }

    [Test]
    public void ForDataFitsTheCacheAndRefusesWhatItLacksByName()
    {
        var both = new List<InputShape> { new(InputKind.MotionFrames, 6, 3, 24), new(InputKind.RgbFrames, 6, 3, 48), new(InputKind.ActionUnits, 1, 5, 1) };
        var fitted = (AieConfig)AiePresets.Tiny.ForData(new DataShape(5, both, "c") { ActionUnits = Vocabulary });
        Assert.That((fitted.Classes, fitted.RgbSize, fitted.MotionSize, fitted.ActionUnits.Count), Is.EqualTo((5, 48, 24, 5)));
        Assert.That(fitted.Targets.Single(), Is.EqualTo(new InputShape(InputKind.ActionUnits, 1, 5, 1)));
        var motionOnly = new DataShape(3, [new InputShape(InputKind.MotionFrames, 4, 3, 32)], "cacheM");
        Assert.That(Assert.Throws<InvalidDataException>(() => AiePresets.Tiny.ForData(motionOnly))!.Message,
            Does.Contain("cacheM").And.Contain("aie-tiny").And.Contain("RGB face frames"));
        var noAus = new DataShape(3, [new InputShape(InputKind.MotionFrames, 4, 3, 32), new InputShape(InputKind.RgbFrames, 4, 3, 32)], "cacheN");
        Assert.That(Assert.Throws<InvalidDataException>(() => AiePresets.Tiny.ForData(noAus))!.Message,
            Does.Contain("cacheN").And.Contain("action units").And.Contain("--con-weight 0"));
        Assert.That(((AieConfig)(AiePresets.Tiny with { ContrastiveWeight = 0f }).ForData(noAus)).Targets, Is.Empty);
        var mixedT = new DataShape(3, [new InputShape(InputKind.MotionFrames, 4, 3, 32), new InputShape(InputKind.RgbFrames, 6, 3, 32)], "cacheT");
        Assert.That(Assert.Throws<InvalidDataException>(() => (AiePresets.Tiny with { ContrastiveWeight = 0f }).ForData(mixedT))!.Message, Does.Contain("T=6 and T=4"));
    }

    [Test]
    public void CheckpointRoundTripRebuildsTheSameModel()
    {
        string dir = Directory.CreateTempSubdirectory("aie-ckpt").FullName;
        try
        {
            string path = Path.Combine(dir, "model.safetensors");
            using var a = new AieModel(Small(), new Rng(1));
            using var scope = new TensorScope();
            var batch = new ModelBatch(new Dictionary<InputKind, Tensor>
            {
                [InputKind.RgbFrames] = Tensor.RandN([2, 4, 3, 16, 16], new Rng(2)),
                [InputKind.MotionFrames] = Tensor.RandN([2, 4, 3, 16, 16], new Rng(3)),
            });
            _ = a.Forward(batch); // a training-mode forward moves BatchNorm's running statistics off their start
            Weights.Save(a, path);
            Assert.That(Weights.ReadConfig(path), Is.EqualTo(a.Config));
            using var b = Weights.LoadModel(path);
            Assert.That(b, Is.TypeOf<AieModel>());
            a.Training = false;
            b.Training = false;
            using var noGrad = GradMode.NoGrad();
            Assert.That(b.Forward(batch).Logits.ToArray(), Is.EqualTo(a.Forward(batch).Logits.ToArray()));

            using var other = new AieModel(Small() with { EmbedDim = 16 }, new Rng(1));
            Assert.That(Assert.Throws<InvalidDataException>(() => Weights.Load(other, path))!.Message, Does.Contain("embed_dim: 8 vs 16"));
            using var stt = new SttModel(SttPresets.Tiny, new Rng(1));
            Assert.That(Assert.Throws<InvalidDataException>(() => Weights.Load(stt, path))!.Message, Does.Contain("family: aie vs stt"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Test]
    public void TheRegistryKnowsBothPresets()
    {
        Assert.That(ModelRegistry.Names, Is.SupersetOf(new[] { "aie-tiny", "aie" }));
        Assert.That(ModelRegistry.Preset("aie"), Is.EqualTo(AiePresets.Full));
        Assert.That(ModelRegistry.Preset("aie-tiny").Family, Is.EqualTo("aie"));
    }
}

/// <summary>
/// aie-tiny trains the same on ILGPU's CPU accelerator as on the SIMD CPU: three AdamW steps of the model and its loss
/// (attribute encoder and temperature included) from the same weights and batch give losses within rtol 1e-4, and the
/// first step's gradients agree within 1e-5 + 1e-4·|ref|.
/// </summary>
public class AieDeviceTests
{
    private static (float[] Losses, Dictionary<string, float[]> Grads) Train(Device device, int steps)
    {
        var cfg = AieTests.Small();
        using var model = ModelRegistry.Create(cfg, new Rng(1));
        model.To(device);
        using var loss = model.CreateLoss(new Rng(2));
        loss.To(device);
        var multiHot = AieTests.MultiHot([0, 1], [3], [0, 1], [2, 3, 4], [1]);
        loss.BeginFold(AieTests.Fold(multiHot));
        var named = model.NamedParameters().Select(p => ("model." + p.Name, p.Value)).Concat(loss.NamedParameters().Select(p => ("loss." + p.Name, p.Value))).ToList();
        using var opt = new AdamW(named.Select(p => p.Value), lr: 1e-3f, weightDecay: 0.01f);
        var rgb = Tensor.RandN([3, 4, 3, 16, 16], new Rng(3)).ToArray();
        var motion = Tensor.RandN([3, 4, 3, 16, 16], new Rng(4)).ToArray();
        int[] labels = [0, 2, 1];
        var losses = new float[steps];
        var grads = new Dictionary<string, float[]>();
        for (int s = 0; s < steps; s++)
        {
            using var scope = new TensorScope();
            var batch = new ModelBatch(new Dictionary<InputKind, Tensor>
            {
                [InputKind.RgbFrames] = Tensor.FromSpan(rgb, [3, 4, 3, 16, 16], device),
                [InputKind.MotionFrames] = Tensor.FromSpan(motion, [3, 4, 3, 16, 16], device),
                [InputKind.ActionUnits] = Tensor.FromSpan(multiHot.AsSpan(0, 15), [3, 1, 5, 1, 1], device),
            });
            var l = loss.Forward(model.Forward(batch), batch, labels, [1f, 0.5f, 2f]);
            l.Backward();
            if (s == 0) foreach (var (name, p) in named) grads[name] = p.Grad!.ToArray();
            opt.Step();
            opt.ZeroGrad();
            losses[s] = l.Item();
        }
        return (losses, grads);
    }

    [Test]
    public void ThreeTrainingStepsOnIlgpuCpuMatchTheCpu()
    {
        var cpu = Train(Device.Cpu, 3);
        var ilgpu = Train(Devices.IlgpuCpu, 3);
        TestContext.Out.WriteLine($"losses cpu {string.Join(", ", cpu.Losses)}; ilgpu-cpu {string.Join(", ", ilgpu.Losses)}");
        for (int s = 0; s < 3; s++)
            Assert.That(ilgpu.Losses[s], Is.EqualTo(cpu.Losses[s]).Within(1e-4 * Math.Abs(cpu.Losses[s])), $"loss of step {s + 1}");
        Assert.That(cpu.Losses[2], Is.LessThan(cpu.Losses[0]), "the loss falls on a repeated batch");
        Assert.That(cpu.Grads.Keys, Does.Contain("loss.log_scale_offset").And.Contain("loss.text.word_embed"));
        foreach (var (name, want) in cpu.Grads)
            Check.Close(ilgpu.Grads[name], want.Select(v => (double)v).ToArray(), 1e-5, 1e-4, $"d/d{name}");
    }
}
