using MicroExpr.Models;
using MicroExpr.Tensors;

namespace MicroExpr.Tests.Models;

public class SlsttModelTests
{
    /// <summary>Every shape-fixing field of the config (all but Name) is named when two configs differ in it alone.</summary>
    [Test]
    public void DifferencesNameEveryField()
    {
        var baseConfig = SlsttPresets.Bench;
        foreach (var prop in typeof(SlsttConfig).GetProperties().Where(p => p.CanWrite && p.Name != nameof(SlsttConfig.Name)))
        {
            object? value = prop.GetValue(baseConfig);
            object other = value switch
            {
                int i => i + 1,
                float f => f * 2 + 1,
                TemporalKind k => k == TemporalKind.Lstm ? TemporalKind.Gru : TemporalKind.Lstm,
                InputNormalisation n => n == InputNormalisation.None ? InputNormalisation.ImageNet : InputNormalisation.None,
                StemKind s => s == StemKind.Patch ? StemKind.Conv : StemKind.Patch,
                _ => throw new InvalidOperationException($"{prop.Name}: add a case for {prop.PropertyType.Name}"),
            };
            var changed = baseConfig with { };
            prop.SetValue(changed, other);
            Assert.That(baseConfig.Differences(changed), Has.Count.EqualTo(1), $"{prop.Name} differs but is not reported");
        }
        Assert.That(baseConfig.Differences(SlsttPresets.Bench), Is.Empty);
    }

    [Test]
    public void BenchPresetIsExactlyTheBenchModel()
    {
        using var model = new SlsttModel(SlsttPresets.Bench, new Rng(1));
        Assert.That(model.ParameterCount(), Is.EqualTo(3_124_421), "performance.md: 3,124,421 parameters");
        var names = model.NamedParameters().Select(p => p.Name).ToList();
        Assert.That(names, Does.Contain("spatial.blocks.5.attn.qkv.weight").And.Contain("spatial.patch_embed.proj.weight")
            .And.Contain("temporal.weight_hh_l0").And.Contain("head.weight"));
    }

    [TestCase(TemporalKind.Mean)]
    [TestCase(TemporalKind.Lstm)]
    [TestCase(TemporalKind.Gru)]
    [TestCase(TemporalKind.Transformer)]
    public void EveryAggregatorGivesLogitsAndGradients(TemporalKind kind)
    {
        var cfg = SlsttPresets.Tiny with { Temporal = kind, TemporalLayers = 2, ImageSize = 16, PatchSize = 8, HeadHidden = kind == TemporalKind.Gru ? 8 : 0 };
        using var model = new SlsttModel(cfg, new Rng(2));
        using var scope = new TensorScope();
        var x = Tensor.RandN([2, 3, 3, 16, 16], new Rng(3));
        var logits = model.Forward(x);
        Assert.That(logits.Shape, Is.EqualTo(new[] { 2, 3 }));
        Tensor.CrossEntropy(logits, [0, 2]).Backward();
        foreach (var (name, p) in model.NamedParameters())
        {
            Assert.That(p.Grad, Is.Not.Null, $"{name} got no gradient");
            Assert.That(p.Grad!.ToArray().All(float.IsFinite), $"{name} gradient finite");
        }
        Assert.That(model.Parameters().Any(p => p.Grad!.ToArray().Any(v => v != 0)), "some gradient is non-zero");
        model.ZeroGrad();
    }

    [Test]
    public void WrongInputShapeNamesThePresetAndTheShape()
    {
        using var model = new SlsttModel(SlsttPresets.Tiny, new Rng(1));
        using var scope = new TensorScope();
        var ex = Assert.Throws<ShapeException>(() => model.Forward(Tensor.Zeros(1, 2, 3, 48, 48)))!;
        Assert.That(ex.Message, Does.Contain("slstt-tiny").And.Contain("[1, 2, 3, 48, 48]").And.Contain("32"));
    }
}

/// <summary>LSTM and GRU against literal double-precision recurrences, forward and finite-difference backward.</summary>
public class RecurrentTests
{
    private static double Sig(double v) => 1 / (1 + Math.Exp(-v));

