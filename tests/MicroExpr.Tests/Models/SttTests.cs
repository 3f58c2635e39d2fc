using MicroExpr.Models;
using MicroExpr.Nn;
using MicroExpr.Tensors;
using MicroExpr.Tensors.Autograd;

namespace MicroExpr.Tests.Models;

/// <summary>
/// STT on every backend: the temporal attention op against a double reference with finite differences, the joint block
/// (fused attention, strided layouts) against the same block composed of primitive ops, forward and backward, at T = 1
/// and T = 11, for both readings of "jointly".
/// </summary>
[TestFixture(typeof(OnCpu))]
[TestFixture(typeof(OnIlgpuCpu))]
public class SttBlockTests<TDevice> where TDevice : ITestDevice
{
    /// <summary>qkv [L, M, 3·H·D] → o [L, M, H·D]: per sequence m and head h, softmax over the L tokens.</summary>
    internal static double[] AcrossRef(double[] qkv, int l, int m, int heads, int d)
    {
        int c = heads * d;
        var o = new double[l * m * c];
        double scale = 1 / Math.Sqrt(d);
        double At(int t, int s, int part, int h, int e) => qkv[(t * m + s) * 3 * c + part * c + h * d + e];
        for (int s = 0; s < m; s++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < l; i++)
                {
                    var w = new double[l];
                    double mx = double.NegativeInfinity, sum = 0;
                    for (int j = 0; j < l; j++)
                    {
                        double dot = 0;
                        for (int e = 0; e < d; e++) dot += At(i, s, 0, h, e) * At(j, s, 1, h, e);
                        w[j] = dot * scale;
                        mx = Math.Max(mx, w[j]);
                    }
                    for (int j = 0; j < l; j++) { w[j] = Math.Exp(w[j] - mx); sum += w[j]; }
                    for (int e = 0; e < d; e++)
                    {
                        double acc = 0;
                        for (int j = 0; j < l; j++) acc += w[j] / sum * At(j, s, 2, h, e);
                        o[(i * m + s) * c + h * d + e] = acc;
                    }
                }
        return o;
    }

