using MicroExpr.Models;
using MicroExpr.Tensors;

namespace MicroExpr.Tests.Models;

public class AttentionMapsTests
{
    /// <summary>Two layers, one head, three tokens, rolled out by hand.</summary>
    [Test]
    public void RolloutOfAHandBuiltStackEqualsTheHandComputation()
    {
        double[] a1 = [0.5, 0.25, 0.25, 0, 1, 0, 0.2, 0.2, 0.6];
        double[] a2 = [1, 0, 0, 0.5, 0.5, 0, 0, 0, 1];
        // Â = ½·A + ½·I (rows already sum to 1, so no renormalisation changes them):
        // Â1 = [[.75 .125 .125] [0 1 0] [.1 .1 .8]],  Â2 = [[1 0 0] [.25 .75 0] [0 0 1]]
        // R = Â2·Â1 = [[.75 .125 .125] [.1875 .78125 .03125] [.1 .1 .8]]
        double[] expected = [0.75, 0.125, 0.125, 0.1875, 0.78125, 0.03125, 0.1, 0.1, 0.8];
        var r = AttentionMaps.Rollout([a1, a2], heads: 1, n: 3);
        Assert.That(r, Is.EqualTo(expected).Within(1e-15));
        // Heads are averaged first: two heads whose mean is a1 give the same first layer.
        double[] h2 = [.. a1.Select(x => x + 0.1), .. a1.Select(x => x - 0.1)];
        Assert.That(AttentionMaps.Rollout([h2], 2, 3), Is.EqualTo(AttentionMaps.Rollout([a1], 1, 3)).Within(1e-15));
        // With no residual, one layer's rollout is its attention.
        Assert.That(AttentionMaps.Rollout([a1], 1, 3, residual: 0), Is.EqualTo(a1).Within(1e-15));
    }

    [Test]
    public void ViTMapsAreRowStochasticAndMatchTheBlocksOwnAttention()
    {
        var cfg = SlsttPresets.Tiny;
        using var model = new SlsttModel(cfg, new Rng(3));
        var rng = new Rng(5);
        var image = Tensor.FromArray(Enumerable.Range(0, 3 * cfg.ImageSize * cfg.ImageSize).Select(_ => (float)rng.NextNormal()).ToArray(), 1, 3, cfg.ImageSize, cfg.ImageSize);
        var maps = AttentionMaps.Of(model.Spatial, image);
        int n = (cfg.ImageSize / cfg.PatchSize) * (cfg.ImageSize / cfg.PatchSize) + 1;
        Assert.That(maps.Layers, Has.Count.EqualTo(cfg.Depth));
        Assert.That(maps.Tokens, Is.EqualTo(n));
        for (int l = 0; l < cfg.Depth; l++)
            for (int h = 0; h < cfg.Heads; h++)
                for (int i = 0; i < n; i++)
                    Assert.That(Enumerable.Range(0, n).Sum(j => maps[l, h, i, j]), Is.EqualTo(1).Within(1e-12));

        // The first block's attention applied to its v equals the fused attention's output, before proj.
        var block = model.Spatial.Blocks[0];
        using var _ = MicroExpr.Tensors.Autograd.GradMode.NoGrad();
        var x = Tensor.Concat(1, model.Spatial.ClsToken, model.Spatial.PatchEmbed.Forward(image)) + model.Spatial.PosEmbed;
        var qkvT = block.Attn.Qkv.Forward(block.Norm1.Forward(x));
        var qkv = qkvT.ToArray();
        var fused = Tensor.SelfAttention(qkvT, cfg.Heads).ToArray(); // [1, N, H·D]
        int d = cfg.Width / cfg.Heads, row = 3 * cfg.Width;
        for (int h = 0; h < cfg.Heads; h++)
            for (int i = 0; i < n; i++)
                for (int e = 0; e < d; e++)
                {
                    double o = 0;
                    for (int j = 0; j < n; j++) o += maps[0, h, i, j] * qkv[j * row + 2 * cfg.Width + h * d + e];
                    Assert.That(fused[i * cfg.Width + h * d + e], Is.EqualTo(o).Within(1e-5 + 1e-4 * Math.Abs(o)));
                }
        var rollout = maps.Rollout();
        for (int i = 0; i < n; i++) Assert.That(Enumerable.Range(0, n).Sum(j => rollout[i * n + j]), Is.EqualTo(1).Within(1e-12));
        Assert.That(maps.ClassTokenRow(0, 0), Has.Length.EqualTo(n - 1));
    }
}
