using MicroExpr.Models;
using MicroExpr.Models.PyTorch;
using MicroExpr.Tensors;
using MicroExpr.Tests.Support;
using MicroExpr.Training;

namespace MicroExpr.Tests.Models;

/// <summary>The model side of SLSTT's released recipe: ImageNet normalisation inside the model, the step schedule, and the pretrained ViT import.</summary>
public class SlsttOfficialModelTests
{
    static SlsttConfig Small(InputNormalisation norm) => SlsttPresets.Tiny with
    {
        ImageSize = 16, PatchSize = 8, Width = 8, Depth = 1, Heads = 2, MlpHidden = 16, TemporalHidden = 8, Classes = 3, InputNorm = norm,
    };

    [Test]
    public void ImageNetNormalisationIsAppliedInsideTheModelPerChannel()
    {
        // The same weights (same seed); the normalised model on x must equal the plain one on (x − mean_c)/std_c computed
        // here in double, channel by channel.
        using var plain = new SlsttModel(Small(InputNormalisation.None), new Rng(5));
        using var normed = new SlsttModel(Small(InputNormalisation.ImageNet), new Rng(5));
        var rng = new Random(11);
        int b = 2, t = 3, s = 16, n = b * t * 3 * s * s;
        var x = Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble()).ToArray();
        double[] mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225];
        var xn = new float[n];
        for (int i = 0; i < n; i++)
        {
            int c = i / (s * s) % 3;
            xn[i] = (float)((x[i] - mean[c]) / std[c]);
        }
        using var scope = new TensorScope();
        var expected = plain.Forward(Tensor.FromArray(xn, b, t, 3, s, s)).ToArray();
        var got = normed.Forward(Tensor.FromArray(x, b, t, 3, s, s)).ToArray();
        for (int i = 0; i < expected.Length; i++) Assert.That(got[i], Is.EqualTo(expected[i]).Within(1e-4 + 1e-4 * Math.Abs(expected[i])), $"logit {i}");
        var unnormalised = plain.Forward(Tensor.FromArray(x, b, t, 3, s, s)).ToArray();
        Assert.That(unnormalised.Zip(expected).Max(p => Math.Abs(p.First - p.Second)), Is.GreaterThan(1e-3), "the normalisation changes the logits");
    }

    [Test]
    public void InputNormIsAFieldOfTheSavedConfigAndOfSet()
    {
        var cfg = (SlsttConfig)ModelRegistry.Preset("slstt-b16", "input-norm=imagenet");
        Assert.That(cfg.InputNorm, Is.EqualTo(InputNormalisation.ImageNet));
        var back = (SlsttConfig)ModelRegistry.ConfigFromJson("slstt", ModelRegistry.ConfigToJson(cfg), "test");
        Assert.That(back.InputNorm, Is.EqualTo(InputNormalisation.ImageNet));
        Assert.That(SlsttPresets.B16.Differences(cfg), Is.EqualTo(new[] { "input_norm: None vs ImageNet" }));
        var old = (SlsttConfig)ModelRegistry.ConfigFromJson("slstt", ModelRegistry.ConfigToJson(SlsttPresets.B16).Replace(",\"InputNorm\":\"None\"", ""), "old");
        Assert.That(old.InputNorm, Is.EqualTo(InputNormalisation.None), "a config saved before the field reads as None");
    }

    [Test]
    public void TheStepScheduleIsSlsttsAdjustLearningRate()
    {
        // 0.01 for epochs 1..29 (0-based 0..28), 0.001 from epoch 30 (0-based 29) to 40.
        Assert.That(Schedule.Step(0.01f, 0, 30, 0.1f), Is.EqualTo(0.01f));
        Assert.That(Schedule.Step(0.01f, 28, 30, 0.1f), Is.EqualTo(0.01f));
        Assert.That(Schedule.Step(0.01f, 29, 30, 0.1f), Is.EqualTo(0.001f).Within(1e-9));
        Assert.That(Schedule.Step(0.01f, 39, 30, 0.1f), Is.EqualTo(0.001f).Within(1e-9));
    }

    [Test]
    public void ACheckpointInB16ImageNetLayoutImportsIntoTheSpatialEncoderAndAMismatchIsOneLine()
    {
        string dir = Directory.CreateTempSubdirectory("b16").FullName;
        try
        {
            string pth = Path.Combine(dir, "B_16_imagenet1k.pth");
            var tensors = TorchZipWriter.PretrainedVitB16Layout(c: 8, depth: 1, mlp: 16, seed: 3);
            TorchZipWriter.Write(pth, tensors);
            var read = PretrainedFile.Read(pth);
            Assert.That(read.Naming, Is.EqualTo(VitNamingKind.PytorchPretrainedVit));

            var cfg = SlsttPresets.B16 with { ImageSize = 32, Width = 8, Depth = 1, Heads = 2, MlpHidden = 16, TemporalHidden = 8, TemporalLayers = 1, HeadHidden = 4 };
            using var model = new SlsttModel(cfg, new Rng(1));
            var report = Weights.ImportPretrainedVit(model, pth);
            Assert.That(report.MissingInFile, Is.Empty);
            Assert.That(report.Adapted, Has.Some.Contains("pos_embed [1, 577, 8] → [1, 5, 8]"), "the 384 px grid resized to the model's 2×2");
            var patch = model.Spatial.NamedParameters().Single(p => p.Name == "patch_embed.proj.weight").Value.ToArray();
            Assert.That(patch, Is.EqualTo(tensors.Single(t => t.Name == "patch_embedding.weight").Data));
            var norm = model.Spatial.NamedParameters().Single(p => p.Name == "norm.weight").Value.ToArray();
            Assert.That(norm, Is.EqualTo(tensors.Single(t => t.Name == "norm.weight").Data));

            using var wider = new SlsttModel(cfg with { Width = 16, MlpHidden = 32 }, new Rng(1));
            var ex = Assert.Throws<InvalidDataException>(() => Weights.ImportPretrainedVit(wider, pth))!;
            Assert.That(ex.Message, Does.Not.Contain("\n"));
            Assert.That(ex.Message, Does.Contain("does not fit slstt-b16 (width 16").And.Contain("parameters not in the file"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