    // [L, M, 3·H·D], H: one frame (T = 1: softmax over one token); 11 frames of 6 positions, 2 heads of 5; 4 frames of 33
    // positions (past a 32-row tile), one head of 16.
    [TestCase(1, 4, 2, 3)]
    [TestCase(11, 6, 2, 5)]
    [TestCase(4, 33, 1, 16)]
    public void SelfAttentionAcrossMatchesADoubleReference(int l, int m, int heads, int d)
    {
        if (TDevice.Small && m > 8) Assert.Ignore("large case on the SIMD CPU only (ILGPU's CPU accelerator is slow)");
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "self_attention_across", Shapes = [[l, m, 3 * heads * d]],
            Op = t => Tensor.SelfAttentionAcross(t[0], heads),
            Reference = x => AcrossRef(x[0], l, m, heads, d),
            Init = (_, _, rng) => (float)(rng.NextDouble() * 4 - 2),
            MaxGradChecks = 150,
        }.Run();
    }

    [Test]
    public void OneFrameTemporalAttentionReturnsV()
    {
        const int m = 5, heads = 2, d = 4, c = heads * d;
        var data = Check.Random(m * 3 * c, 3);
        using var scope = new TensorScope();
        var o = Tensor.SelfAttentionAcross(Tensor.FromSpan(data, [1, m, 3 * c], TDevice.Device), heads).ToArray();
        for (int s = 0; s < m; s++)
            for (int j = 0; j < c; j++)
                Assert.That(o[s * c + j], Is.EqualTo(data[s * 3 * c + 2 * c + j]).Within(1e-6f), $"position {s}, column {j}");
    }

    // ---------------------------------------------------------------- the joint block against primitive ops

    private static Tensor LayerNormComposite(Tensor x, LayerNorm ln)
    {
        var mean = x.Mean([x.Rank - 1], keepDim: true);
        var centred = x - mean;
        var variance = (centred * centred).Mean([x.Rank - 1], keepDim: true);
        return centred / (variance + ln.Eps).Sqrt() * ln.Weight + ln.Bias;
    }

    private static Tensor LinearComposite(Tensor x, Linear l) => Tensor.MatMul(x, l.Weight, false, true) + l.Bias!;

    /// <summary>Attention over axis 1 of q, k, v [S, L, H, D] (S sequences of L tokens) by MatMul and Softmax → [S, L, H·D].</summary>
    private static Tensor AttentionComposite(Tensor qkv, int heads)
    {
        int s = qkv.Shape[0], l = qkv.Shape[1], c = qkv.Shape[2] / 3, d = c / heads;
        Tensor Part(int i) => qkv.Slice(2, i * c, c).Reshape(s, l, heads, d).Permute(0, 2, 1, 3);   // [S, H, L, D]
        var scores = Tensor.MatMul(Part(0), Part(1), false, true).Scale(1f / MathF.Sqrt(d));      // [S, H, L, L]
        var o = Tensor.MatMul(scores.Softmax(), Part(2));                                          // [S, H, L, D]
        return o.Permute(0, 2, 1, 3).Reshape(s, l, c);
    }

    /// <summary>The block of <see cref="SttBlock"/> written with primitive ops only (no fused attention, LayerNorm, GELU-linear).</summary>
    internal static Tensor BlockComposite(SttBlock blk, Tensor x, int heads)
    {
        int t = x.Shape[0], b = x.Shape[1], n = x.Shape[2], c = x.Shape[3];
        Tensor Spatial(Tensor v)  // v [T·B, N, C]
            => LinearComposite(AttentionComposite(LinearComposite(LayerNormComposite(v, blk.NormSpatial), blk.Spatial.Qkv), heads), blk.Spatial.Proj);
        Tensor Temporal(Tensor v) // v [T, B·N, C]: attend along T, so move it to axis 1 first
        {
            var qkv = LinearComposite(LayerNormComposite(v, blk.NormTemporal), blk.Temporal.Qkv).Permute(1, 0, 2); // [B·N, T, 3C]
            return LinearComposite(AttentionComposite(qkv, heads).Permute(1, 0, 2), blk.Temporal.Proj);              // [T, B·N, C]
        }
        var frames = x.Reshape(t * b, n, c);
        Tensor h;
        if (blk.Joint == SttJoint.Sequential)
        {
            var s = (frames + Spatial(frames)).Reshape(t, b * n, c);
            h = s + Temporal(s);
        }
        else
        {
            var flat = x.Reshape(t, b * n, c);
            h = flat + Spatial(frames).Reshape(t, b * n, c) + Temporal(flat);
        }
        var mlp = LinearComposite(LinearComposite(LayerNormComposite(h, blk.NormMlp), blk.Mlp.Fc1).Gelu(), blk.Mlp.Fc2);
        return (h + mlp).Reshape(t, b, n, c);
    }

    [TestCase(1, SttJoint.Sequential)]
    [TestCase(11, SttJoint.Sequential)]
    [TestCase(3, SttJoint.Parallel)]
    public void JointBlockMatchesItsCompositeForwardAndBackward(int t, SttJoint joint)
    {
        const int b = 2, n = 5, c = 12, heads = 2, hidden = 20;
        var rng = new Rng(11);
        using var block = new SttBlock(c, heads, hidden, joint, rng, initStd: 0.3f);
        foreach (var p in block.Parameters())
        {
            var v = p.ToArray();
            for (int i = 0; i < v.Length; i++) v[i] += (float)(0.1 * rng.NextNormal());
            p.Backend.Upload(p.Storage, v);
        }
        block.To(TDevice.Device);
        var xs = Enumerable.Range(0, t * b * n * c).Select(_ => (float)rng.NextNormal()).ToArray();
        var gs = Enumerable.Range(0, t * b * n * c).Select(_ => (float)rng.NextNormal()).ToArray();

        (float[] Y, float[] Dx, Dictionary<string, float[]> Dp) Run(Func<Tensor, Tensor> f)
        {
            using var scope = new TensorScope();
            var x = Tensor.FromSpan(xs, [t, b, n, c], TDevice.Device);
            x.RequiresGrad = true;
            var y = f(x);
            (y * Tensor.FromSpan(gs, y.Shape, TDevice.Device)).Sum().Backward();
            var dp = block.NamedParameters().ToDictionary(p => p.Name, p => p.Value.Grad!.ToArray());
            var dx = x.Grad!.ToArray();
            var yv = y.ToArray();
            block.ZeroGrad();
            x.ZeroGrad();
            return (yv, dx, dp);
        }
        var fused = Run(block.Forward);
        var composite = Run(x => BlockComposite(block, x, heads));
        var want = composite.Y.Select(v => (double)v).ToArray();
        Check.Close(fused.Y, want, 1e-5, 1e-4, $"block forward T={t}");
        Check.Close(fused.Dx, composite.Dx.Select(v => (double)v).ToArray(), 2e-5, 2e-4, $"block d/dx T={t}");
        foreach (var (name, g) in composite.Dp)
            Check.Close(fused.Dp[name], g.Select(v => (double)v).ToArray(), 2e-5, 2e-4, $"block d/d{name} T={t}");
    }

    [Test]
    public void TemporalAttentionMixesFramesOnlyWhenThereAreSeveral()
    {
        const int t = 11, b = 1, n = 3, c = 8;
        using var block = new SttBlock(c, 2, 16, SttJoint.Sequential, new Rng(4), initStd: 0.3f);
        block.To(TDevice.Device);
        var xs = Check.Random(t * b * n * c, 9);
        float[] Out(float[] input)
        {
            using var scope = new TensorScope();
            using var noGrad = GradMode.NoGrad();
            return block.Forward(Tensor.FromSpan(input, [t, b, n, c], TDevice.Device)).ToArray();
        }
        var y0 = Out(xs);
        var changed = (float[])xs.Clone();
        var noise = Check.Random(n * c, 10);
        for (int j = 0; j < n * c; j++) changed[5 * n * c + j] += noise[j]; // frame 5 only (not a constant shift: LayerNorm removes that)
        var y1 = Out(changed);
        double frame0 = Enumerable.Range(0, n * c).Max(j => Math.Abs(y1[j] - y0[j]));
        Assert.That(frame0, Is.GreaterThan(1e-4), "a change in frame 5 reaches frame 0 through temporal attention");
    }
}

