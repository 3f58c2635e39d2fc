using MicroExpr.Models;
using MicroExpr.Nn;
using MicroExpr.Tensors;
using MicroExpr.Tensors.Autograd;
using MicroExpr.Training;

namespace MicroExpr.Tests.Models;

/// <summary>
/// FDP (papers.md §3, the released CYF-cuber/FDP): the parameter count of the released preset against a count written
/// from the released layer list, the rank scorer's un-permuted reshape against a hand-built Conv3d, the SegNet decoder's
/// pooling-index and unpooling path against a double reference, the joint loss by finite differences, a checkpoint round
/// trip with the input statistics.
/// </summary>
public class FdpModelTests
{
    private static double[] D(float[] a) => a.Select(v => (double)v).ToArray();

    /// <summary>The parameters of the released FDP written out layer by layer from fdp.py (not from our modules).</summary>
    private static long ReleasedCount(FdpConfig c)
    {
        long n = 0;
        long Conv(long cin, long cout, long k, bool bias) => cin * cout * k * k + (bias ? cout : 0);
        int[] sc = c.StemChannels;
        n += Conv(1, sc[0], 3, false) + Conv(sc[0], sc[1], 3, false) + Conv(sc[1], sc[2], 3, false) + Conv(sc[2], sc[2], 3, false);
        n += 2L * (sc[0] + sc[1] + sc[2] + sc[2]);                                          // BN γ, β
        long ch = sc[2];
        for (int s = 0; s < c.Depths.Length; s++)
            for (int j = 0; j < c.Depths[s]; j++)
            {
                long w = c.Widths[s];
                bool stride2 = s > 0 && j == 0;
                if (stride2 || ch != w) n += Conv(ch, w, 1, false) + 2 * w;                 // PatchEmbed conv + BN
                n += Conv(w, w, 3, false);                                                 // MHCA (a full 3×3 conv)
                n += 2 * w;                                                                // norm
                long h = LfaBlock.MakeDivisible((int)w * c.MlpRatio, 32);
                n += Conv(w, h, 1, true) + Conv(h, w, 1, true);                            // MLP
                ch = w;
            }
        n += 2 * ch + ch * c.FeatureDim + c.FeatureDim;                                    // BN(768), Linear 768 → 4096
        n += 1L * c.RankChannels * 3 * 3 * FdpConfig.ClipFrames + c.RankChannels;          // Conv3d 1 → 8, (3, 3, 8)
        long pooled = (long)c.RankChannels * (c.ImageSize / 3) * (c.ImageSize / 3);
        n += pooled * c.HeadHidden + c.HeadHidden + (long)c.HeadHidden * c.Classes + c.Classes;
        long cin = c.RankChannels;
        for (int k = 0; k < c.DecoderWidths.Length; k++)                                     // SegNet encoder
            for (int j = 0; j < c.DecoderDepths[k]; j++)
            {
                n += Conv(cin, c.DecoderWidths[k], 3, true) + 2L * c.DecoderWidths[k];
                cin = c.DecoderWidths[k];
            }
        for (int k = c.DecoderWidths.Length - 1; k >= 0; k--)                                // SegNet decoder
            for (int j = c.DecoderDepths[k] - 1; j >= 0; j--)
            {
                long cout = j > 0 ? c.DecoderWidths[k] : k > 0 ? c.DecoderWidths[k - 1] : 1;
                n += Conv(c.DecoderWidths[k], cout, 3, true) + (k == 0 && j == 0 ? 0 : 2 * cout);
            }
        return n;
    }

    [Test]
    public void TheReleasedPresetHasTheReleasedParameterCount()
    {
        var cfg = FdpPresets.Released;
        using var model = new FdpModel(cfg, new Rng(1));
        long count = model.ParameterCount();
        using var tiny = new FdpModel(FdpPresets.Tiny, new Rng(1));
        TestContext.Out.WriteLine($"fdp: {count:N0} parameters (3 classes); fdp-tiny: {tiny.ParameterCount():N0}");
        Assert.That(count, Is.EqualTo(ReleasedCount(cfg)));
        Assert.That(count, Is.InRange(80_000_000L, 90_000_000L), "papers.md: about 85 M");
        // The released head: 8·21·21 = 3528 inputs; MLP hidden widths 288, 576, 1152, 2304; the GFA blocks are never built.
        Assert.That(model.Scorer.Fc1.Weight.Shape, Is.EqualTo(new[] { 256, 3528 }));
        Assert.That(model.Encoder.Blocks.Select(b => b.Mlp.Conv1.OutChannels).Distinct(), Is.EqualTo(new[] { 288, 576, 1152, 2304 }));
        Assert.That(model.Encoder.Blocks, Has.Length.EqualTo(20));
        Assert.That(model.Encoder.Blocks[^1].DropMlp.P, Is.EqualTo(0.1f).Within(1e-7f));
        Assert.That(model.Encoder.Blocks[0].DropMlp.P, Is.EqualTo(0f));
        Assert.That(model.NamedParameters().Select(p => p.Name), Does.Contain("frame_rep.features.3.patch_embed.conv.weight")
            .And.Contain("mer.conv3d.weight").And.Contain("dyimg_net.conv53d.weight").And.Contain("dyimg_net.conv11d.bias")
            .And.Not.Contain("dyimg_net.bn11d.weight"));
        Assert.That(ReleasedCount(FdpPresets.Tiny), Is.EqualTo(tiny.ParameterCount()));
    }