    private static double[] Affine(double[] w, double[] b1, double[]? b2, double[] x, int rows, int cols)
    {
        var y = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            double s = b1[r] + (b2?[r] ?? 0);
            for (int c = 0; c < cols; c++) s += w[r * cols + c] * x[c];
            y[r] = s;
        }
        return y;
    }

    private static double[] Get(Tensor t) => t.ToArray().Select(v => (double)v).ToArray();

    [TestCase(1, 1, 3, 4, 5)]
    [TestCase(2, 3, 4, 3, 1)]
    [TestCase(3, 2, 5, 6, 7)]
    public void Lstm(int layers, int b, int t, int c, int h)
    {
        using var lstm = new LstmAggregator(c, h, layers, new Rng(5));
        var p = lstm.NamedParameters().ToDictionary(x => x.Name, x => Get(x.Value));
        new GradCheck
        {
            Name = "lstm", Shapes = [[b, t, c]], Op = x => lstm.Forward(x[0]), MaxGradChecks = 60,
            Reference = x =>
            {
                var outp = new double[b * h];
                for (int n = 0; n < b; n++)
                {
                    var seq = Enumerable.Range(0, t).Select(s => x[0].Skip((n * t + s) * c).Take(c).ToArray()).ToArray();
                    var hs = new double[h];
                    for (int l = 0; l < layers; l++)
                    {
                        int inF = l == 0 ? c : h;
                        hs = new double[h];
                        var cs = new double[h];
                        var outs = new double[t][];
                        for (int s = 0; s < t; s++)
                        {
                            var gi = Affine(p[$"weight_ih_l{l}"], p[$"bias_ih_l{l}"], p[$"bias_hh_l{l}"], seq[s], 4 * h, inF);
                            var gh = Affine(p[$"weight_hh_l{l}"], new double[4 * h], null, hs, 4 * h, h);
                            var nh = new double[h];
                            for (int k = 0; k < h; k++)
                            {
                                double ig = Sig(gi[k] + gh[k]), fg = Sig(gi[h + k] + gh[h + k]), gg = Math.Tanh(gi[2 * h + k] + gh[2 * h + k]), og = Sig(gi[3 * h + k] + gh[3 * h + k]);
                                cs[k] = fg * cs[k] + ig * gg;
                                nh[k] = og * Math.Tanh(cs[k]);
                            }
                            hs = nh;
                            outs[s] = nh;
                        }
                        seq = outs;
                    }
                    Array.Copy(hs, 0, outp, n * h, h);
                }
                return outp;
            },
        }.Run();
    }

    [TestCase(1, 2, 3, 4, 5)]
    [TestCase(2, 1, 4, 3, 2)]
    public void Gru(int layers, int b, int t, int c, int h)
    {
        using var gru = new GruAggregator(c, h, layers, new Rng(6));
        var p = gru.NamedParameters().ToDictionary(x => x.Name, x => Get(x.Value));
        new GradCheck
        {
            Name = "gru", Shapes = [[b, t, c]], Op = x => gru.Forward(x[0]), MaxGradChecks = 60,
            Reference = x =>
            {
                var outp = new double[b * h];
                for (int n = 0; n < b; n++)
                {
                    var seq = Enumerable.Range(0, t).Select(s => x[0].Skip((n * t + s) * c).Take(c).ToArray()).ToArray();
                    var hs = new double[h];
                    for (int l = 0; l < layers; l++)
                    {
                        int inF = l == 0 ? c : h;
                        hs = new double[h];
                        var outs = new double[t][];
                        for (int s = 0; s < t; s++)
                        {
                            var gi = Affine(p[$"weight_ih_l{l}"], p[$"bias_ih_l{l}"], null, seq[s], 3 * h, inF);
                            var gh = Affine(p[$"weight_hh_l{l}"], p[$"bias_hh_l{l}"], null, hs, 3 * h, h);
                            var nh = new double[h];
                            for (int k = 0; k < h; k++)
                            {
                                double r = Sig(gi[k] + gh[k]), z = Sig(gi[h + k] + gh[h + k]);
                                double nn = Math.Tanh(gi[2 * h + k] + r * gh[2 * h + k]);
                                nh[k] = (1 - z) * nn + z * hs[k];
                            }
                            hs = nh;
                            outs[s] = nh;
                        }
                        seq = outs;
                    }
                    Array.Copy(hs, 0, outp, n * h, h);
                }
                return outp;
            },
        }.Run();
    }
}
