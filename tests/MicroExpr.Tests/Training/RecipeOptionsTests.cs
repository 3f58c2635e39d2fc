using MicroExpr.Models;
using MicroExpr.Nn;
using MicroExpr.Tensors;
using MicroExpr.Tensors.Autograd;
using MicroExpr.Tests.Training;
using MicroExpr.Training;

namespace MicroExpr.Tests.Training;

/// <summary>
/// The small-data recipe options of issue 16: dropout, head dropout and drop-path in the slstt family, mixup, class-balanced
/// sampling. Each: off is the run of before, on is seeded (same seed, same losses), evaluation deterministic.
/// </summary>
public class RecipeOptionsTests
{
    private string dir = "";

    [SetUp]
    public void SetUp() => dir = Directory.CreateTempSubdirectory("recipe").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(dir, true);

    private static readonly TrainOptions Short = new() { Preset = "slstt-tiny", Epochs = 2, BatchSize = 4, LearningRate = 3e-3f, WarmupEpochs = 1 };

    private FoldResult Fold(TrainOptions o, string name, ClipSet? data = null) =>
        LosoRunner.Train(data ?? LosoTests.ToyClips(), o, Path.Combine(dir, name), Device.Cpu, resume: false, onlyFold: 1).Single();

    // ---- dropout and drop-path in the transformer block

    private static TransformerBlock Block(float dropout, float dropPath) => new(16, 2, 24, new Rng(9), initStd: 0.2f, dropout: dropout, dropPath: dropPath);

    private static void Reseed(TransformerBlock b, ulong seed)
    {
        int i = 0;
        foreach (var n in b.Noise) n.Reseed(seed + (ulong)i++);
    }

    [Test]
    public void ABlockWithDropoutHasTheSameWeightsAndIsTheFusedBlockInEvaluation()
    {
        using var plain = Block(0, 0);
        using var noisy = Block(0.3f, 0.25f);
        Assert.That(noisy.NamedParameters().Select(p => p.Name), Is.EqualTo(plain.NamedParameters().Select(p => p.Name)));
        foreach (var ((_, a), (_, b)) in plain.NamedParameters().Zip(noisy.NamedParameters())) Assert.That(b.ToArray(), Is.EqualTo(a.ToArray()));
        using var x = Tensor.FromSpan(Check.Random(3 * 5 * 16, 4), [3, 5, 16], Device.Cpu);
        noisy.Eval();
        plain.Eval();
        Assert.That(noisy.Forward(x).ToArray(), Is.EqualTo(plain.Forward(x).ToArray()), "evaluation: no dropout, the fused path");
        Assert.That(noisy.Forward(x).ToArray(), Is.EqualTo(noisy.Forward(x).ToArray()), "evaluation is deterministic");
        noisy.Train();
        Reseed(noisy, 5);
        var first = noisy.Forward(x).ToArray();
        Reseed(noisy, 5);
        Assert.That(noisy.Forward(x).ToArray(), Is.EqualTo(first), "the same seed gives the same masks");
        Assert.That(first, Is.Not.EqualTo(plain.Forward(x).ToArray()), "training drops something");
    }

    [Test]
    public void ABlockInTrainingIsItsBranchesMaskedAndAdded()
    {
        // y = h + DropPath(Dropout(mlp(norm2(h)))), h = x + DropPath(Dropout(attn(norm1(x)))), with the masks of Tensor.Dropout and
        // Tensor.DropPath drawn from the modules' generators: recomputed here from the block's parts with generators in the same state.
        using var block = Block(0.3f, 0.4f);
        using var x = Tensor.FromSpan(Check.Random(4 * 5 * 16, 6), [4, 5, 16], Device.Cpu);
        Reseed(block, 11);
        var y = block.Forward(x).ToArray();
        Rng R(int i) => new(11 + (ulong)i); // Noise order: attn dropout, mlp dropout, attn path, mlp path
        Rng d1 = R(0), d2 = R(1), p1 = R(2), p2 = R(3);
        var h = x + block.Attn.Forward(block.Norm1.Forward(x)).Dropout(0.3f, d1).DropPath(0.4f, p1);
        var want = h + block.Mlp.Forward(block.Norm2.Forward(h)).Dropout(0.3f, d2).DropPath(0.4f, p2);
        Check.Close(y, want.ToArray(), 1e-6, 1e-5, "block with dropout and drop-path");
    }