    /// <summary>
    /// R[b, o, d, h] = bias[o] + Σ w[o, 0, kd, kh, kw]·G[b, d + kd − 1, h + kh − 1, kw], where G is built cell by cell from
    /// the frame features: frame t's feature f goes to the cell whose row-major index in [S, S, 8] is t·F + f.
    /// </summary>
    private static double[] RankRef(double[] feats, double[] w, double[] bias, int b, int s, int outC)
    {
        const int t = 8;
        int f = s * s;
        var g = new double[b * s * s * 8];
        for (int bi = 0; bi < b; bi++)
            for (int ti = 0; ti < t; ti++)
                for (int fi = 0; fi < f; fi++)
                {
                    int flat = ti * f + fi, d = flat / (8 * s), h = flat / 8 % s, wi = flat % 8;
                    g[((bi * s + d) * s + h) * 8 + wi] = feats[(bi * t + ti) * f + fi];
                }
        var r = new double[b * outC * s * s];
        for (int bi = 0; bi < b; bi++)
            for (int o = 0; o < outC; o++)
                for (int d = 0; d < s; d++)
                    for (int h = 0; h < s; h++)
                    {
                        double acc = bias[o];
                        for (int kd = 0; kd < 3; kd++)
                            for (int kh = 0; kh < 3; kh++)
                            {
                                int dd = d + kd - 1, hh = h + kh - 1;
                                if (dd < 0 || dd >= s || hh < 0 || hh >= s) continue;
                                for (int kw = 0; kw < 8; kw++)
                                    acc += w[((o * 3 + kd) * 3 + kh) * 8 + kw] * g[((bi * s + dd) * s + hh) * 8 + kw];
                            }
                        r[((bi * outC + o) * s + d) * s + h] = acc;
                    }
        return r;
    }

    [TestCase(16)]
    [TestCase(32)]
    public void TheRankScorerConvolvesTheUnpermutedReshape(int s)
    {
        var cfg = FdpPresets.Tiny with { ImageSize = s };
        using var scorer = new FdpRankScorer(cfg, new Rng(4));
        var w = D(scorer.Conv3d.Weight.ToArray());
        var bias = D(scorer.Conv3d.Bias!.ToArray());
        new GradCheck
        {
            Name = "fdp_rank_scorer", Shapes = [[2, 8, s * s]],
            Op = x => scorer.Scores(x[0]),
            Reference = x => RankRef(x[0], w, bias, 2, s, cfg.RankChannels),
            MaxGradChecks = 60,
        }.Run();

        // The 8-wide kernel axis spans one frame's features: frame 0 fills the first S/8 rows of D, so a change to it
        // reaches only rows < S/8 + 1 (the 3-row kernel's reach), never the last frame's rows.
        using var scope = new TensorScope();
        using var noGrad = GradMode.NoGrad();
        var a = Check.Random(2 * 8 * s * s, 5);
        var changed = (float[])a.Clone();
        for (int i = 0; i < s * s; i++) changed[i] += 1f;
        var ra = scorer.Scores(Tensor.FromSpan(a, [2, 8, s * s], Device.Cpu)).ToArray();
        var rb = scorer.Scores(Tensor.FromSpan(changed, [2, 8, s * s], Device.Cpu)).ToArray();
        int lastTouched = -1;
        for (int i = 0; i < ra.Length; i++)
            if (ra[i] != rb[i]) lastTouched = Math.Max(lastTouched, i / s % s);
        Assert.That(lastTouched, Is.EqualTo(s / 8), "frame 0's rows and the one row the kernel reaches past them");
    }

