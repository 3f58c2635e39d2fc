using MicroExpr.Kernels;
using MicroExpr.Models;
using MicroExpr.Nn;
using MicroExpr.Tensors;

namespace MicroExpr.Tests.Conv;

/// <summary>
/// ResNet-18: torchvision's names and sizes, import of torchvision-named safetensors, the forward against a literal
/// double-precision network (eval and training mode), truncation, and a deterministic toy training run.
/// </summary>
public class ResNet18Tests
{
    /// <summary>torchvision.models.resnet18().state_dict(): 62 parameters (11 689 512 values) and 60 buffers.</summary>
    [Test]
    public void NamesAndSizesAreTorchvisions()
    {
        using var net = new ResNet18(new ResNet18Config());
        var names = net.NamedState().Select(s => s.Name).ToList();
        Assert.That(net.NamedParameters().Count(), Is.EqualTo(62));
        Assert.That(net.NamedBuffers().Count(), Is.EqualTo(60));
        Assert.That(net.ParameterCount(), Is.EqualTo(11_689_512));
        foreach (string n in new[] { "conv1.weight", "bn1.running_mean", "bn1.num_batches_tracked", "layer1.0.conv1.weight", "layer1.1.bn2.bias",
                     "layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_var", "layer4.1.conv2.weight", "fc.weight", "fc.bias" })
            Assert.That(names, Does.Contain(n));
        Assert.That(names, Does.Not.Contain("layer1.0.downsample.0.weight"));
        var shapes = net.NamedState().ToDictionary(s => s.Name, s => s.Value.Shape);
        Assert.That(shapes["conv1.weight"], Is.EqualTo(new[] { 64, 3, 7, 7 }));
        Assert.That(shapes["layer3.0.downsample.0.weight"], Is.EqualTo(new[] { 256, 128, 1, 1 }));
        Assert.That(shapes["fc.weight"], Is.EqualTo(new[] { 1000, 512 }));
        Assert.That(net.OutChannels, Is.EqualTo(1000));
    }

    [TestCase(ResNetStage.Layer1, 64, 4)]
    [TestCase(ResNetStage.Layer2, 128, 8)]
    [TestCase(ResNetStage.Layer3, 256, 16)]
    [TestCase(ResNetStage.Layer4, 512, 32)]
    public void TruncatesAfterAStage(ResNetStage until, int channels, int stride)
    {
        using var net = new ResNet18(new ResNet18Config { Until = until });
        Assert.That(net.OutChannels, Is.EqualTo(channels));
        Assert.That(net.OutStride, Is.EqualTo(stride));
        Assert.That(net.NamedParameters().Any(p => p.Name.StartsWith("fc.", StringComparison.Ordinal)), Is.False);
        using var scope = new TensorScope();
        net.Eval();
        var y = net.Forward(Tensor.Zeros(1, 3, 64, 64));
        Assert.That(y.Shape, Is.EqualTo(new[] { 1, channels, 64 / stride, 64 / stride }));
        using var pooled = new ResNet18(new ResNet18Config { Until = until, GlobalPool = true });
        pooled.Eval();
        Assert.That(pooled.Forward(Tensor.Zeros(1, 3, 64, 64)).Shape, Is.EqualTo(new[] { 1, channels }));
    }

    /// <summary>Random torchvision-named weights with non-trivial BatchNorm statistics, as a safetensors export gives.</summary>
    private static List<NamedArray> TorchvisionArrays(int classes, int seed)
    {
        using var shape = new ResNet18(new ResNet18Config { Classes = classes });
        var rng = new Random(seed);
        float U(double lo, double hi) => (float)(lo + (hi - lo) * rng.NextDouble());
        var arrays = new List<NamedArray>();
        foreach (var (name, t) in shape.NamedState())
        {
            int n = t.Numel;
            if (name.EndsWith("num_batches_tracked", StringComparison.Ordinal)) { arrays.Add(NamedArray.Int64(name, t.Shape, [7])); continue; }
            float[] data = new float[n];
            if (t.Rank == 4)
            {
                double std = Math.Sqrt(2.0 / (t.Shape[0] * t.Shape[2] * t.Shape[3]));
                for (int i = 0; i < n; i++) data[i] = U(-std * 1.7, std * 1.7);
            }
            else if (name.EndsWith("running_var", StringComparison.Ordinal)) for (int i = 0; i < n; i++) data[i] = U(0.5, 1.5);
            else if (name.EndsWith("running_mean", StringComparison.Ordinal)) for (int i = 0; i < n; i++) data[i] = U(-0.2, 0.2);
            else if (name.EndsWith("bn1.weight", StringComparison.Ordinal) || name.EndsWith("bn2.weight", StringComparison.Ordinal) || name.EndsWith(".1.weight", StringComparison.Ordinal))
                for (int i = 0; i < n; i++) data[i] = U(0.6, 1.2);
            else for (int i = 0; i < n; i++) data[i] = U(-0.1, 0.1);
            arrays.Add(new NamedArray(name, t.Shape, data));
        }
        return arrays;
    }