/// <summary>The STT model and its loss on the SIMD CPU: shapes, the compact softmax CE's gradient, checkpoints.</summary>
public class SttModelTests
{
    private static SttConfig Small => SttPresets.Tiny with { ImageSize = 16, PatchSize = 8, Width = 16, Heads = 2, MlpHidden = 24 };

    [TestCase(1)]
    [TestCase(11)]
    public void ForwardGivesLogitsAndFeatures(int t)
    {
        using var model = new SttModel(Small, new Rng(1));
        using var scope = new TensorScope();
        var x = Tensor.RandN([2, t, 3, 16, 16], new Rng(2));
        var output = model.Forward(ModelBatch.Of(InputKind.MotionFrames, x));
        Assert.That(output.Logits.Shape, Is.EqualTo(new[] { 2, 3 }));
        Assert.That(output.Get(ModelOutput.Features).Shape, Is.EqualTo(new[] { 2, 16 }));
        Assert.That(output.Logits.ToArray().All(float.IsFinite));
        var loss = model.CreateLoss(new Rng(3));
        Assert.That(loss, Is.TypeOf<CompactSoftmaxLoss>());
        Assert.That(loss.Forward(output, ModelBatch.Of(InputKind.MotionFrames, x), [0, 2]).Item(), Is.GreaterThan(0f));
        loss.Dispose();
    }

    [Test]
    public void ForwardRefusesTooManyFramesAndWrongInputs()
    {
        using var model = new SttModel(Small with { MaxFrames = 4 }, new Rng(1));
        using var scope = new TensorScope();
        var ex = Assert.Throws<ShapeException>(() => model.Forward(Tensor.RandN([1, 5, 3, 16, 16], new Rng(2))))!;
        Assert.That(ex.Message, Does.Contain("5 frames").And.Contain("4"));
        var missing = Assert.Throws<ArgumentException>(() => model.Forward(ModelBatch.Of(InputKind.RgbFrames, Tensor.Zeros(1, 2, 3, 16, 16))))!;
        Assert.That(missing.Message, Does.Contain("motion frames"));
    }