    /// <summary>
    /// The paper's reading (<see cref="FdpRankLayout.Temporal"/>): the Conv3d sees the features over (D, H) and the 8 frames
    /// over W, i.e. the released reference applied to the [B, F, 8] transpose; a change to frame 0 alone reaches every
    /// output row, since every output's 8-wide kernel spans all frames.
    /// </summary>
    [TestCase(16)]
    [TestCase(32)]
    public void TheTemporalRankLayoutPutsTheFramesOnTheKernelsWideAxis(int s)
    {
        var cfg = FdpPresets.Tiny with { ImageSize = s, RankLayout = FdpRankLayout.Temporal };
        using var scorer = new FdpRankScorer(cfg, new Rng(4));
        var w = D(scorer.Conv3d.Weight.ToArray());
        var bias = D(scorer.Conv3d.Bias!.ToArray());
        int f = s * s;
        double[] Transposed(double[] x)
        {
            var t = new double[x.Length];
            for (int b = 0; b < 2; b++)
                for (int fr = 0; fr < 8; fr++)
                    for (int k = 0; k < f; k++) t[b * 8 * f + k * 8 + fr] = x[b * 8 * f + fr * f + k];
            return t;
        }
        new GradCheck
        {
            Name = "fdp_rank_scorer_temporal", Shapes = [[2, 8, f]],
            Op = x => scorer.Scores(x[0]),
            Reference = x => RankRef(Transposed(x[0]), w, bias, 2, s, cfg.RankChannels),
            MaxGradChecks = 60,
        }.Run();

        using var scope = new TensorScope();
        using var noGrad = GradMode.NoGrad();
        var a = Check.Random(2 * 8 * f, 5);
        var changed = (float[])a.Clone();
        for (int i = 0; i < f; i++) changed[i] += 1f;
        var ra = scorer.Scores(Tensor.FromSpan(a, [2, 8, f], Device.Cpu)).ToArray();
        var rb = scorer.Scores(Tensor.FromSpan(changed, [2, 8, f], Device.Cpu)).ToArray();
        var rows = Enumerable.Range(0, s * cfg.RankChannels).Where(r => Enumerable.Range(0, s).Any(h => ra[r * s + h] != rb[r * s + h])).Count();
        Assert.That(rows, Is.EqualTo(s * cfg.RankChannels), "frame 0 reaches every row of D of every channel of clip 0");
    }

    /// <summary>
    /// SegNet in eval mode in double: conv (bias) → BN (running statistics) → ReLU per unit, 2×2 max pool with indices per
    /// stage; then per stage from the deepest, unpooling (each value back at its index, zeros elsewhere) and the mirrored
    /// units, the last conv without BN or ReLU.
    /// </summary>
    private static double[] SegNetRef(double[] x, Dictionary<string, double[]> p, int n, int cin, int s, int[] widths, int[] depths)
    {
        int c = cin, size = s;
        double[] Unit(double[] input, string name, int ci, int co, bool bnRelu)
        {
            var g = ConvGeometry.Create2d(n, ci, co, 1, size, size, 3, 3, 1, 1, 1, 1, 1, 1);
            var y = new double[g.YLength];
            ConvReference.Forward<double>(y, input, p["conv" + name + ".weight"], p["conv" + name + ".bias"], g, false);
            if (!bnRelu) return y;
            var z = new double[y.Length];
            BatchNormReference.Apply(z, y, p["bn" + name + ".running_mean"], p["bn" + name + ".running_var"], p["bn" + name + ".weight"],
                p["bn" + name + ".bias"], n, co, size * size, 1e-5f);
            return z.Select(v => Math.Max(0, v)).ToArray();
        }
        var idx = new int[widths.Length][];
        for (int k = 0; k < widths.Length; k++)
        {
            for (int j = 0; j < depths[k]; j++) { x = Unit(x, $"{k + 1}{j + 1}", j == 0 ? c : widths[k], widths[k], true); }
            c = widths[k];
            var pg = new PoolGeometry { Planes = n * c, D = 1, H = size, W = size, Do = 1, Ho = size / 2, Wo = size / 2, Kd = 1, Kh = 2, Kw = 2, Sd = 1, Sh = 2, Sw = 2 };
            var pooled = new double[n * c * size * size / 4];
            idx[k] = new int[pooled.Length];
            PoolReference.MaxPool(pooled, idx[k], x, pg);
            x = pooled;
            size /= 2;
        }
        for (int k = widths.Length - 1; k >= 0; k--)
        {
            int plane = size * size;
            size *= 2;
            var un = new double[n * c * size * size];
            for (int i = 0; i < x.Length; i++) un[i / plane * size * size + idx[k][i]] = x[i];
            x = un;
            for (int j = depths[k] - 1; j >= 0; j--)
            {
                int co = j > 0 ? widths[k] : k > 0 ? widths[k - 1] : 1;
                x = Unit(x, $"{k + 1}{j + 1}d", widths[k], co, !(k == 0 && j == 0));
                c = co;
            }
        }
        return x;
    }