    /// <summary>The literal ResNet-18 in double: convolutions by <see cref="ConvReference"/>, BatchNorm by its reference
    /// (running statistics, or the batch's in training mode), pools by <see cref="PoolReference"/>.</summary>
    private static double[] ReferenceForward(Dictionary<string, double[]> w, double[] x, int n, int h, int wd, bool training, int classes,
        int stages = 4)
    {
        int c = 3;
        double[] Conv(string name, double[] input, int cin, int cout, int k, int s, int p, ref int hh, ref int ww)
        {
            var g = ConvGeometry.Create2d(n, cin, cout, 1, hh, ww, k, k, s, s, p, p, 1, 1);
            var y = new double[g.YLength];
            ConvReference.Forward<double>(y, input, w[name + ".weight"], [], g, false);
            hh = g.Ho;
            ww = g.Wo;
            return y;
        }
        double[] Bn(string name, double[] input, int ch, int s, bool relu)
        {
            var y = new double[input.Length];
            if (training) BatchNormReference.TrainForward(y, new double[ch], new double[ch], input, w[name + ".weight"], w[name + ".bias"], n, ch, s, 1e-5f);
            else BatchNormReference.Apply(y, input, w[name + ".running_mean"], w[name + ".running_var"], w[name + ".weight"], w[name + ".bias"], n, ch, s, 1e-5f);
            return relu ? y.Select(v => Math.Max(0, v)).ToArray() : y;
        }
        int H = h, W = wd;
        var t = Bn("bn1", Conv("conv1", x, c, 64, 7, 2, 3, ref H, ref W), 64, H * W, true);
        var pg = new PoolGeometry { Planes = n * 64, D = 1, H = H, W = W, Do = 1, Ho = (H + 2 - 3) / 2 + 1, Wo = (W + 2 - 3) / 2 + 1, Kd = 1, Kh = 3, Kw = 3, Sd = 1, Sh = 2, Sw = 2, Ph = 1, Pw = 1 };
        var pooled = new double[pg.Planes * pg.OutPlane];
        PoolReference.MaxPool(pooled, new int[pooled.Length], t, pg);
        t = pooled;
        H = pg.Ho;
        W = pg.Wo;
        c = 64;
        int[] widths = [64, 128, 256, 512];
        for (int l = 0; l < stages; l++)
            for (int b = 0; b < 2; b++)
            {
                string pre = $"layer{l + 1}.{b}";
                int stride = l > 0 && b == 0 ? 2 : 1, cout = widths[l];
                int h1 = H, w1 = W;
                var a = Bn(pre + ".bn1", Conv(pre + ".conv1", t, c, cout, 3, stride, 1, ref h1, ref w1), cout, h1 * w1, true);
                int h2 = h1, w2 = w1;
                a = Bn(pre + ".bn2", Conv(pre + ".conv2", a, cout, cout, 3, 1, 1, ref h2, ref w2), cout, h2 * w2, false);
                double[] sc = t;
                if (stride != 1 || c != cout)
                {
                    int h3 = H, w3 = W;
                    sc = Bn(pre + ".downsample.1", Conv(pre + ".downsample.0", t, c, cout, 1, stride, 0, ref h3, ref w3), cout, h3 * w3, false);
                }
                t = a.Zip(sc, (u, v) => Math.Max(0, u + v)).ToArray();
                H = h2;
                W = w2;
                c = cout;
            }
        var feat = new double[n * c];
        for (int i = 0; i < n * c; i++) feat[i] = t.Skip(i * H * W).Take(H * W).Average();
        if (stages < 4) return feat;
        var logits = new double[n * classes];
        for (int b = 0; b < n; b++)
            for (int k = 0; k < classes; k++)
            {
                double s = w["fc.bias"][k];
                for (int j = 0; j < 512; j++) s += feat[b * 512 + j] * w["fc.weight"][k * 512 + j];
                logits[b * classes + k] = s;
            }
        return logits;
    }

