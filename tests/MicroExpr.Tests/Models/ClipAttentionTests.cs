using MicroExpr.Models;
using MicroExpr.Tensors;

namespace MicroExpr.Tests.Models;

/// <summary>
/// <see cref="IAttentionModel.Attention"/> for SLSTT (ViT per frame + temporal transformer) and STT (spatial and temporal
/// attention in joint blocks): every map is row-stochastic, the maps are the blocks' own attention (P·V equals the fused
/// kernel's output), the rollout is the product of the paper's Â matrices, and the weights over frames sum as documented.
/// </summary>
public class ClipAttentionTests
{
    static Tensor Clip(int t, int s, int seed)
    {
        var rng = new Rng((ulong)seed);
        return Tensor.FromArray(Enumerable.Range(0, t * 3 * s * s).Select(_ => (float)rng.NextNormal()).ToArray(), 1, t, 3, s, s);
    }

    static void RowStochastic(AttentionMaps maps, string what)
    {
        int n = maps.Tokens;
        for (int l = 0; l < maps.Layers.Count; l++)
            for (int h = 0; h < maps.Heads; h++)
                for (int i = 0; i < n; i++)
                {
                    Assert.That(Enumerable.Range(0, n).Sum(j => maps[l, h, i, j]), Is.EqualTo(1).Within(1e-12), $"{what} layer {l} head {h} row {i}");
                    Assert.That(Enumerable.Range(0, n).Min(j => maps[l, h, i, j]), Is.GreaterThanOrEqualTo(0));
                }
    }

    /// <summary>The rollout computed here, independently: R = Π_l normalise(½·mean_h P_l + ½·I), newest layer on the left.</summary>
    static double[] HandRollout(AttentionMaps maps)
    {
        int n = maps.Tokens;
        var r = new double[n, n];
        for (int i = 0; i < n; i++) r[i, i] = 1;
        for (int l = 0; l < maps.Layers.Count; l++)
        {
            var a = new double[n, n];
            for (int i = 0; i < n; i++)
            {
                for (int j = 0; j < n; j++) a[i, j] = 0.5 * Enumerable.Range(0, maps.Heads).Average(h => maps[l, h, i, j]) + (i == j ? 0.5 : 0);
                double sum = Enumerable.Range(0, n).Sum(j => a[i, j]);
                for (int j = 0; j < n; j++) a[i, j] /= sum;
            }
            var next = new double[n, n];
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                    for (int k = 0; k < n; k++) next[i, j] += a[i, k] * r[k, j];
            r = next;
        }
        return Enumerable.Range(0, n * n).Select(x => r[x / n, x % n]).ToArray();
    }

    [Test]
    public void SlsttWithATemporalTransformerGivesSpatialAndTemporalMaps()
    {
        var cfg = SlsttPresets.Tiny with { Temporal = TemporalKind.Transformer, TemporalLayers = 2 };
        using var model = new SlsttModel(cfg, new Rng(4));
        int t = 3;
        var att = model.Attention(new ModelBatch(new Dictionary<InputKind, Tensor> { [InputKind.MotionFrames] = Clip(t, cfg.ImageSize, 8) }));
        Assert.That(att.Frames, Is.EqualTo(t));
        Assert.That(att.Grid, Is.EqualTo(cfg.ImageSize / cfg.PatchSize));
        Assert.That((att.Layers, att.Heads), Is.EqualTo((cfg.Depth, cfg.Heads)));
        for (int f = 0; f < t; f++)
        {
            RowStochastic(att.Spatial[f], $"frame {f}");
            Assert.That(att.Spatial[f].Rollout(), Is.EqualTo(HandRollout(att.Spatial[f])).Within(1e-12));
            Assert.That(att.Spatial[f].ClassTokenRollout(), Is.EqualTo(HandRollout(att.Spatial[f])[1..att.Spatial[f].Tokens]).Within(1e-12));
        }
        Assert.That(att.Spatial[0].Layers[0], Is.Not.EqualTo(att.Spatial[1].Layers[0]), "each frame has its own maps");
        var temporal = att.Temporal!;
        Assert.That((temporal.Tokens, temporal.Layers.Count), Is.EqualTo((t + 1, 2)));
        RowStochastic(temporal, "temporal");
        for (int l = -1; l < 2; l++)
        {
            var w = att.TemporalWeights(l);
            Assert.That(w, Has.Length.EqualTo(t));
            double self = l < 0 ? temporal.Rollout()[0] : Enumerable.Range(0, cfg.TemporalHeads).Average(h => temporal[l, h, 0, 0]);
            Assert.That(w.Sum() + self, Is.EqualTo(1).Within(1e-12), "the class token's row over the frames plus its share on itself");
        }
    }