    [Test]
    public void TheDecoderUnpoolsAtThePoolingIndicesForwardAndBackward()
    {
        const int n = 2, cin = 3, s = 8;
        int[] widths = [4, 5, 6], depths = [1, 2, 1];
        using var net = new FdpSegNet(cin, 1, widths, depths, new Rng(7));
        var rng = new Rng(8);
        foreach (var (name, t) in net.NamedState())
        {
            if (t.DType != DType.Float32) continue;
            var v = new float[t.Numel];
            for (int i = 0; i < v.Length; i++)
                v[i] = name.EndsWith("running_var", StringComparison.Ordinal) ? (float)(0.5 + rng.NextDouble())
                    : name.Contains(".weight") && t.Rank == 1 ? (float)(0.6 + 0.6 * rng.NextDouble())
                    : (float)(rng.NextDouble() - 0.5) * (t.Rank == 4 ? 0.8f : 0.4f);
            t.Backend.Upload(t.Storage, v);
        }
        net.Eval();
        var p = net.NamedState().Where(t => t.Value.DType == DType.Float32).ToDictionary(t => t.Name, t => D(t.Value.ToArray()));
        Assert.That(p.Keys, Does.Contain("conv22.weight").And.Contain("conv22d.weight").And.Contain("conv11d.bias").And.Not.Contain("bn11d.weight"));
        new GradCheck
        {
            Name = "fdp_segnet", Shapes = [[n, cin, s, s]],
            Op = x => net.Forward(x[0]),
            Reference = x => SegNetRef(x[0], p, n, cin, s, widths, depths),
            ForwardAtol = 1e-5, ForwardRtol = 1e-4, GradAtol = 1e-4, GradRtol = 2e-3, MaxGradChecks = 120,
        }.Run();
    }

    /// <summary>NLL(log-softmax z, y) + w·mean((σ(d) − DI)²) in double.</summary>
    private static double LossRef(double[] z, double[] d, double[] di, int[] y, int k, double weight)
    {
        int b = y.Length;
        double ce = 0;
        for (int i = 0; i < b; i++)
        {
            double mx = z.Skip(i * k).Take(k).Max(), sum = 0;
            for (int j = 0; j < k; j++) sum += Math.Exp(z[i * k + j] - mx);
            ce -= z[i * k + y[i]] - mx - Math.Log(sum);
        }
        double mse = 0;
        for (int i = 0; i < d.Length; i++)
        {
            double e = 1 / (1 + Math.Exp(-d[i])) - di[i];
            mse += e * e;
        }
        return ce / b + weight * mse / d.Length;
    }

    [TestCase(100f)]
    [TestCase(0.5f)]
    public void TheLossMatchesItsFormulaAndFiniteDifferences(float weight)
    {
        const int b = 3, k = 3, s = 5;
        int[] y = [2, 0, 1];
        var di = Check.Random(b * s * s, 9, 0f, 1f);
        var loss = new FdpLoss(weight);
        new GradCheck
        {
            Name = "fdp_loss", Shapes = [[b, k], [b, 1, s, s]],
            Init = (_, _, r) => (float)(r.NextDouble() * 4 - 2),
            Op = t =>
            {
                var target = Tensor.FromSpan(di, [b, 1, 1, s, s], Device.Cpu);
                var batch = new ModelBatch(new Dictionary<InputKind, Tensor> { [InputKind.DynamicImage] = target });
                var output = new ModelOutput(t[0], new Dictionary<string, Tensor> { [FdpModel.DynamicImageLogits] = t[1] });
                return loss.Forward(output, batch, y).Reshape(1);
            },
            Reference = x => [LossRef(x[0], x[1], D(di), y, k, weight)],
            GradAtol = 1e-4, GradRtol = 2e-3,
        }.Run();
    }