    /// <summary>CE + λ·(1/B)Σ ½‖f − c_y‖² / (Σ_{j≠y}‖f − c_j‖² + δ) in double precision.</summary>
    private static double[] CompactRef(double[] logits, double[] f, double[] centres, int[] y, int k, int c, double lambda, double delta)
    {
        int b = y.Length;
        double ce = 0, comp = 0;
        for (int i = 0; i < b; i++)
        {
            double mx = double.NegativeInfinity, sum = 0;
            for (int j = 0; j < k; j++) mx = Math.Max(mx, logits[i * k + j]);
            for (int j = 0; j < k; j++) sum += Math.Exp(logits[i * k + j] - mx);
            ce -= logits[i * k + y[i]] - mx - Math.Log(sum);
            double pull = 0, push = 0;
            for (int j = 0; j < k; j++)
            {
                double d2 = 0;
                for (int e = 0; e < c; e++) d2 += (f[i * c + e] - centres[j * c + e]) * (f[i * c + e] - centres[j * c + e]);
                if (j == y[i]) pull = d2; else push += d2;
            }
            comp += 0.5 * pull / (push + delta);
        }
        return [ce / b + lambda * comp / b];
    }

    [TestCase(0.01f)]
    [TestCase(0.5f)]
    public void CompactSoftmaxLossMatchesItsFormulaAndFiniteDifferences(float lambda)
    {
        const int b = 5, k = 3, c = 4;
        int[] y = [0, 2, 1, 2, 0];
        new GradCheck
        {
            Name = "compact_softmax", Shapes = [[b, k], [b, c], [k, c]],
            Op = t => Tensor.CrossEntropy(t[0], y) + CompactSoftmaxLoss.Compactness(t[1], t[2], y, 1e-6f).Scale(lambda),
            Reference = x => CompactRef(x[0], x[1], x[2], y, k, c, lambda, 1e-6),
            GradAtol = 1e-4, GradRtol = 2e-3,
        }.Run();
    }

    [Test]
    public void TheLossModuleUsesItsCentresAndTrainsThem()
    {
        using var loss = new CompactSoftmaxLoss(3, 4, new Rng(5), lambda: 0.5f);
        using var scope = new TensorScope();
        var logits = Tensor.RandN([2, 3], new Rng(6));
        var f = Tensor.RandN([2, 4], new Rng(7));
        var l = loss.Forward(new ModelOutput(logits, new Dictionary<string, Tensor> { [ModelOutput.Features] = f }), ModelBatch.Of(InputKind.MotionFrames, f), [1, 0]);
        var want = CompactRef(logits.ToArray().Select(v => (double)v).ToArray(), f.ToArray().Select(v => (double)v).ToArray(),
            loss.Centres.ToArray().Select(v => (double)v).ToArray(), [1, 0], 3, 4, 0.5, 1e-6)[0];
        Assert.That(l.Item(), Is.EqualTo(want).Within(1e-5 + 1e-4 * Math.Abs(want)));
        l.Backward();
        Assert.That(loss.Centres.Grad, Is.Not.Null, "the centres get a gradient");
        Assert.That(loss.Centres.Grad!.ToArray().Any(v => v != 0f));
        loss.ZeroGrad();
    }

