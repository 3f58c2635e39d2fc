using MicroExpr.Nn;
using MicroExpr.Tensors;

namespace MicroExpr.Tests.Nn;

/// <summary>
/// MultiHeadSelfAttention (qkv Linear → <see cref="Tensor.SelfAttention"/> → proj Linear) against the way it was
/// computed before the packed op — q, k, v copied out of qkv, fused attention on [B, H, N, D], heads merged by a
/// permute copy — with the layer's own weights: output and every gradient bit for bit; timm's parameter names.
/// </summary>
[TestFixture(typeof(OnCpu))]
[TestFixture(typeof(OnIlgpuCpu))]
public class MultiHeadSelfAttentionTests<TDevice> where TDevice : ITestDevice
{
    private static Tensor OldForward(MultiHeadSelfAttention attn, Tensor x)
    {
        int b = x.Shape[0], n = x.Shape[1], c = x.Shape[2], d = attn.HeadDim;
        var qkv = attn.Qkv.Forward(x);
        int[] shape = [b, attn.Heads, n, d], strides = [n * 3 * c, d, 3 * c, 1];
        var q = qkv.AsStrided(shape, strides, 0);
        var k = qkv.AsStrided(shape, strides, c);
        var v = qkv.AsStrided(shape, strides, 2 * c);
        var o = Tensor.Attention(q, k, v);
        return attn.Proj.Forward(o.Permute(0, 2, 1, 3).Reshape(b, n, c));
    }

    [TestCase(2, 33, 60, 3)]
    [TestCase(1, 50, 192, 3)]
    [TestCase(3, 5, 16, 1)]
    public void ForwardAndGradientsMatchTheSplitPath(int b, int n, int c, int heads)
    {
        using var attn = new MultiHeadSelfAttention(c, heads, new Rng(11), initStd: 0.2f);
        attn.To(TDevice.Device);
        var xData = Check.Random(b * n * c, 12 + n);
        var gData = Check.Random(b * n * c, 13 + n);

        (float[] Y, float[][] Grads) Run(Func<Tensor, Tensor> forward)
        {
            using var scope = new TensorScope();
            var x = Tensor.FromSpan(xData, [b, n, c], TDevice.Device);
            x.RequiresGrad = true;
            var y = forward(x);
            (y * Tensor.FromSpan(gData, [b, n, c], TDevice.Device)).Sum().Backward();
            var grads = new List<float[]> { x.Grad!.ToArray() };
            grads.AddRange(attn.Parameters().Select(p => p.Grad!.ToArray()));
            x.ZeroGrad();
            attn.ZeroGrad();
            return (y.ToArray(), grads.ToArray());
        }

        var (yNew, gNew) = Run(x => attn.Forward(x));
        var (yOld, gOld) = Run(x => OldForward(attn, x));
        Assert.That(yNew.All(float.IsFinite), Is.True, "finite output");
        Assert.That(yNew, Is.EqualTo(yOld), "output");
        var names = new[] { "x" }.Concat(attn.NamedParameters().Select(p => p.Name)).ToArray();
        for (int i = 0; i < gNew.Length; i++) Assert.That(gNew[i], Is.EqualTo(gOld[i]), $"gradient of {names[i]}");
    }

    [Test]
    public void KeepsTimmParameterNames()
    {
        using var attn = new MultiHeadSelfAttention(12, 3, new Rng(1));
        Assert.That(attn.NamedParameters().Select(p => p.Name),
            Is.EquivalentTo(new[] { "qkv.weight", "qkv.bias", "proj.weight", "proj.bias" }));
    }
}