    [Test]
    public void TheInputStatisticsAreTheReleasedMeanAndMaxAndRoundTripInACheckpoint()
    {
        var cfg = FdpPresets.Tiny with { Classes = 4 };
        string dir = Directory.CreateTempSubdirectory("fdp-ckpt").FullName;
        try
        {
            using var a = new FdpModel(cfg, new Rng(1));
            var clips = new[] { Check.Random(8 * 32 * 32, 1, 0f, 1f), Check.Random(8 * 32 * 32, 2, 0.2f, 0.6f) };
            a.FitInputStatistics(clips);
            var all = clips.SelectMany(c => c).Select(v => 2.0 * v - 1).ToArray();
            double mean = all.Average(), max = all.Max() - mean;
            Assert.That(a.InputStatistics.Mean, Is.EqualTo(mean).Within(1e-6));
            Assert.That(a.InputStatistics.Max, Is.EqualTo(max).Within(1e-6));
            using var scope = new TensorScope();
            var x = new ModelBatch(new Dictionary<InputKind, Tensor> { [InputKind.GreyFrames] = Tensor.FromSpan(clips.SelectMany(c => c).ToArray(), [2, 8, 1, 32, 32], Device.Cpu) });
            var train = a.Forward(x);                        // moves BatchNorm's running statistics off their start
            Assert.That(train.Logits.Shape, Is.EqualTo(new[] { 2, 4 }));
            Assert.That(train.Get(FdpModel.DynamicImageLogits).Shape, Is.EqualTo(new[] { 2, 1, 32, 32 }));
            string path = Path.Combine(dir, "m.safetensors");
            Weights.Save(a, path);
            Assert.That(Weights.ReadConfig(path), Is.EqualTo(a.Config));
            using var b = Weights.LoadModel(path);
            Assert.That(b, Is.TypeOf<FdpModel>());
            Assert.That(((FdpModel)b).InputStatistics, Is.EqualTo(a.InputStatistics));
            a.Training = false;
            b.Training = false;
            using var noGrad = GradMode.NoGrad();
            var ya = a.Forward(x);
            var yb = b.Forward(x);
            Assert.That(yb.Logits.ToArray(), Is.EqualTo(ya.Logits.ToArray()));
            Assert.That(yb.Get(FdpModel.DynamicImageLogits).ToArray(), Is.EqualTo(ya.Get(FdpModel.DynamicImageLogits).ToArray()));

            using var other = new FdpModel(cfg with { Depths = [1, 2, 1, 1] }, new Rng(1));
            var ex = Assert.Throws<InvalidDataException>(() => Weights.Load(other, path))!;
            Assert.That(ex.Message, Does.Contain("depths: [1, 1, 1, 1] vs [1, 2, 1, 1]"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Test]
    public void TheRegistryAndTheCacheCheckKnowFdp()
    {
        Assert.That(ModelRegistry.Names, Does.Contain("fdp").And.Contain("fdp-tiny"));
        Assert.That(ModelRegistry.Preset("fdp-tiny"), Is.EqualTo(FdpPresets.Tiny));
        var motion = new DataShape(3, [new InputShape(InputKind.MotionFrames, 8, 3, 32)], "cacheM");
        var ex = Assert.Throws<InvalidDataException>(() => FdpPresets.Tiny.ForData(motion))!;
        Assert.That(ex.Message, Does.Contain("cacheM").And.Contain("grey face frames"));
        var noDi = new DataShape(3, [new InputShape(InputKind.GreyFrames, 8, 1, 32)], "cacheG");
        Assert.That(Assert.Throws<InvalidDataException>(() => FdpPresets.Tiny.ForData(noDi))!.Message, Does.Contain("dynamic images"));
        var ok = new DataShape(5, [new InputShape(InputKind.GreyFrames, 8, 1, 64), new InputShape(InputKind.DynamicImage, 1, 1, 64)], "c");
        var fitted = (FdpConfig)FdpPresets.Tiny.ForData(ok);
        Assert.That((fitted.ImageSize, fitted.Classes, fitted.FeatureDim), Is.EqualTo((64, 5, 4096)));
        var odd = new DataShape(3, [new InputShape(InputKind.GreyFrames, 8, 1, 48), new InputShape(InputKind.DynamicImage, 1, 1, 48)], "c48");
        Assert.That(Assert.Throws<InvalidDataException>(() => FdpPresets.Tiny.ForData(odd))!.Message, Does.Contain("multiple of 32"));
        var seven = new DataShape(3, [new InputShape(InputKind.GreyFrames, 7, 1, 32), new InputShape(InputKind.DynamicImage, 1, 1, 32)], "c7");
        Assert.Throws<InvalidDataException>(() => FdpPresets.Tiny.ForData(seven));
    }
}

/// <summary>
/// fdp-tiny trains the same on ILGPU's CPU accelerator as on the SIMD CPU: three Adam steps (coupled weight decay 1e-3 and
/// lr 1e-4, as released) from the same weights and batch give losses within rtol 1e-4, and the first step's gradients
/// agree within 1e-5 + 1e-4·|ref|. The everyday case is fdp-tiny's encoder, rank scorer and head at 16 px with four of
/// SegNet's five stages (16 px halves four times): ILGPU's CPU accelerator ran the full fdp-tiny at 32 px in about four
/// minutes per step on the 2-core machine. Profiled (batch 1, benchmarks/RESULTS.md): the rank scorer's conv3d backward
/// data was half the step (the tiled GEMM's group barriers over one useful row); with the direct kernel for it one batch-1
/// step took 58 s under a load average of 200 (607 s before, at 300–400), still too slow for CI, so the full case stays
/// explicit.
/// <para>
/// The weights of a conv that feeds a training-mode BatchNorm (the stem's and the patch embeds' convs, SegNet's) are
/// compared per output filter, |a − e| ≤ 1e-5 + 1e-4·max|e| over that filter, not element by element. Why (measured
/// 2026-12-02, batch 1, one step's gradients): BN makes the loss nearly invariant to the scale of each filter w_c
/// (exactly, but for BN's eps), so its gradient is nearly orthogonal to it (for the first stem conv's filter 0,
/// w·g/(|w||g|) = 3.8e-3) and, with the released std-0.02 initialisation, large (∝ 1/|w_c|: max |g| 10.6 for the first
/// stem conv); its small elements are differences of large terms. The element-wise check then fails for float
/// conditioning, not for a kernel: on the CPU backend alone, the same model with every input pixel moved by one ulp (4
/// ulps) changes stem.0.conv.weight's gradient by up to 1.6× (9.4×) the element-wise tolerance (4.9e-5 (3.7e-4)
/// absolute on elements of 9e-3; <see cref="BnFedConvGradientsAreIllConditionedInFloat"/>), the 16-px batch-1 case by
/// 1.75×; ILGPU's CPU accelerator differs from the CPU by 10.6× (4.1e-4 absolute, a relative 3.9e-5 of the tensor's
/// largest element), the same size as the 4-ulp input change, and only in these BN-fed conv weights (stem 0–3, the
/// patch embeds of stages 2–4): every other parameter, the rank scorer, the head and the decoder included, met the
/// element-wise check (worst |diff|/tol 0.77, on mer.conv3d.weight and dyimg_net.conv11.weight). That was the
/// unexplained batch-1 failure of the full case. Every other parameter is still compared element by element.
/// </para>
/// A larger learning rate makes the comparison fragile rather than wrong: a few-ulp difference can flip a near-tie of a
/// 2×2 max pool, and the unpooling then moves a value to another pixel of the reconstruction.
/// </summary>
public class FdpDeviceTests
{
    private static FdpConfig Config(int size, int stages) => FdpPresets.Tiny with
    {
        ImageSize = size, DecoderWidths = FdpPresets.Tiny.DecoderWidths[..stages], DecoderDepths = FdpPresets.Tiny.DecoderDepths[..stages],
    };

    private static (float[] Losses, Dictionary<string, float[]> Grads, Dictionary<string, int> Filters) Train(FdpConfig cfg, Device device, int steps, int b, int ulps = 0)
    {
        using var model = ModelRegistry.Create(cfg, new Rng(1));
        model.To(device);
        using var loss = model.CreateLoss(new Rng(2));
        var named = model.NamedParameters().ToList();
        using var opt = new Adam(named.Select(p => p.Value), lr: 1e-4f, weightDecay: 1e-3f);
        int s = cfg.ImageSize;
        var xs = Check.Random(b * 8 * s * s, 3, 0f, 1f);
        var di = Check.Random(b * s * s, 4, 0f, 1f);
        ((FdpModel)model).FitInputStatistics([xs]);
        for (int i = 0; i < xs.Length; i++) for (int u = 0; u < ulps; u++) xs[i] = MathF.BitIncrement(xs[i]);   // after the statistics
        int[] labels = b == 1 ? [2] : [0, 2];
        var losses = new float[steps];
        var grads = new Dictionary<string, float[]>();
        var filters = named.ToDictionary(p => p.Name, p => p.Value.Shape[0]);
        for (int st = 0; st < steps; st++)
        {
            using var scope = new TensorScope();
            var batch = new ModelBatch(new Dictionary<InputKind, Tensor>
            {
                [InputKind.GreyFrames] = Tensor.FromSpan(xs, [b, 8, 1, s, s], device),
                [InputKind.DynamicImage] = Tensor.FromSpan(di, [b, 1, 1, s, s], device),
            });
            var l = loss.Forward(model.Forward(batch), batch, labels);
            l.Backward();
            if (st == 0) foreach (var (name, p) in named) grads[name] = p.Grad!.ToArray();
            opt.Step();
            opt.ZeroGrad();
            losses[st] = l.Item();
        }
        return (losses, grads, filters);
    }

    /// <summary>
    /// Whether a parameter is the weight of a conv whose output goes straight into a training-mode BatchNorm: the stem's
    /// and the patch embeds' <c>P.conv.weight</c> beside <c>P.norm.weight</c>, SegNet's <c>conv{k}.weight</c> beside
    /// <c>bn{k}.weight</c>.
    /// </summary>
    internal static bool FeedsBatchNorm(string name, IReadOnlySet<string> names)
    {
        if (name.EndsWith(".conv.weight", StringComparison.Ordinal)) return names.Contains(name[..^".conv.weight".Length] + ".norm.weight");
        var m = System.Text.RegularExpressions.Regex.Match(name, @"^(.*)\.conv(\d+d?)\.weight$");
        return m.Success && names.Contains($"{m.Groups[1].Value}.bn{m.Groups[2].Value}.weight");
    }

    /// <summary>Per output filter (the first axis): |a − e| ≤ atol + rtol·max|e| over the filter.</summary>
    private static void ClosePerFilter(float[] actual, float[] expected, int filters, double atol, double rtol, string what)
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length), what);
        int n = expected.Length / filters;
        for (int f = 0; f < filters; f++)
        {
            double scale = 0;
            for (int i = f * n; i < (f + 1) * n; i++) scale = Math.Max(scale, Math.Abs(expected[i]));
            for (int i = f * n; i < (f + 1) * n; i++)
                if (!float.IsFinite(actual[i]) || Math.Abs(actual[i] - expected[i]) > atol + rtol * scale)
                    Assert.Fail($"{what}: filter {f}, element {i} is {actual[i]}, expected {expected[i]} (atol {atol}, rtol {rtol} of the filter's max |ref| {scale})");
        }
    }