    [Test]
    public void AnLstmSlsttHasNoTemporalMaps()
    {
        using var model = new SlsttModel(SlsttPresets.Tiny, new Rng(4));
        var att = model.Attention(new ModelBatch(new Dictionary<InputKind, Tensor> { [InputKind.MotionFrames] = Clip(2, 32, 9) }));
        Assert.That(att.Temporal, Is.Null);
        Assert.Throws<InvalidOperationException>(() => att.TemporalWeights(0));
    }

    [Test]
    public void SttMapsAreItsBlocksOwnSpatialAndTemporalAttention()
    {
        var cfg = SttPresets.Tiny with { ImageSize = 16, PatchSize = 8 };
        using var model = new SttModel(cfg, new Rng(6));
        int t = 3, s = cfg.ImageSize, c = cfg.Width, h = cfg.Heads, d = c / h;
        var clip = Clip(t, s, 10);
        var att = model.Attention(new ModelBatch(new Dictionary<InputKind, Tensor> { [InputKind.MotionFrames] = clip }));
        int n = att.Grid * att.Grid + 1;
        Assert.That((att.Frames, att.Grid, att.Layers, att.Temporal!.Tokens), Is.EqualTo((t, 2, cfg.Depth, t)));
        foreach (var f in att.Spatial) RowStochastic(f, "spatial");
        RowStochastic(att.Temporal, "temporal");
        for (int l = -1; l < cfg.Depth; l++) Assert.That(att.TemporalWeights(l).Sum(), Is.EqualTo(1).Within(1e-12), "column means of a row-stochastic matrix");

        // Block 0, recomputed here: its spatial P applied to v equals the fused self-attention; its temporal P at the class
        // position applied to v equals the fused attention across frames.
        using var _ = MicroExpr.Tensors.Autograd.GradMode.NoGrad();
        var tokens = model.Tokenizer.Forward(clip.Reshape(t, 3, s, s));
        var x = Tensor.Concat(2, model.ClsToken.BroadcastTo(t, 1, 1, c), tokens.Reshape(t, 1, n - 1, c)) + model.PosSpatial + model.PosTemporal.Slice(0, 0, t);
        var block = model.Blocks[0];
        var frames = x.Reshape(t, n, c);
        var qkvT = block.Spatial.Qkv.Forward(block.NormSpatial.Forward(frames));
        var qkv = qkvT.ToArray();
        var fused = Tensor.SelfAttention(qkvT, h).ToArray();                      // [T, N, C]
        for (int f = 0; f < t; f++)
            for (int hh = 0; hh < h; hh++)
                for (int i = 0; i < n; i++)
                    for (int e = 0; e < d; e++)
                    {
                        double o = 0;
                        for (int j = 0; j < n; j++) o += att.Spatial[f][0, hh, i, j] * qkv[(f * n + j) * 3 * c + 2 * c + hh * d + e];
                        Assert.That(fused[(f * n + i) * c + hh * d + e], Is.EqualTo(o).Within(1e-5 + 1e-4 * Math.Abs(o)), $"spatial frame {f} head {hh} row {i}");
                    }
        var sIn = block.Spatial.Forward(block.NormSpatial.Forward(frames), residual: frames);
        var tqT = block.Temporal.Qkv.Forward(block.NormTemporal.Forward(sIn)).Reshape(t, n, 3 * c);
        var tq = tqT.ToArray();
        var fusedT = Tensor.SelfAttentionAcross(tqT, h).ToArray();                // [T, N, C], attention along T
        for (int f = 0; f < t; f++)
            for (int hh = 0; hh < h; hh++)
                for (int e = 0; e < d; e++)
                {
                    double o = 0;
                    for (int g = 0; g < t; g++) o += att.Temporal[0, hh, f, g] * tq[(g * n + 0) * 3 * c + 2 * c + hh * d + e];
                    Assert.That(fusedT[(f * n + 0) * c + hh * d + e], Is.EqualTo(o).Within(1e-5 + 1e-4 * Math.Abs(o)), $"temporal frame {f} head {hh}");
                }
    }

    [Test]
    public void ABatchOfTwoClipsIsRefused()
    {
        using var model = new SlsttModel(SlsttPresets.Tiny, new Rng(4));
        var two = Tensor.Zeros(2, 2, 3, 32, 32);
        var ex = Assert.Throws<ShapeException>(() => model.Attention(new ModelBatch(new Dictionary<InputKind, Tensor> { [InputKind.MotionFrames] = two })));
        Assert.That(ex!.Message, Does.Contain("slstt-tiny: attention maps take one clip [1, T, C, S, S], got [2, 2, 3, 32, 32]"));
    }
}
