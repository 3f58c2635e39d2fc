using MicroExpr.Tensors;

namespace MicroExpr.Tests.Nn;

/// <summary>
/// Whole-model checks of the ILGPU backend against the SIMD CPU backend, same weights on both:
/// (1) a graph of the primitive ops only (broadcasting, permute, slice, concat, gather, reductions,
/// element-wise maps) — needs no GEMM/attention/LayerNorm/softmax kernel; (2) a one-block transformer
/// like <see cref="CompositeTrainingTests"/>'s TinyTransformer, written functionally so its parameters can
/// be placed on any device — needs the four heavy launchers (ilgpu-kernels branch).
/// </summary>
public class IlgpuTransformerTests
{
    private static float[] Rand(Rng rng, int n, float scale) => Enumerable.Range(0, n).Select(_ => (float)(scale * rng.NextNormal())).ToArray();

    /// <summary>Parameters of the tiny transformer: embed 8→32, block (2 heads, MLP 64), norm, head 32→3.</summary>
    public static DeviceCompare.Weights TransformerWeights(ulong seed)
    {
        var rng = new Rng(seed);
        var w = new DeviceCompare.Weights();
        void Linear(string name, int inF, int outF)
        {
            float bound = 1f / MathF.Sqrt(inF);
            w.Add(name + ".weight", [outF, inF], Enumerable.Range(0, outF * inF).Select(_ => (float)(bound * (2 * rng.NextDouble() - 1))).ToArray());
            w.Add(name + ".bias", [outF], Enumerable.Range(0, outF).Select(_ => (float)(bound * (2 * rng.NextDouble() - 1))).ToArray());
        }
        void Norm(string name, int c)
        {
            // Not the identity init, so gamma and beta gradients are exercised with non-trivial values.
            w.Add(name + ".weight", [c], Rand(rng, c, 0.1f).Select(v => 1f + v).ToArray());
            w.Add(name + ".bias", [c], Rand(rng, c, 0.1f));
        }
        Linear("embed", 8, 32);
        Norm("block.norm1", 32);
        Linear("block.attn.qkv", 32, 96);
        Linear("block.attn.proj", 32, 32);
        Norm("block.norm2", 32);
        Linear("block.mlp.fc1", 32, 64);
        Linear("block.mlp.fc2", 64, 32);
        Norm("norm", 32);
        Linear("head", 32, 3);
        return w;
    }

    private static Tensor Linear(Dictionary<string, Tensor> p, string name, Tensor x) =>
        Tensor.MatMul(x, p[name + ".weight"], false, true) + p[name + ".bias"];

    private static Tensor Norm(Dictionary<string, Tensor> p, string name, Tensor x) =>
        Tensor.LayerNorm(x, p[name + ".weight"], p[name + ".bias"]);

    /// <summary>The same computation as MicroExpr.Nn's TransformerBlock (pre-norm, timm layout), then mean-pool and head.</summary>
    public static Tensor TransformerLoss(Dictionary<string, Tensor> p, float[] xs, int[] ys, int b, int n, int heads)
    {
        var device = p["embed.weight"].Device;
        var x = Linear(p, "embed", Tensor.FromSpan(xs, [b, n, 8], device));
        int c = x.Shape[2], hd = c / heads;
        var qkv = Linear(p, "block.attn.qkv", Norm(p, "block.norm1", x)).Reshape(b, n, 3, heads, hd).Permute(2, 0, 3, 1, 4);
        var q = qkv.Slice(0, 0, 1).Reshape(b, heads, n, hd);
        var k = qkv.Slice(0, 1, 1).Reshape(b, heads, n, hd);
        var v = qkv.Slice(0, 2, 1).Reshape(b, heads, n, hd);
        var o = Tensor.Attention(q, k, v).Permute(0, 2, 1, 3).Reshape(b, n, c);
        var h = x + Linear(p, "block.attn.proj", o);
        h = h + Linear(p, "block.mlp.fc2", Linear(p, "block.mlp.fc1", Norm(p, "block.norm2", h)).Gelu());
        var logits = Linear(p, "head", Norm(p, "norm", h).Mean([1]));
        return Tensor.CrossEntropy(logits, ys, [1f, 1.5f, 0.75f], 0.1f);
    }