    [Test]
    public void ABlockWithDropoutAndDropPathHasFiniteDifferenceGradients()
    {
        using var block = Block(0.2f, 0.3f);
        var xs = Check.Random(4 * 5 * 16, 8);
        var g = Check.Random(xs.Length, 9);
        double Loss(float[] v)
        {
            using var _ = GradMode.NoGrad();
            using var scope = new TensorScope();
            Reseed(block, 21);
            var y = block.Forward(Tensor.FromSpan(v, [4, 5, 16], Device.Cpu)).ToArray();
            double s = 0;
            for (int i = 0; i < y.Length; i++) s += (double)y[i] * g[i];
            return s;
        }
        using var x = Tensor.FromSpan(xs, [4, 5, 16], Device.Cpu);
        x.RequiresGrad = true;
        Reseed(block, 21);
        using (var scope = new TensorScope())
        {
            var y = block.Forward(x);
            (y * Tensor.FromSpan(g, [4, 5, 16], Device.Cpu)).Sum().Backward();
        }
        var grad = x.Grad!.ToArray();
        const float step = 1e-2f;
        for (int k = 0; k < 40; k++)
        {
            int j = (k * 37 + 5) % xs.Length;
            var plus = (float[])xs.Clone();
            var minus = (float[])xs.Clone();
            plus[j] += step;
            minus[j] -= step;
            double fd = (Loss(plus) - Loss(minus)) / (2 * step);
            Assert.That(grad[j], Is.EqualTo(fd).Within(2e-2 + 3e-2 * Math.Abs(fd)), $"d loss / d x[{j}]");
        }
    }

    [Test]
    public void DropPathRisesLinearlyOverTheBlocks()
    {
        var cfg = SlsttPresets.Tiny with { Depth = 4, DropPath = 0.3f, Dropout = 0.1f, ImageSize = 16 };
        using var model = new SlsttModel(cfg, new Rng(1));
        var rates = model.Spatial.Blocks.Select(b => b.AttnPath?.P ?? 0f).ToArray();
        Assert.That(rates, Is.EqualTo(new[] { 0f, 0.1f, 0.2f, 0.3f }).Within(1e-6f));
        Assert.That(model.Spatial.Blocks.Select(b => b.MlpPath?.P ?? 0f), Is.EqualTo(rates));
        Assert.That(model.Spatial.Blocks.All(b => b.AttnDrop?.P == 0.1f && b.MlpDrop?.P == 0.1f));
        Assert.That(VisionTransformer.DropPathRate(0.3f, 0, 1), Is.EqualTo(0f), "one block: no drop");
    }

    [Test]
    public void TheRatesAreConfigFieldsSetByNameComparedAndDefaultedInOldCheckpoints()
    {
        var set = (SlsttConfig)ModelRegistry.Preset("slstt-tiny", "dropout=0.1,head-dropout=0.2,drop-path=0.05");
        Assert.That((set.Dropout, set.HeadDropout, set.DropPath), Is.EqualTo((0.1f, 0.2f, 0.05f)));
        Assert.That(set.Differences(SlsttPresets.Tiny), Is.EquivalentTo(new[] { "dropout: 0.1 vs 0", "head_dropout: 0.2 vs 0", "drop_path: 0.05 vs 0" }));
        // A config saved before these fields existed: the JSON lacks them, and they read as 0 (the model of before).
        var node = System.Text.Json.Nodes.JsonNode.Parse(ModelRegistry.ConfigToJson(SlsttPresets.Tiny))!.AsObject();
        foreach (var f in new[] { "Dropout", "HeadDropout", "DropPath" }) Assert.That(node.Remove(f), f);
        var old = (SlsttConfig)ModelRegistry.ConfigFromJson("slstt", node.ToJsonString(), "old checkpoint");
        Assert.That(old, Is.EqualTo(SlsttPresets.Tiny));
        var bad = Assert.Throws<ArgumentException>(() => new SlsttModel(SlsttPresets.Tiny with { DropPath = 1f }, new Rng(1)))!;
        Assert.That(bad.Message, Does.Contain("drop-path 1").And.Contain("[0, 1)"));
    }

    [Test]
    public void ASavedModelWithDropoutLoadsBackAndPredictsDeterministically()
    {
        var cfg = SlsttPresets.Tiny with { Dropout = 0.2f, HeadDropout = 0.3f, DropPath = 0.1f, ImageSize = 16 };
        string path = Path.Combine(dir, "m.safetensors");
        using (var model = new SlsttModel(cfg, new Rng(3))) Weights.Save(model, path);
        using var loaded = Weights.LoadModel(path);
        Assert.That(loaded.Config, Is.EqualTo(cfg));
        loaded.Training = false;
        using var clips = Tensor.FromSpan(Check.Random(2 * 2 * 3 * 16 * 16, 5, 0, 1), [2, 2, 3, 16, 16], Device.Cpu);
        var batch = new ModelBatch(new Dictionary<InputKind, Tensor> { [InputKind.MotionFrames] = clips });
        using var _ = GradMode.NoGrad();
        Assert.That(loaded.Forward(batch).Logits.ToArray(), Is.EqualTo(loaded.Forward(batch).Logits.ToArray()));
    }

