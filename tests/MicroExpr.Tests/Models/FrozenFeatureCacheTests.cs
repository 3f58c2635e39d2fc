using MicroExpr.Models;
using MicroExpr.Tensors;

namespace MicroExpr.Tests.Models;

/// <summary>
/// The frozen ViT's class-token cache (<see cref="FrozenFeatureCache"/>): with the ViT frozen, the cached forward gives the
/// full forward's logits and gradients, the second pass over the same frames computes no class token, and neither a
/// trainable ViT nor another model's weights ever read an entry.
/// </summary>
[NonParallelizable]
public class FrozenFeatureCacheTests
{
    static readonly SlsttConfig Cfg = SlsttPresets.Tiny with
    {
        ImageSize = 16, PatchSize = 8, Width = 8, Depth = 2, Heads = 2, MlpHidden = 16, TemporalHidden = 8, Classes = 3, HeadHidden = 0, // a linear head: no ReLU to go dead at this width
    };

    static SlsttModel Frozen(int seed)
    {
        var m = new SlsttModel(Cfg, new Rng((ulong)seed));
        foreach (var (name, p) in m.Spatial.NamedParameters())
            if (!name.StartsWith("norm.", StringComparison.Ordinal)) p.RequiresGrad = false;
        return m;
    }

    static float[] Clips(int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, 2 * 3 * 3 * 16 * 16).Select(_ => (float)rng.NextDouble()).ToArray();
    }

    /// <summary>Logits, then the gradients of Σ logits·w (w fixed) for the final LayerNorm, the LSTM's first weight and the head.</summary>
    static (float[] Logits, float[][] Grads) Step(SlsttModel m, float[] x)
    {
        m.ZeroGrad();
        using var scope = new TensorScope();
        var logits = m.Forward(Tensor.FromArray(x, 2, 3, 3, 16, 16));
        var w = Tensor.FromArray(Enumerable.Range(0, logits.Numel).Select(i => 0.3f + 0.1f * (i % 5)).ToArray(), logits.Shape);
        (logits * w).Sum().Backward();
        var watched = new[] { "spatial.norm.weight", "spatial.norm.bias", "temporal.weight_ih_l0", "head.weight", "spatial.blocks.0.attn.qkv.weight" };
        var byName = m.NamedParameters().ToDictionary(p => p.Name, p => p.Value);
        return (logits.ToArray(), watched.Select(n => byName[n].Grad?.ToArray() ?? []).ToArray());
    }

    static void Same((float[] Logits, float[][] Grads) a, (float[] Logits, float[][] Grads) b, string what)
    {
        for (int i = 0; i < a.Logits.Length; i++) Assert.That(b.Logits[i], Is.EqualTo(a.Logits[i]).Within(1e-5 + 1e-5 * Math.Abs(a.Logits[i])), $"{what}: logit {i}");
        for (int g = 0; g < a.Grads.Length; g++)
        {
            Assert.That(b.Grads[g], Has.Length.EqualTo(a.Grads[g].Length), $"{what}: gradient {g}");
            for (int i = 0; i < a.Grads[g].Length; i++)
                Assert.That(b.Grads[g][i], Is.EqualTo(a.Grads[g][i]).Within(1e-5 + 1e-4 * Math.Abs(a.Grads[g][i])), $"{what}: gradient {g}, element {i}");
        }
        Assert.That(a.Grads[^1].Any(g => g != 0), Is.False, $"{what}: the frozen ViT's blocks get no gradient");
        Assert.That(a.Grads[0].Any(g => g != 0), $"{what}: the final LayerNorm trains");
    }

    [TearDown]
    public void TearDown()
    {
        FrozenFeatureCache.Enabled = true;
        FrozenFeatureCache.Clear();
    }

    [Test]
    public void TheCachedForwardIsTheFullForwardAndTheSecondPassComputesNoClassToken()
    {
        var x = Clips(1);
        FrozenFeatureCache.Clear();
        FrozenFeatureCache.Enabled = false;
        using var reference = Frozen(4);
        var full = Step(reference, x);
        Assert.That(FrozenFeatureCache.Count, Is.Zero, "disabled: nothing stored");

        FrozenFeatureCache.Enabled = true;
        using var cached = Frozen(4);
        var first = Step(cached, x);
        Assert.That((FrozenFeatureCache.Misses, FrozenFeatureCache.Hits, FrozenFeatureCache.Count), Is.EqualTo((6L, 0L, 6)), "2 clips × 3 frames computed once");
        Same(full, first, "first pass");
        var second = Step(cached, x);
        Assert.That((FrozenFeatureCache.Misses, FrozenFeatureCache.Hits), Is.EqualTo((6L, 6L)), "every frame read from the cache");
        Same(full, second, "second pass");

        // A new model with the same pretrained (here: same-seed) weights, as the next fold: it reads the same entries.
        using var nextFold = Frozen(4);
        Same(full, Step(nextFold, x), "next fold");
        Assert.That(FrozenFeatureCache.Hits, Is.EqualTo(12));
    }

    [Test]
    public void ATrainableViTOrOtherWeightsNeverReadAnEntry()
    {
        var x = Clips(2);
        FrozenFeatureCache.Clear();
        using (var a = Frozen(7)) Step(a, x);
        Assert.That(FrozenFeatureCache.Count, Is.EqualTo(6));

        using var other = Frozen(8); // other weights: its own entries
        Step(other, x);
        Assert.That((FrozenFeatureCache.Hits, FrozenFeatureCache.Count), Is.EqualTo((0L, 12)));

        using var trainable = new SlsttModel(Cfg, new Rng(7)); // same weights as a, but the ViT trains
        var (_, grads) = Step(trainable, x);
        Assert.That((FrozenFeatureCache.Hits, FrozenFeatureCache.Misses, FrozenFeatureCache.Count), Is.EqualTo((0L, 12L, 12)), "not consulted");
        Assert.That(grads[^1].Any(g => g != 0), "the trainable ViT gets its gradients");
    }
}