    /// <summary>The marker task inputs of CompositeTrainingTests (B sequences of N tokens with 8 features).</summary>
    public static (float[] x, int[] y) Inputs(int b, int n, ulong seed)
    {
        var rng = new Rng(seed);
        var x = Enumerable.Range(0, b * n * 8).Select(_ => (float)rng.NextNormal()).ToArray();
        var y = Enumerable.Range(0, b).Select(i => (i * 5 + 1) % 3).ToArray();
        return (x, y);
    }

    /// <summary>Needs GemmKernels, AttentionKernels, LayerNormKernels and SoftmaxKernels (the ilgpu-kernels branch).</summary>
    [Test]
    public void TinyTransformerForwardBackwardMatchesCpu()
    {
        var (xs, ys) = Inputs(4, 6, 3);
        DeviceCompare.AssertSame(Devices.IlgpuCpu, Device.Cpu, TransformerWeights(21), p => TransformerLoss(p, xs, ys, 4, 6, 2), 1e-4);
    }

    /// <summary>Weights of the primitive-op graph.</summary>
    private static DeviceCompare.Weights PrimitiveWeights()
    {
        var rng = new Rng(5);
        return new DeviceCompare.Weights
        {
            { "x", [4, 6, 5], Rand(rng, 120, 1f) },
            { "scale", [5], Rand(rng, 5, 0.5f).Select(v => 1f + v).ToArray() },
            { "shift", [6, 1], Rand(rng, 6, 0.5f) },
            { "table", [7, 5], Rand(rng, 35, 1f) },
        };
    }

    /// <summary>
    /// Broadcast mul/add/sub/div, permute, slice, concat, index_select (repeated indices), max, sum, mean,
    /// variance, gelu, tanh, sigmoid, exp, log, sqrt, pow, relu, broadcast_to — every op but the four heavy ones.
    /// </summary>
    private static Tensor PrimitiveLoss(Dictionary<string, Tensor> p)
    {
        var x = p["x"] * p["scale"] + p["shift"];                        // [4, 6, 5]
        var t = x.Permute(1, 0, 2);                                       // [6, 4, 5]
        var a = t.Slice(0, 1, 3).Gelu();                                  // [3, 4, 5]
        var e = p["table"].IndexSelect(0, [3, 3, 0, 6]).Reshape(1, 4, 5); // [1, 4, 5]
        var cat = Tensor.Concat(0, a, e.BroadcastTo(2, 4, 5).Tanh());     // [5, 4, 5]
        var m = cat.Max(1);                                               // [5, 5]
        var s = (cat.Sigmoid() * cat.Exp().AddScalar(1f).Log()).Sum([0, 2], keepDim: true); // [1, 4, 1]
        var v = x.Variance([1], unbiased: true).Sqrt().Pow(1.5f);         // [4, 5]
        var r = (m.Relu() / (s.Reshape(4, 1).Mean([0]) + 2f)).Mean();
        return r + v.Mean() - cat.Sum() * 0.01f;
    }

    [Test]
    public void PrimitiveOpGraphForwardBackwardMatchesCpu() =>
        DeviceCompare.AssertSame(Devices.IlgpuCpu, Device.Cpu, PrimitiveWeights(), PrimitiveLoss, 1e-5);

    [Test]
    public void AdamWStepsMatchCpu()
    {
        var init = Check.Random(6 * 512 + 7, 81);
        var results = new List<float[]>();
        foreach (var device in new[] { Devices.IlgpuCpu, Device.Cpu })
        {
            using var scope = new TensorScope();
            var p = Tensor.FromSpan(init, [init.Length], device).AsParameter("p");
            using var opt = new MicroExpr.Nn.AdamW([p], lr: 1e-2f, weightDecay: 0.05f);
            for (int step = 0; step < 3; step++)
            {
                using var s = new TensorScope();
                (p * p * p).Mean().Backward();
                opt.Step();
                opt.ZeroGrad();
            }
            results.Add(p.ToArray());
            p.Dispose();
        }
        Check.Close(results[0], results[1], 1e-6, 1e-5, "AdamW on ilgpu-cpu vs cpu");
    }
}