    // ---- training runs: off is the run of before, on is seeded

    [Test]
    public void OptionsAtZeroTrainExactlyTheDefaultRun()
    {
        var plain = Fold(Short, "plain");
        var zeros = Fold(Short with { ModelSettings = "dropout=0,head-dropout=0,drop-path=0,stem=patch", Mixup = 0, Balanced = false }, "zeros");
        Assert.That(zeros.EpochLoss, Is.EqualTo(plain.EpochLoss));
        Assert.That(zeros.Predictions.Select(p => p.Probabilities), Is.EqualTo(plain.Predictions.Select(p => p.Probabilities)));
    }

    [TestCase("dropout=0.2,head-dropout=0.2,drop-path=0.2", 0f, false)]
    [TestCase("", 0.4f, false)]
    [TestCase("", 0f, true)]
    [TestCase("dropout=0.1,drop-path=0.1", 0.2f, true)]
    [TestCase("stem=conv", 0f, false)]
    public void EachOptionIsSeededAndChangesTheRun(string settings, float mixup, bool balanced)
    {
        var o = Short with { ModelSettings = settings, Mixup = mixup, Balanced = balanced };
        var a = Fold(o, "a");
        var b = Fold(o, "b");
        Assert.That(b.EpochLoss, Is.EqualTo(a.EpochLoss), "same seed, same losses");
        Assert.That(b.Predictions.Select(p => p.Probabilities), Is.EqualTo(a.Predictions.Select(p => p.Probabilities)));
        Assert.That(a.EpochLoss, Is.Not.EqualTo(Fold(Short, "plain").EpochLoss), "the option changes training");
        Assert.That(a.EpochLoss.All(double.IsFinite));
    }

    [Test]
    public void AResumedFoldWithDropoutAndMixupEndsWhereAnUninterruptedOneDoes()
    {
        var o = Short with { Epochs = 3, ModelSettings = "dropout=0.2,drop-path=0.2,head-dropout=0.1", Mixup = 0.4f, Balanced = true };
        var data = LosoTests.ToyClips();
        var full = Fold(o, "full", data);
        string run = Path.Combine(dir, "cut");
        using var cts = new CancellationTokenSource();
        Assert.Throws<OperationCanceledException>(() =>
            LosoRunner.Train(data, o, run, Device.Cpu, resume: false, onlyFold: 1, progress: new CancelAfter(2, cts), cancel: cts.Token));
        var resumed = LosoRunner.Train(data, o, run, Device.Cpu, resume: true, onlyFold: 1).Single();
        Assert.That(resumed.EpochLoss, Is.EqualTo(full.EpochLoss));
        Assert.That(resumed.Predictions.Select(p => p.Probabilities), Is.EqualTo(full.Predictions.Select(p => p.Probabilities)));
    }

    private sealed class CancelAfter(int epochs, CancellationTokenSource cts) : ITrainingProgress
    {
        public void OnEpoch(string fold, int foldIndex, int folds, int epoch, int total, double loss, double seconds)
        {
            if (epoch == epochs) cts.Cancel();
        }
    }

    // ---- mixup

    [Test]
    public void MixupRefusesALossThatTakesHardLabelsOnly()
    {
        var o = Short with { Preset = "stt-tiny", Mixup = 0.2f };
        var ex = Assert.Throws<ArgumentException>(() => Fold(o, "stt"))!;
        Assert.That(ex.Message, Does.Contain("--mixup").And.Contain("stt-tiny").And.Contain(nameof(CompactSoftmaxLoss)).And.Contain("hard labels"));
        Assert.That(ex.Message, Does.Not.Contain("\n"));
        Assert.That(new CrossEntropyLoss().TakesSoftTargets, Is.True);
    }

    [Test]
    public void MixupMixesInputsAndTargetsWithOneLambdaAndAPermutation()
    {
        var (lambda, partner) = Mixup.Draw(new Rng(4), 0.4, 5);
        Assert.That(partner.OrderBy(i => i), Is.EqualTo(Enumerable.Range(0, 5)), "a permutation");
        Assert.That(lambda, Is.InRange(0f, 1f));
        var x = Check.Random(5 * 3, 2);
        var mixed = (float[])x.Clone();
        Mixup.Inputs(mixed, 5, 3, partner, lambda, new float[5 * 3]);
        for (int i = 0; i < 5; i++)
            for (int k = 0; k < 3; k++)
                Assert.That(mixed[i * 3 + k], Is.EqualTo(lambda * x[i * 3 + k] + (1 - lambda) * x[partner[i] * 3 + k]).Within(1e-6));
        int[] labels = [0, 2, 1, 2, 0];
        var t = Mixup.Targets(labels, partner, lambda, 3);
        for (int i = 0; i < 5; i++)
        {
            Assert.That(t.Skip(i * 3).Take(3).Sum(), Is.EqualTo(1f).Within(1e-6f));
            var want = new double[3];
            want[labels[i]] += lambda;
            want[labels[partner[i]]] += 1 - lambda;
            for (int c = 0; c < 3; c++) Assert.That(t[i * 3 + c], Is.EqualTo(want[c]).Within(1e-6));
        }
    }