    /// <summary>
    /// The full network in eval mode (every conv + BatchNorm folded) on [2, 3, 32, 32], and, in training mode (batch
    /// statistics), the network truncated after layer2 and pooled: at layer3/4 a batch of 2 at 32 px leaves 2 or 8 values
    /// per channel, where normalising amplifies float rounding beyond any fixed tolerance (PyTorch's float32 does the
    /// same), so training mode is checked where each channel has 32 or more values.
    /// </summary>
    [TestCase(false)]
    [TestCase(true)]
    public void ForwardMatchesTheDoubleReference(bool training)
    {
        const int n = 2, classes = 10, size = 32;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var arrays = TorchvisionArrays(classes, 1);
        string dir = Path.Combine(Path.GetTempPath(), "microexpr-resnet-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string path = Path.Combine(dir, "resnet18.safetensors");
            Safetensors.Write(path, arrays);
            var config = training
                ? new ResNet18Config { Classes = classes, Seed = 99, Until = ResNetStage.Layer2, GlobalPool = true }
                : new ResNet18Config { Classes = classes, Seed = 99 };
            using var net = new ResNet18(config);
            var report = net.ImportTorchvision(path);
            Assert.That(report.Loaded, Has.Count.EqualTo(training ? 60 : 122)); // stem 1 + 5, four blocks 4·12, one downsample 6; full: 62 parameters + 60 buffers
            Assert.That(report.UnusedInFile, training ? Is.Not.Empty : Is.Empty);
            Assert.That(net.Layers[^1].Blocks[1].Bn2.NumBatchesTracked.ToInt64Array()[0], Is.EqualTo(7L));
            TestContext.Out.WriteLine($"setup {sw.ElapsedMilliseconds} ms");
            if (training) net.Train(); else net.Eval();
            var x = Check.Random(n * 3 * size * size, 2);
            using var scope = new TensorScope();
            var y = net.Forward(Tensor.FromSpan(x, [n, 3, size, size], Device.Cpu)).ToArray();
            var w = arrays.Where(a => a.Integers is null).ToDictionary(a => a.Name, a => a.Data.Select(v => (double)v).ToArray());
            TestContext.Out.WriteLine($"forward {sw.ElapsedMilliseconds} ms");
            var expected = ReferenceForward(w, x.Select(v => (double)v).ToArray(), n, size, size, training, classes, training ? 2 : 4);
            TestContext.Out.WriteLine($"reference {sw.ElapsedMilliseconds} ms");
            Check.Close(y, expected, 1e-4, 1e-4, $"resnet18 forward ({(training ? "training" : "eval, folded conv+bn")})");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void TruncatedImportReportsTheUnusedStages()
    {
        using var net = new ResNet18(new ResNet18Config { Until = ResNetStage.Layer2 });
        var report = net.ImportTorchvision(TorchvisionArrays(1000, 3));
        Assert.That(report.UnusedInFile, Does.Contain("layer3.0.conv1.weight"));
        Assert.That(report.UnusedInFile, Does.Contain("fc.weight"));
        Assert.That(report.UnusedInFile.Any(n => n.StartsWith("layer2", StringComparison.Ordinal)), Is.False);
        var bad = TorchvisionArrays(1000, 3).Where(a => a.Name != "layer1.1.bn1.running_var").ToList();
        var e = Assert.Throws<InvalidDataException>(() => net.ImportTorchvision(bad))!;
        Assert.That(e.Message, Does.Contain("'layer1.1.bn1.running_var' is missing"));
    }

    /// <summary>
    /// 50 SGD-momentum steps on 8 fixed 32×32 images of 2 classes (a bright or dark centre square): the cross-entropy must
    /// fall below 0.05 (it starts near ln 2 ≈ 0.69), and a second run from the same seed gives bit-identical losses.
    /// </summary>
    [Test]
    public void ToyTrainingRunConvergesDeterministically()
    {
        var first = ToyRun();
        var second = ToyRun();
        TestContext.Out.WriteLine($"losses: {string.Join(", ", first.Select(l => l.ToString("G4", System.Globalization.CultureInfo.InvariantCulture)))}");
        Assert.That(second, Is.EqualTo(first), "two runs from the same seed");
        Assert.That(first[^1], Is.LessThan(0.05f), "final loss");
        Assert.That(first[0], Is.GreaterThan(0.3f), "the first loss is not already small");
    }

    private static float[] ToyRun()
    {
        const int n = 8, size = 32;
        var x = new float[n * 3 * size * size];
        var labels = new int[n];
        var rng = new Rng(17);
        for (int b = 0; b < n; b++)
        {
            labels[b] = b % 2;
            for (int c = 0; c < 3; c++)
                for (int i = 0; i < size; i++)
                    for (int j = 0; j < size; j++)
                    {
                        bool centre = i >= 10 && i < 22 && j >= 10 && j < 22;
                        float v = (float)(rng.NextDouble() * 0.4 - 0.2) + (centre ? (labels[b] == 1 ? 1f : -1f) : 0f);
                        x[((b * 3 + c) * size + i) * size + j] = v;
                    }
        }
        using var net = new ResNet18(new ResNet18Config { Classes = 2, Seed = 5 });
        using var opt = new Sgd(net.Parameters(), lr: 0.01f, momentum: 0.9f);
        var losses = new float[50];
        for (int step = 0; step < losses.Length; step++)
        {
            using var scope = new TensorScope();
            var loss = Tensor.CrossEntropy(net.Forward(Tensor.FromSpan(x, [n, 3, size, size], Device.Cpu)), labels);
            loss.Backward();
            opt.Step();
            opt.ZeroGrad();
            losses[step] = loss.Item();
        }
        return losses;
    }
}