    /// <summary>
    /// The conditioning that the per-filter comparison answers, on the CPU backend alone (a second or two): the full fdp-tiny
    /// at batch 1, once as is and once with every input pixel moved up by 4 ulps. Every other parameter's gradient stays
    /// within the element-wise tolerance of the unperturbed one; the BN-fed conv weights do not (measured: 9.4× the
    /// tolerance on stem.0.conv.weight), yet they stay within the per-filter one. If a
    /// kernel change ever makes these gradients well-conditioned in float, this test says so, and the device test should go
    /// back to the element-wise check.
    /// </summary>
    [Test]
    public void BnFedConvGradientsAreIllConditionedInFloat()
    {
        var cfg = Config(32, 5);
        var a = Train(cfg, Device.Cpu, 1, 1);
        var b = Train(cfg, Device.Cpu, 1, 1, ulps: 4);
        var names = a.Grads.Keys.ToHashSet();
        double worst = 0;
        foreach (var (name, want) in a.Grads)
        {
            if (!FeedsBatchNorm(name, names))
            {
                Check.Close(b.Grads[name], D(want), 1e-5, 1e-4, $"d/d{name} after a 4-ulp input change");
                continue;
            }
            ClosePerFilter(b.Grads[name], want, a.Filters[name], 1e-5, 1e-4, $"d/d{name} after a 4-ulp input change");
            for (int i = 0; i < want.Length; i++) worst = Math.Max(worst, Math.Abs(b.Grads[name][i] - want[i]) / (1e-5 + 1e-4 * Math.Abs(want[i])));
        }
        TestContext.Out.WriteLine($"BN-fed conv weights: worst element-wise |diff|/tol after a 4-ulp input change {worst:F2}");
        Assert.That(worst, Is.GreaterThan(1), "a 4-ulp input change moves some BN-fed conv weight's gradient past the element-wise tolerance");
    }

