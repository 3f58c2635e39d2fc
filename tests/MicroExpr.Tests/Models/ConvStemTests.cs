using MicroExpr.Models;
using MicroExpr.Nn;
using MicroExpr.Tensors;
using MicroExpr.Tensors.Autograd;

namespace MicroExpr.Tests.Models;

/// <summary>
/// The slstt conv stem (<c>--set stem=conv</c>): its forward in training mode against a literal double stem (conv 3×3 →
/// batch-statistics BN → ReLU → conv P×P stride P → BN → ReLU → conv 1×1 + bias, tokens row-major) and its input gradient
/// by finite differences of that reference; a model with it keeps the token grid and loads back.
/// </summary>
[TestFixture(typeof(OnCpu))]
[TestFixture(typeof(OnIlgpuCpu))]
public class ConvStemTests<TDevice> where TDevice : ITestDevice
{
    private static double[] D(Tensor t) => t.ToArray().Select(v => (double)v).ToArray();

    /// <summary>x [B, Ci, H, H] (no padding of its own) conv with w [Co, Ci, k, k], stride s, padding p, bias or none.</summary>
    private static double[] Conv(double[] x, int b, int ci, int h, double[] w, double[]? bias, int co, int k, int s, int p, out int ho)
    {
        ho = (h + 2 * p - k) / s + 1;
        var y = new double[b * co * ho * ho];
        for (int n = 0; n < b; n++)
            for (int o = 0; o < co; o++)
                for (int r = 0; r < ho; r++)
                    for (int c = 0; c < ho; c++)
                    {
                        double acc = bias?[o] ?? 0;
                        for (int i = 0; i < ci; i++)
                            for (int u = 0; u < k; u++)
                                for (int v = 0; v < k; v++)
                                {
                                    int yy = r * s - p + u, xx = c * s - p + v;
                                    if (yy < 0 || yy >= h || xx < 0 || xx >= h) continue;
                                    acc += x[((n * ci + i) * h + yy) * h + xx] * w[((o * ci + i) * k + u) * k + v];
                                }
                        y[((n * co + o) * ho + r) * ho + c] = acc;
                    }
        return y;
    }

    /// <summary>Training-mode BatchNorm (biased batch variance) then ReLU, over [B, C, H, H].</summary>
    private static double[] BnRelu(double[] x, int b, int c, int h, BatchNormBase bn)
    {
        var g = D(bn.Weight!); var be = D(bn.Bias!);
        var y = new double[x.Length];
        int m = b * h * h;
        for (int ch = 0; ch < c; ch++)
        {
            double mean = 0, var = 0;
            for (int n = 0; n < b; n++) for (int i = 0; i < h * h; i++) mean += x[(n * c + ch) * h * h + i];
            mean /= m;
            for (int n = 0; n < b; n++) for (int i = 0; i < h * h; i++) { double d = x[(n * c + ch) * h * h + i] - mean; var += d * d; }
            var /= m;
            for (int n = 0; n < b; n++)
                for (int i = 0; i < h * h; i++)
                {
                    int j = (n * c + ch) * h * h + i;
                    y[j] = Math.Max(0, (x[j] - mean) / Math.Sqrt(var + bn.Eps) * g[ch] + be[ch]);
                }
        }
        return y;
    }

    private static double[] Reference(ConvStem stem, double[] x, int b)
    {
        int s = stem.ImageSize, hdn = stem.Hidden, c = stem.Width, p = stem.PatchSize;
        var a = BnRelu(Conv(x, b, 3, s, D(stem.Conv1.Conv.Weight), null, hdn, 3, 1, 1, out int h1), b, hdn, h1, stem.Conv1.Bn);
        var q = BnRelu(Conv(a, b, hdn, h1, D(stem.Conv2.Conv.Weight), null, hdn, p, p, 0, out int g), b, hdn, g, stem.Conv2.Bn);
        var z = Conv(q, b, hdn, g, D(stem.Proj.Weight), D(stem.Proj.Bias!), c, 1, 1, 0, out _);
        var tokens = new double[b * g * g * c];                    // [B, N, C], token n = row·g + column
        for (int n = 0; n < b; n++)
            for (int ch = 0; ch < c; ch++)
                for (int t = 0; t < g * g; t++) tokens[(n * g * g + t) * c + ch] = z[(n * c + ch) * g * g + t];
        return tokens;
    }

