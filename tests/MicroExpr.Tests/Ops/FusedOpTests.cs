using MicroExpr.Tensors;
using MicroExpr.Tensors.Cpu;
using MicroExpr.Tensors.Ilgpu;

namespace MicroExpr.Tests.Ops;

/// <summary>
/// softmax, log-softmax, LayerNorm, fused attention and self-attention on packed QKV through the tape, against double
/// references; once per backend. On ILGPU these need SoftmaxKernels, LayerNormKernels and AttentionKernels (the ilgpu-kernels branch).
/// </summary>
[TestFixture(typeof(OnCpu))]
[TestFixture(typeof(OnIlgpuCpu))]
public class FusedOpTests<TDevice> where TDevice : ITestDevice
{
    /// <summary>Model-size cases run on the SIMD CPU backend only: ILGPU's CPU accelerator is too slow for them.</summary>
    private static void CpuOnly()
    {
        if (TDevice.Small) Assert.Ignore("model size: run on the CPU backend only (ILGPU's CPU accelerator is slow)");
    }

    /// <summary>The kernels' literal reference (<see cref="SoftmaxReference"/>) in double, over rows of <paramref name="cols"/>.</summary>
    private static double[] SoftmaxRef(double[] x, int cols, bool log)
    {
        var y = new double[x.Length];
        if (log) SoftmaxReference.LogForward<double>(y, x, x.Length / cols, cols);
        else SoftmaxReference.Forward<double>(y, x, x.Length / cols, cols);
        return y;
    }

    private static int[][] SoftmaxShapes => TDevice.Small ? [[1, 1], [5, 17], [4, 197]] : [[1, 1], [3, 7], [5, 17], [2, 16], [2, 3, 50], [4, 197]];

    [TestCaseSource(nameof(SoftmaxShapes))]
    public void Softmax(int[] shape) => new GradCheck
    {
        Device = TDevice.Device,
        Name = "softmax", Shapes = [shape], Op = t => t[0].Softmax(), Reference = x => SoftmaxRef(x[0], shape[^1], false),
        Init = (_, _, rng) => (float)(rng.NextDouble() * 6 - 3),
    }.Run();

    [TestCaseSource(nameof(SoftmaxShapes))]
    public void LogSoftmax(int[] shape) => new GradCheck
    {
        Device = TDevice.Device,
        Name = "log_softmax", Shapes = [shape], Op = t => t[0].LogSoftmax(), Reference = x => SoftmaxRef(x[0], shape[^1], true),
        Init = (_, _, rng) => (float)(rng.NextDouble() * 6 - 3),
    }.Run();

