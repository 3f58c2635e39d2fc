using MicroExpr.Cli;
using MicroExpr.Models;
using MicroExpr.Tensors;
using MicroExpr.Tests.Cli;
using MicroExpr.Tests.Support;

namespace MicroExpr.Tests.Models;

/// <summary>
/// STT's second reading of the compact loss (<see cref="NonTargetKlLoss"/>) against a double-precision reference and
/// finite differences, and <c>--set</c> (<see cref="ModelRegistry.Preset(string, string?)"/>), which selects it.
/// </summary>
public class ModelSettingsTests
{
    /// <summary>CE + λ · mean over same-class pairs of ½ Σ_{k≠y} (qᵢₖ − qⱼₖ)(log qᵢₖ − log qⱼₖ), q the softmax over the non-target logits.</summary>
    static double[] KlRef(double[] z, int[] y, int k, double lambda)
    {
        int b = y.Length;
        double ce = 0;
        var q = new double[b * k];
        for (int i = 0; i < b; i++)
        {
            double mx = double.NegativeInfinity, sum = 0;
            for (int j = 0; j < k; j++) mx = Math.Max(mx, z[i * k + j]);
            for (int j = 0; j < k; j++) sum += Math.Exp(z[i * k + j] - mx);
            ce -= z[i * k + y[i]] - mx - Math.Log(sum);
            double rest = 0;
            for (int j = 0; j < k; j++) if (j != y[i]) rest += Math.Exp(z[i * k + j]);
            for (int j = 0; j < k; j++) q[i * k + j] = j == y[i] ? 0 : Math.Exp(z[i * k + j]) / rest;
        }
        double kl = 0;
        int pairs = 0;
        for (int i = 0; i < b; i++)
            for (int j = i + 1; j < b; j++)
            {
                if (y[i] != y[j]) continue;
                pairs++;
                for (int c = 0; c < k; c++)
                    if (c != y[i]) kl += 0.5 * (q[i * k + c] - q[j * k + c]) * (Math.Log(q[i * k + c]) - Math.Log(q[j * k + c]));
            }
        return [ce / b + (pairs == 0 ? 0 : lambda * kl / pairs)];
    }

    [TestCase(0.5f)]
    [TestCase(2f)]
    public void NonTargetKlMatchesItsFormulaAndFiniteDifferences(float lambda)
    {
        const int b = 6, k = 4;
        int[] y = [0, 2, 0, 2, 1, 0]; // pairs (0,2), (0,5), (2,5), (1,3); sample 4 has none
        new GradCheck
        {
            Name = "non_target_kl", Shapes = [[b, k]],
            Op = t => new NonTargetKlLoss(lambda).Forward(new ModelOutput(t[0]), ModelBatch.Of(InputKind.MotionFrames, t[0]), y),
            Reference = x => KlRef(x[0], y, k, lambda),
            Init = (_, _, rng) => 2f * (float)rng.NextNormal(),
            GradAtol = 1e-4, GradRtol = 2e-3,
        }.Run();
    }

    [Test]
    public void WithoutASameClassPairTheLossIsTheCrossEntropy()
    {
        using var scope = new TensorScope();
        var z = Tensor.RandN([3, 3], new Rng(4));
        int[] y = [0, 1, 2];
        Assert.That(NonTargetKlLoss.Divergence(z, y), Is.Null);
        var loss = new NonTargetKlLoss(1f).Forward(new ModelOutput(z), ModelBatch.Of(InputKind.MotionFrames, z), y).Item();
        Assert.That(loss, Is.EqualTo(Tensor.CrossEntropy(z, y).Item()));
        // Two samples of one class that spread the rest alike have no divergence; spread differently, they have some.
        var same = Tensor.FromSpan([3f, 1f, 0f, 5f, 1f, 0f], [2, 3], null);
        Assert.That(NonTargetKlLoss.Divergence(same, [0, 0])!.Item(), Is.EqualTo(0f).Within(1e-6));
        var apart = Tensor.FromSpan([3f, 2f, 0f, 3f, 0f, 2f], [2, 3], null);
        Assert.That(NonTargetKlLoss.Divergence(apart, [0, 0])!.Item(), Is.GreaterThan(0.5f));
    }

    [Test]
    public void SetChangesThePresetsFields()
    {
        var cfg = (SttConfig)ModelRegistry.Preset("stt-tiny", "compact=symmetric-kl, compact_weight=0.5,depth=3,joint=parallel");
        Assert.That(cfg.Compact, Is.EqualTo(CompactKind.SymmetricKl));
        Assert.That(cfg.CompactWeight, Is.EqualTo(0.5f));
        Assert.That(cfg.Depth, Is.EqualTo(3));
        Assert.That(cfg.Joint, Is.EqualTo(SttJoint.Parallel));
        Assert.That(cfg.Name, Is.EqualTo("stt-tiny"));
        Assert.That(ModelRegistry.Preset("stt-tiny", ""), Is.EqualTo(SttPresets.Tiny));
        using var model = new SttModel(cfg with { Classes = 3 }, new Rng(1));
        using var loss = model.CreateLoss(new Rng(2));
        Assert.That(loss, Is.TypeOf<NonTargetKlLoss>());
        Assert.That(((NonTargetKlLoss)loss).Lambda, Is.EqualTo(0.5f));
    }

    [TestCase("no-such=1", "--set no-such: stt-tiny has no such field; its fields: ")]
    [TestCase("depth=two", "--set depth=two: expected a number")]
    [TestCase("depth", "--set depth: expected KEY=VALUE")]
    [TestCase("name=other", "--set name: stt-tiny has no such field")]
    [TestCase("compact=cosine", "--set compact=cosine: not a valid stt-tiny config")]
    public void ABadSettingIsNamed(string settings, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => ModelRegistry.Preset("stt-tiny", settings))!;
        Assert.That(e.Message, Does.StartWith(message));
        if (message.Contains("its fields")) Assert.That(e.Message, Does.Contain("compact-weight").And.Contain("depth"));
    }

    [Test, NonParallelizable]
    public void TrainRefusesABadSettingBeforeReadingData()
    {
        var (code, _, err) = ConsoleCapture.Run(() => Entry.Run(["train", "--data", "no-such-cache", "--out", Path.GetTempPath(), "--model", "stt-tiny", "--set", "widht=32"]));
        Assert.That(code, Is.EqualTo(Entry.Usage), err);
        Assert.That(err, Does.Contain("--set widht: stt-tiny has no such field"));
    }
}