    [TestCase(0.2)]
    [TestCase(1.0)]
    [TestCase(2.0)]
    public void BetaDrawsHaveTheBetaMeanAndVariance(double alpha)
    {
        var rng = new Rng(12);
        const int n = 40000;
        var x = Enumerable.Range(0, n).Select(_ => Mixup.Beta(rng, alpha)).ToArray();
        double mean = x.Average(), variance = x.Select(v => (v - mean) * (v - mean)).Sum() / (n - 1);
        Assert.That(x.All(v => v >= 0 && v <= 1));
        // Beta(α, α): mean 1/2, variance 1 / (4(2α + 1)); the tolerances are ~5 standard errors at n = 40000.
        Assert.That(mean, Is.EqualTo(0.5).Within(5 * Math.Sqrt(0.25 / (4 * (2 * alpha + 1)) * 4 / n) + 1e-3));
        Assert.That(variance, Is.EqualTo(1 / (4 * (2 * alpha + 1))).Within(0.05 / (4 * (2 * alpha + 1)) + 2e-3));
        Assert.Throws<ArgumentOutOfRangeException>(() => Mixup.Beta(rng, 0));
    }

    // ---- balanced sampling

    [Test]
    public void BalancedSamplingDrawsEveryClassEquallyOften()
    {
        // 12 clips of class 0, 3 of class 1, 1 of class 2 (and no class 3: only present classes are drawn).
        int[] labels = [.. Enumerable.Repeat(0, 12), .. Enumerable.Repeat(1, 3), 2];
        const int n = 60000;
        var order = BalancedSampler.Order(labels, n, new Rng(7));
        var perClass = order.GroupBy(i => labels[i]).ToDictionary(g => g.Key, g => g.Count() / (double)n);
        Assert.That(perClass.Keys, Is.EquivalentTo(new[] { 0, 1, 2 }));
        foreach (var (c, f) in perClass) Assert.That(f, Is.EqualTo(1 / 3.0).Within(0.01), $"class {c}");
        // Within a class every clip is equally likely: clip 0..11 each about 1/36.
        var perClip = order.Where(i => labels[i] == 0).GroupBy(i => i).ToDictionary(g => g.Key, g => g.Count() / (double)n);
        Assert.That(perClip.Count, Is.EqualTo(12));
        foreach (var (i, f) in perClip) Assert.That(f, Is.EqualTo(1 / 36.0).Within(0.004), $"clip {i}");
        Assert.That(BalancedSampler.Order(labels, 50, new Rng(7)), Is.EqualTo(BalancedSampler.Order(labels, 50, new Rng(7))), "seeded");
    }

    // ---- options: saved, searched by the grid

    [Test]
    public void TheOptionsAreSavedAndTheGridSearchesThem()
    {
        var o = Short with { Mixup = 0.2f, Balanced = true, ModelSettings = "drop-path=0.1" };
        var back = System.Text.Json.JsonSerializer.Deserialize<TrainOptions>(System.Text.Json.JsonSerializer.Serialize(o));
        Assert.That(back, Is.EqualTo(o));
        var old = System.Text.Json.JsonSerializer.Deserialize<TrainOptions>("{\"Preset\":\"slstt-tiny\"}")!;
        Assert.That((old.Mixup, old.Balanced), Is.EqualTo((0f, false)), "options.json of before: off");
        Assert.That(InnerGrid.Parse("mixup=0,0.2")!.Apply(Short, 1).Mixup, Is.EqualTo(0.2f));
        Assert.That(InnerGrid.Parse("balanced=false,true")!.Apply(Short, 1).Balanced, Is.True);
        Assert.That(InnerGrid.Parse("dropout=0,0.1")!.Apply(Short, 1).ModelSettings, Is.EqualTo("dropout=0.1"));
        Assert.That(InnerGrid.Parse("head-dropout=0,0.1")!.Apply(Short, 1).ModelSettings, Is.EqualTo("head-dropout=0.1"));
        Assert.Throws<ArgumentException>(() => InnerGrid.Parse("balanced=no")!.Check(Short));
    }
}