    [Test]
    public void SoftmaxModelSize()
    {
        CpuOnly();
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "softmax_9600x50", Shapes = [[9600, 50]], Op = t => t[0].Softmax(), Reference = x => SoftmaxRef(x[0], 50, false), MaxGradChecks = 20,
        }.Run();
    }

    /// <summary>The kernels' literal reference (<see cref="LayerNormReference"/>) in double.</summary>
    private static double[] LayerNormRef(double[] x, double[] g, double[] b, int c, double eps)
    {
        var y = new double[x.Length];
        int rows = x.Length / c;
        LayerNormReference.Forward<double>(y, new double[rows], new double[rows], x, g, b, rows, c, eps);
        return y;
    }

    private static int[][] LayerNormShapes => TDevice.Small ? [[3, 1], [2, 33], [2, 5, 192]] : [[3, 1], [1, 7], [4, 17], [2, 33], [2, 5, 192]];

    [TestCaseSource(nameof(LayerNormShapes))]
    public void LayerNorm(int[] shape)
    {
        int c = shape[^1];
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "layernorm", Shapes = [shape, [c], [c]], Op = t => Tensor.LayerNorm(t[0], t[1], t[2], 1e-5f),
            Reference = x => LayerNormRef(x[0], x[1], x[2], c, 1e-5),
            // C = 1 normalises to exactly 0: the input gradient is 0 but eps makes it well defined.
            GradAtol = 5e-4, GradRtol = 5e-3,
        }.Run();
    }

    [Test]
    public void LayerNormModelSize()
    {
        CpuOnly();
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "layernorm_3200x192", Shapes = [[3200, 192], [192], [192]], Op = t => Tensor.LayerNorm(t[0], t[1], t[2]),
            Reference = x => LayerNormRef(x[0], x[1], x[2], 192, 1e-5), MaxGradChecks = 6, ForwardAtol = 2e-5,
        }.Run();
    }

    /// <summary>softmax(scale·QKᵀ)V per head: the kernels' literal reference (<see cref="AttentionReference"/>) in double.</summary>
    public static double[] AttentionRef(double[] q, double[] k, double[] v, int bh, int nq, int nk, int d, double scale)
    {
        var o = new double[bh * nq * d];
        AttentionReference.Forward(o, new double[bh * nq], q, k, v, bh, nq, nk, d, scale);
        return o;
    }

    [TestCase(1, 1, 1, 1, 1)]
    [TestCase(2, 3, 5, 5, 7)]
    [TestCase(1, 2, 31, 33, 16)]
    [TestCase(2, 1, 17, 1, 17)]
    [TestCase(1, 3, 50, 50, 64)]
    public void Attention(int b, int h, int nq, int nk, int d)
    {
        double scale = 1 / Math.Sqrt(d);
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "attention", Shapes = [[b, h, nq, d], [b, h, nk, d], [b, h, nk, d]],
            Op = t => Tensor.Attention(t[0], t[1], t[2]),
            Reference = x => AttentionRef(x[0], x[1], x[2], b * h, nq, nk, d, scale),
            MaxGradChecks = 80,
        }.Run();
    }

    [Test, Description("The bench model's attention: 192 heads × 50 tokens × 64, forward everywhere and sampled gradients")]
    public void AttentionModelSize()
    {
        CpuOnly();
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "attention_192x50x64", Shapes = [[192, 50, 64], [192, 50, 64], [192, 50, 64]],
            Op = t => Tensor.Attention(t[0], t[1], t[2]),
            Reference = x => AttentionRef(x[0], x[1], x[2], 192, 50, 50, 64, 0.125),
            MaxGradChecks = 3,
        }.Run();
    }

    [Test]
    public void AttentionRejectsMismatchedHeads()
    {
        using var q = Tensor.Zeros(2, 5, 8);
        using var k = Tensor.Zeros(3, 5, 8);
        var ex = Assert.Throws<ShapeException>(() => Tensor.Attention(q, k, k))!;
        Assert.That(ex.Message, Does.Contain("attention").And.Contain("[2, 5, 8]").And.Contain("[3, 5, 8]"));
    }

    /// <summary>
    /// timm's self-attention in double: qkv [batch, N, 3, H, D] is split into q, k, v [batch·H, N, D], attended
    /// (<see cref="AttentionRef"/>) and merged back to o [batch, N, H, D].
    /// </summary>
    public static double[] SelfAttentionRef(double[] qkv, int batch, int n, int heads, int d, double scale)
    {
        int c = heads * d, bh = batch * heads;
        double[] q = new double[bh * n * d], k = new double[bh * n * d], v = new double[bh * n * d];
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
                for (int r = 0; r < n; r++)
                    for (int e = 0; e < d; e++)
                    {
                        int dst = ((b * heads + h) * n + r) * d + e, src = (b * n + r) * 3 * c + h * d + e;
                        q[dst] = qkv[src];
                        k[dst] = qkv[src + c];
                        v[dst] = qkv[src + 2 * c];
                    }
        var o = AttentionRef(q, k, v, bh, n, n, d, scale);
        var y = new double[batch * n * c];
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
                for (int r = 0; r < n; r++)
                    for (int e = 0; e < d; e++)
                        y[(b * n + r) * c + h * d + e] = o[((b * heads + h) * n + r) * d + e];
        return y;
    }

    // qkv shapes [..., N, 3·H·D] and H: one token, one head, D = 1, no batch axis; one token per image with 3 heads;
    // N one short of a 32-row tile with D = 20 (not a multiple of 16); N one past it with H = 1 and no batch axis; two
    // batch axes with D = 7; the bench model's N = 50, H = 3, D = 64 for one image.
    [TestCase(new[] { 1, 3 }, 1)]
    [TestCase(new[] { 2, 1, 36 }, 3)]
    [TestCase(new[] { 2, 31, 180 }, 3)]
    [TestCase(new[] { 33, 48 }, 1)]
    [TestCase(new[] { 2, 33, 60 }, 1)]
    [TestCase(new[] { 2, 2, 5, 42 }, 2)]
    [TestCase(new[] { 1, 50, 576 }, 3)]
    public void SelfAttention(int[] shape, int heads)
    {
        int n = shape[^2], d = shape[^1] / (3 * heads), batch = ShapeUtil.Numel(shape[..^2]);
        double scale = 1 / Math.Sqrt(d);
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "self_attention", Shapes = [shape],
            Op = t => Tensor.SelfAttention(t[0], heads),
            Reference = x => SelfAttentionRef(x[0], batch, n, heads, d, scale),
            Init = (_, _, rng) => (float)(rng.NextDouble() * 4 - 2),
            MaxGradChecks = 120,
        }.Run();
    }

    [Test]
    public void SelfAttentionHonoursScale()
    {
        const int n = 7, heads = 2, d = 5;
        new GradCheck
        {
            Device = TDevice.Device,
            Name = "self_attention_scale", Shapes = [[2, n, 3 * heads * d]],
            Op = t => Tensor.SelfAttention(t[0], heads, scale: 0.7f),
            Reference = x => SelfAttentionRef(x[0], 2, n, heads, d, 0.7f),
        }.Run();
    }

    /// <summary>
    /// The old path of MultiHeadSelfAttention — q, k, v copied out of qkv as [B, H, N, D] windows, fused attention,
    /// heads merged by a permute copy — gives the same output and the same dqkv bit for bit: the layouts change
    /// addresses, not arithmetic, so the model's numbers are unchanged.
    /// </summary>
    [TestCase(2, 33, 3, 20)]
    [TestCase(2, 50, 3, 64)]
    [TestCase(1, 1, 1, 16)]
    public void SelfAttentionEqualsSplitAttentionMerge(int b, int n, int heads, int d)
    {
        int c = heads * d;
        var data = Check.Random(b * n * 3 * c, 31 + n + d, -2f, 2f);
        var gData = Check.Random(b * n * c, 32 + n + d);

        (float[] O, float[] Dqkv) Run(bool packed)
        {
            using var scope = new TensorScope();
            var qkv = Tensor.FromSpan(data, [b, n, 3 * c], TDevice.Device);
            qkv.RequiresGrad = true;
            Tensor o;
            if (packed)
            {
                o = Tensor.SelfAttention(qkv, heads);
            }
            else
            {
                int[] shape = [b, heads, n, d], strides = [n * 3 * c, d, 3 * c, 1];
                var q = qkv.AsStrided(shape, strides, 0);
                var k = qkv.AsStrided(shape, strides, c);
                var v = qkv.AsStrided(shape, strides, 2 * c);
                o = Tensor.Attention(q, k, v).Permute(0, 2, 1, 3).Reshape(b, n, c);
            }
            (o * Tensor.FromSpan(gData, [b, n, c], TDevice.Device)).Sum().Backward();
            var result = (o.ToArray(), qkv.Grad!.ToArray());
            qkv.ZeroGrad();
            return result;
        }

        var (oNew, gNew) = Run(packed: true);
        var (oOld, gOld) = Run(packed: false);
        Assert.That(oNew.All(float.IsFinite) && gNew.All(float.IsFinite), Is.True, "finite results");
        Assert.That(oNew, Is.EqualTo(oOld), "o");
        Assert.That(gNew, Is.EqualTo(gOld), "dqkv");
    }

    /// <summary>
    /// dqkv is rented without a zero fill and written by the attention backward alone (dq, dk and dv tile it): with
    /// every rented buffer poisoned with NaN, each of its elements must come back finite and match the reference.
    /// </summary>
    [TestCase(2, 31, 3, 20)]
    [TestCase(1, 1, 2, 16)]
    public void SelfAttentionWritesEveryElementOfDqkv(int b, int n, int heads, int d)
    {
        int c = heads * d, bh = b * heads;
        var data = Check.Random(b * n * 3 * c, 41 + n, -2f, 2f);
        var gData = Check.Random(b * n * c, 42 + n);
        bool poison = CpuPool.PoisonOnRent, poisonIlgpu = IlgpuBackend.PoisonOnRent;
        CpuPool.PoisonOnRent = true;
        IlgpuBackend.PoisonOnRent = true;
        try
        {
            using var scope = new TensorScope();
            var qkv = Tensor.FromSpan(data, [b, n, 3 * c], TDevice.Device);
            qkv.RequiresGrad = true;
            var o = Tensor.SelfAttention(qkv, heads);
            (o * Tensor.FromSpan(gData, [b, n, c], TDevice.Device)).Sum().Backward();
            var dqkv = qkv.Grad!.ToArray();
            qkv.ZeroGrad();
            for (int i = 0; i < dqkv.Length; i++)
                if (!float.IsFinite(dqkv[i])) Assert.Fail($"dqkv[{i}] (row {i / (3 * c)}, column {i % (3 * c)}) was never written");

            // The same gradient from the reference backward on split copies, so the check is not just "finite".
            var l = AttentionLayout.PackedQkv(n, heads, d);
            float scale = 1f / MathF.Sqrt(d);
            var q = AttentionLayouts.Take(data, l.Q, bh, n, d);
            var k = AttentionLayouts.Take(data, l.K, bh, n, d);
            var v = AttentionLayouts.Take(data, l.V, bh, n, d);
            var dO = AttentionLayouts.Take(gData, l.O, bh, n, d);
            var oRef = new float[bh * n * d];
            var lse = new float[bh * n];
            AttentionReference.Forward(oRef, lse, q, k, v, bh, n, n, d, scale);
            var dqRef = new float[q.Length];
            var dkRef = new float[k.Length];
            var dvRef = new float[v.Length];
            AttentionReference.Backward(dqRef, dkRef, dvRef, q, k, v, oRef, dO, lse, bh, n, n, d, scale);
            Check.Close(AttentionLayouts.Take(dqkv, l.Q, bh, n, d), dqRef, 1e-4, 1e-3, "dq part of dqkv");
            Check.Close(AttentionLayouts.Take(dqkv, l.K, bh, n, d), dkRef, 1e-4, 1e-3, "dk part of dqkv");
            Check.Close(AttentionLayouts.Take(dqkv, l.V, bh, n, d), dvRef, 1e-4, 1e-3, "dv part of dqkv");
        }
        finally
        {
            CpuPool.PoisonOnRent = poison;
            IlgpuBackend.PoisonOnRent = poisonIlgpu;
        }
    }

    [Test]
    public void SelfAttentionRejectsBadShapes()
    {
        using var scope = new TensorScope();
        var flat = Tensor.Zeros([18], TDevice.Device);
        var ex = Assert.Throws<ShapeException>(() => Tensor.SelfAttention(flat, 2))!;
        Assert.That(ex.Message, Does.Contain("self_attention").And.Contain("[18]"));
        var odd = Tensor.Zeros([2, 5, 20], TDevice.Device); // 20 is not a multiple of 3·H = 6
        ex = Assert.Throws<ShapeException>(() => Tensor.SelfAttention(odd, 2))!;
        Assert.That(ex.Message, Does.Contain("self_attention").And.Contain("[2, 5, 20]").And.Contain("3·H·D"));
        ex = Assert.Throws<ShapeException>(() => Tensor.SelfAttention(Tensor.Zeros([2, 5, 18], TDevice.Device), 0))!;
        Assert.That(ex.Message, Does.Contain("self_attention").And.Contain("heads = 0"));
        ex = Assert.Throws<ShapeException>(() => Tensor.SelfAttention(Tensor.Zeros([2, 0, 18], TDevice.Device), 3))!;
        Assert.That(ex.Message, Does.Contain("self_attention").And.Contain("[2, 0, 18]"));
    }
}