    [TestCase(2, 6, 3, 8)]
    [TestCase(3, 8, 4, 12)]
    [TestCase(2, 14, 7, 16)]
    public void ConvStemMatchesALiteralStemAndItsGradient(int b, int s, int p, int width)
    {
        using var stem = new ConvStem(s, p, 3, width, new Rng(3));
        // Non-trivial BN affine, so γ and β enter the check.
        foreach (var bn in new[] { stem.Conv1.Bn, stem.Conv2.Bn })
            foreach (var t in new[] { bn.Weight!, bn.Bias! })
            {
                var v = t.ToArray();
                for (int i = 0; i < v.Length; i++) v[i] += 0.3f * (i % 3 - 1);
                t.Backend.Upload(t.Storage, v);
            }
        stem.To(TDevice.Device);
        stem.Train();
        Assert.That(stem.Grid, Is.EqualTo(s / p));
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "conv_stem", Shapes = [[b, 3, s, s]], Op = x => stem.Forward(x[0]),
            Reference = x => Reference(stem, x[0], b),
            ForwardAtol = 1e-4, ForwardRtol = 1e-3, GradAtol = 2e-3, GradRtol = 1e-2, MaxGradChecks = 60, // the default step 1e-6: the reference is double, and a step of 1e-4 moved pre-ReLU values across 0 through the batch statistics
        }.Run();
    }
}

/// <summary>The slstt model with a conv stem: the same token grid, its own parameter names, saved and loaded, deterministic in evaluation.</summary>
public class SlsttConvStemModelTests
{
    [Test]
    public void AModelWithAConvStemKeepsTheGridAndLoadsBack()
    {
        var cfg = (SlsttConfig)ModelRegistry.Preset("slstt-tiny", "stem=conv,patch-size=7") with { ImageSize = 28 };
        Assert.That(cfg.Stem, Is.EqualTo(StemKind.Conv));
        Assert.That(cfg.Differences(SlsttPresets.Tiny with { ImageSize = 28, PatchSize = 7 }), Is.EqualTo(new[] { "stem: Conv vs Patch" }));
        using var model = new SlsttModel(cfg, new Rng(2));
        using var plain = new SlsttModel(SlsttPresets.Tiny with { ImageSize = 28, PatchSize = 7 }, new Rng(2));
        Assert.That(model.Spatial.Embed, Is.TypeOf<ConvStem>());
        Assert.That(model.Spatial.Embed.Tokens, Is.EqualTo(plain.Spatial.Embed.Tokens));
        Assert.That(model.NamedState().Any(p => p.Name.StartsWith("spatial.stem.conv1.bn.running_mean", StringComparison.Ordinal)));
        Assert.That(plain.NamedState().Any(p => p.Name.Contains("stem", StringComparison.Ordinal)), Is.False, "the default has no stem");
        Assert.Throws<InvalidOperationException>(() => _ = model.Spatial.PatchEmbed);
        string dir = Directory.CreateTempSubdirectory("stem").FullName;
        try
        {
            string path = Path.Combine(dir, "m.safetensors");
            Weights.Save(model, path);
            using var loaded = Weights.LoadModel(path);
            Assert.That(loaded.Config, Is.EqualTo(cfg));
            loaded.Training = false;
            model.Training = false;
            using var clips = Tensor.FromSpan(Check.Random(2 * 1 * 3 * 28 * 28, 4, 0, 1), [2, 1, 3, 28, 28], Device.Cpu);
            var batch = new ModelBatch(new Dictionary<InputKind, Tensor> { [InputKind.MotionFrames] = clips });
            using var _ = GradMode.NoGrad();
            var a = loaded.Forward(batch).Logits.ToArray();
            Assert.That(loaded.Forward(batch).Logits.ToArray(), Is.EqualTo(a), "evaluation is deterministic");
            Assert.That(model.Forward(batch).Logits.ToArray(), Is.EqualTo(a), "the loaded model is the saved one");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