    [TestCase(16, 4, 2)]
    [TestCase(32, 5, 2, Explicit = true, Reason = "the full fdp-tiny: about a minute per step on ILGPU's CPU accelerator under load, even after the direct conv3d backward")]
    [TestCase(32, 5, 1, Explicit = true, Reason = "the full fdp-tiny at batch 1 (BN over the 8 frames of one clip): as slow as batch 2")]
    public void ThreeTrainingStepsOnIlgpuCpuMatchTheCpu(int size, int stages, int batch)
    {
        var cfg = Config(size, stages);
        var cpu = Train(cfg, Device.Cpu, 3, batch);
        var ilgpu = Train(cfg, Devices.IlgpuCpu, 3, batch);
        TestContext.Out.WriteLine($"losses cpu {string.Join(", ", cpu.Losses)}; ilgpu-cpu {string.Join(", ", ilgpu.Losses)}");
        for (int s = 0; s < 3; s++)
            Assert.That(ilgpu.Losses[s], Is.EqualTo(cpu.Losses[s]).Within(1e-4 * Math.Abs(cpu.Losses[s])), $"loss of step {s + 1}");
        Assert.That(cpu.Losses[2], Is.LessThan(cpu.Losses[0]), "the loss falls on a repeated batch");
        var names = cpu.Grads.Keys.ToHashSet();
        int bnFed = 0;
        foreach (var (name, want) in cpu.Grads)
        {
            if (FeedsBatchNorm(name, names))
            {
                int filters = cpu.Filters[name];
                ClosePerFilter(ilgpu.Grads[name], want, filters, 1e-5, 1e-4, $"d/d{name}");
                bnFed++;
            }
            else Check.Close(ilgpu.Grads[name], D(want), 1e-5, 1e-4, $"d/d{name}");
        }
        Assert.That(bnFed, Is.EqualTo(4 + 3 + 2 * stages - 1), "the BN-fed convs: 4 stem, 3 patch embeds, SegNet's 2·stages − 1 (not the last)");
    }