    [Test]
    public void CheckpointRoundTripRebuildsTheSameModel()
    {
        string dir = Directory.CreateTempSubdirectory("stt-ckpt").FullName;
        try
        {
            string path = Path.Combine(dir, "model.safetensors");
            using var a = new SttModel(Small with { Joint = SttJoint.Parallel }, new Rng(1));
            Weights.Save(a, path);
            Assert.That(Weights.ReadConfig(path), Is.EqualTo(a.Config));
            using var b = Weights.LoadModel(path);
            Assert.That(b, Is.TypeOf<SttModel>());
            using var scope = new TensorScope();
            using var noGrad = GradMode.NoGrad();
            var x = ModelBatch.Of(InputKind.MotionFrames, Tensor.RandN([2, 3, 3, 16, 16], new Rng(2)));
            Assert.That(b.Forward(x).Logits.ToArray(), Is.EqualTo(a.Forward(x).Logits.ToArray()));

            // A checkpoint of another family or shape is refused with the differing fields named.
            using var other = new SttModel(Small with { Depth = 3 }, new Rng(1));
            var ex = Assert.Throws<InvalidDataException>(() => Weights.Load(other, path))!;
            Assert.That(ex.Message, Does.Contain("depth: 2 vs 3").And.Contain("joint"));
            using var slstt = new SlsttModel(SlsttPresets.Tiny, new Rng(1));
            var fam = Assert.Throws<InvalidDataException>(() => Weights.Load(slstt, path))!;
            Assert.That(fam.Message, Does.Contain("family: stt vs slstt"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Test]
    public void SttR18TokenisesRgbFramesWithATruncatedResNetAndRoundTripsItsBuffers()
    {
        // layer3 of ResNet-18 at 32 px: stride 16, a 2×2 grid of 256 channels → 4 tokens + class token.
        var cfg = SttPresets.R18 with { ImageSize = 32, Width = 16, Depth = 1, Heads = 2, MlpHidden = 24 };
        using var model = (SttModel)ModelRegistry.Create(cfg, new Rng(1));
        var tok = (ResNetTokenizer)model.Tokenizer;
        Assert.That((tok.Backbone.Layers.Length, tok.Backbone.OutChannels, tok.Tokens), Is.EqualTo((3, 256, 4)));
        Assert.That(model.NamedState().Any(s => s.Name.EndsWith("running_mean", StringComparison.Ordinal)), "BatchNorm buffers are part of the state");
        using var scope = new TensorScope();
        var x = ModelBatch.Of(InputKind.RgbFrames, Tensor.RandN([2, 3, 3, 32, 32], new Rng(2)));
        var train = model.Forward(x);
        Assert.That(train.Logits.Shape, Is.EqualTo(new[] { 2, 3 }));
        string dir = Directory.CreateTempSubdirectory("stt-r18").FullName;
        try
        {
            string path = Path.Combine(dir, "m.safetensors");
            Weights.Save(model, path);   // after a training-mode forward: the running statistics have moved off their start
            using var back = Weights.LoadModel(path);
            model.Training = false;
            back.Training = false;
            using var noGrad = GradMode.NoGrad();
            Assert.That(back.Forward(x).Logits.ToArray(), Is.EqualTo(model.Forward(x).Logits.ToArray()));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Test]
    public void TheRegistryKnowsEveryPresetAndRefusesUnknownOnes()
    {
        Assert.That(ModelRegistry.Names, Is.SupersetOf(new[] { "slstt-tiny", "slstt-bench", "slstt-b16", "stt-tiny", "stt-r18" }));
        Assert.That(ModelRegistry.Preset("stt-tiny"), Is.EqualTo(SttPresets.Tiny));
        var ex = Assert.Throws<ArgumentException>(() => ModelRegistry.Preset("vit-huge"))!;
        Assert.That(ex.Message, Does.Contain("vit-huge").And.Contain("stt-tiny"));
    }

    [Test]
    public void ACacheWithoutTheModelsInputIsRefusedByName()
    {
        var motionOnly = new DataShape(3, [new InputShape(InputKind.MotionFrames, 4, 3, 32)], "cacheX");
        var ex = Assert.Throws<InvalidDataException>(() => SttPresets.R18.ForData(motionOnly))!;
        Assert.That(ex.Message, Does.Contain("cacheX").And.Contain("stt-r18").And.Contain("RGB face frames").And.Contain("motion frames"));
        var fitted = (SttConfig)SttPresets.Tiny.ForData(new DataShape(5, [new InputShape(InputKind.MotionFrames, 20, 3, 24)], "c"));
        Assert.That((fitted.ImageSize, fitted.Classes, fitted.MaxFrames), Is.EqualTo((24, 5, 20)));
        var bad = Assert.Throws<InvalidDataException>(() => SttPresets.Tiny.ForData(new DataShape(3, [new InputShape(InputKind.MotionFrames, 4, 3, 20)], "c")))!;
        Assert.That(bad.Message, Does.Contain("patch size 8"));
    }
}