    private static double[] D(float[] a) => a.Select(v => (double)v).ToArray();
}

/// <summary>
/// One LOSO fold of fdp-tiny through the trainer with FDP's recipe: exactly the fixed number of Adam steps, the input
/// statistics of the training subjects only (or, transductive, the test subject's for its predictions), and the
/// reconstructions beside their targets in the fold's result and the report's picture.
/// </summary>
public class FdpTrainingTests
{
    private static ClipSet Data()
    {
        const int s = 32;
        var clips = new List<Clip>();
        for (int i = 0; i < 9; i++)
        {
            string subject = $"s{i % 3}";
            float lo = subject == "s2" ? 0.5f : 0f;                 // the test subject's frames are brighter
            clips.Add(new Clip($"c{i}", subject, i % 3, new Dictionary<InputKind, float[]>
            {
                [InputKind.GreyFrames] = Check.Random(8 * s * s, 10 + i, lo, lo + 0.5f),
                [InputKind.DynamicImage] = Check.Random(s * s, 40 + i, 0f, 1f),
            }));
        }
        return new ClipSet(clips, ["a", "b", "c"], [new InputShape(InputKind.GreyFrames, 8, 1, s), new InputShape(InputKind.DynamicImage, 1, 1, s)], "mem");
    }

    [Test]
    public void AFoldTrainsTheFixedStepsWithTheTrainingSubjectsStatistics()
    {
        var data = Data();
        string dir = Directory.CreateTempSubdirectory("fdp-fold").FullName;
        try
        {
            var o = new TrainOptions
            {
                Preset = "fdp-tiny", Steps = 25, BatchSize = 4, Optimizer = "adam", LearningRate = 1e-3f, WeightDecay = 1e-3f,
                Schedule = "constant", ClipNorm = 0, ClassWeights = false,
            };
            var r = FoldTrainer.Run(data, "s2", 0, 3, o, Path.Combine(dir, "f"), Device.Cpu);
            Assert.That(r.Epochs, Is.EqualTo(13), "6 training clips at batch 4: 2 steps per epoch, so 25 steps end in epoch 13");
            var saved = Safetensors.Read(Path.Combine(dir, "f", FoldTrainer.CheckpointFile));
            Assert.That(saved.Metadata["optimizer_step"], Is.EqualTo("25"));
            var train = data.Clips.Where(c => c.Subject != "s2").SelectMany(c => c.Inputs[InputKind.GreyFrames]).Select(v => 2.0 * v - 1).ToArray();
            Assert.That(saved.Arrays.Single(a => a.Name == "model.input_mean").Data[0], Is.EqualTo(train.Average()).Within(1e-5),
                "the checkpoint holds the training subjects' mean");
            Assert.That(r.Predictions, Has.Count.EqualTo(3));
            Assert.That(r.Reconstructions, Has.Count.EqualTo(2));
            Assert.That(r.Reconstructions![0].Target, Is.EqualTo(data.Clips.First(c => c.Id == r.Reconstructions[0].Clip).Inputs[InputKind.DynamicImage]));
            Assert.That(r.Reconstructions[0].Predicted.All(v => v is > 0f and < 1f), "σ(D̂) lies in (0, 1)");
            string png = Path.Combine(dir, "r.png");
            Plots.Reconstructions(png, r.Reconstructions);
            Assert.That(new FileInfo(png).Length, Is.GreaterThan(1000));

            // Transductive: the same training, the test subject's (brighter) frames normalised by their own statistics. (25
            // steps, not 3: BatchNorm's running statistics, which evaluation uses, need a few dozen updates at momentum 0.1
            // before the released std-0.02 initialisation lets the input reach the logits in eval mode.)
            var t = FoldTrainer.Run(data, "s2", 0, 3, o with { TransductiveStatistics = true }, Path.Combine(dir, "t"), Device.Cpu);
            Assert.That(t.Predictions.Select(p => p.Probabilities[0]), Is.Not.EqualTo(r.Predictions.Select(p => p.Probabilities[0])));
            var tsaved = Safetensors.Read(Path.Combine(dir, "t", FoldTrainer.CheckpointFile));
            Assert.That(tsaved.Arrays.Single(a => a.Name == "model.input_mean").Data[0], Is.EqualTo(train.Average()).Within(1e-5),
                "the saved model keeps the training statistics");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
