using MicroExpr.Kernels;
using MicroExpr.Tensors;
using MicroExpr.Tensors.Cpu;

namespace MicroExpr.Tests.Kernels;

[TestFixture(KernelBackend.Cpu)]
[TestFixture(KernelBackend.Cuda, Category = "Gpu")]
public class AttentionKernelsTests : KernelFixture
{
    public AttentionKernelsTests(KernelBackend backend) : base(backend) { }

    // (BH, Nq, Nk, D): N one past a 32-row tile, one short of it, single key/query, the bench model's N = 50, ViT's 197
    // (BH kept at 1–2 there: the CPU accelerator is slow), an odd D and the largest D.
    private static readonly (int BH, int Nq, int Nk, int D)[] Shapes =
    {
        (2, 1, 1, 16), (2, 31, 33, 16), (1, 33, 31, 64), (1, 50, 50, 64), (1, 197, 197, 64), (1, 33, 50, 17), (1, 17, 40, 128),
    };

    [Test]
    public void ForwardAndBackwardMatchReference([Values(1, 4)] int warps)
    {
        using var kernels = new AttentionKernels(Accelerator, warps);
        int seed = 500 + warps * 100;
        foreach (var (bh, nq, nk, d) in Shapes)
        {
            if (IsCpu && warps == 1 && nq > 100) continue; // slow on the CPU accelerator; N = 197 is covered by warps = 4
            float scale = 1f / MathF.Sqrt(d);
            int qn = bh * nq * d, kn = bh * nk * d;
            var q = Check.Random(qn, seed++, -2f, 2f);
            var k = Check.Random(kn, seed++, -2f, 2f);
            var v = Check.Random(kn, seed++);
            var dO = Check.Random(qn, seed++);
            var oRef = new float[qn];
            var lseRef = new float[bh * nq];
            AttentionReference.Forward(oRef, lseRef, q, k, v, bh, nq, nk, d, scale);

            using var dQ = Upload(q);
            using var dK = Upload(k);
            using var dV = Upload(v);
            using var dOut = Upload(Check.NaNs(qn));
            using var dLse = Upload(Check.NaNs(bh * nq));
            kernels.Forward(Accelerator.DefaultStream, dOut.View, dLse.View, dQ.View, dK.View, dV.View, bh, nq, nk, d, scale);
            string what = $"attention warps={warps} BH={bh} Nq={nq} Nk={nk} D={d}";
            var o = Download(dOut);
            var lse = Download(dLse);
            Check.Close(o, oRef, 1e-5, 1e-4, what + " o");
            Check.Close(lse, lseRef, 1e-5, 1e-5, what + " lse");

            var dqRef = new float[qn];
            var dkRef = new float[kn];
            var dvRef = new float[kn];
            AttentionReference.Backward(dqRef, dkRef, dvRef, q, k, v, o, dO, lse, bh, nq, nk, d, scale);
            using var dDo = Upload(dO);
            using var dDq = Upload(Check.NaNs(qn));
            using var dDk = Upload(Check.NaNs(kn));
            using var dDv = Upload(Check.NaNs(kn));
            kernels.Backward(Accelerator.DefaultStream, dDq.View, dDk.View, dDv.View, dQ.View, dK.View, dV.View, dOut.View, dDo.View,
                dLse.View, bh, nq, nk, d, scale);
            Check.Close(Download(dDq), dqRef, 1e-4, 1e-3, what + " dq");
            Check.Close(Download(dDk), dkRef, 1e-4, 1e-3, what + " dk");
            Check.Close(Download(dDv), dvRef, 1e-4, 1e-3, what + " dv");
        }
    }

    /// <summary>
    /// q, k, v, o each in its own buffer and layout (token-major and head-major with gaps and offsets, see
    /// <see cref="AttentionLayouts.Mixed"/>): forward and backward against the contiguous CPU reference; gaps are NaN
    /// in the inputs (a stray read poisons the result) and must stay NaN in the outputs (no stray write).
    /// </summary>
    [Test]
    public void MixedLayoutsMatchReference([Values(1, 2, 4)] int warps)
    {
        using var kernels = new AttentionKernels(Accelerator, warps);
        int seed = 700 + warps * 100;
        // (BH, heads, Nq, Nk, D): tiles one short / one past 32 with an odd D, the model's D = 64 with H = 3, one query.
        foreach (var (bh, heads, nq, nk, d) in new[] { (4, 2, 31, 33, 17), (3, 3, 33, 40, 64), (2, 1, 1, 50, 20) })
        {
            var l = AttentionLayouts.Mixed(heads, nq, nk, d);
            var s = l;
            float scale = 1f / MathF.Sqrt(d);
            var q = Check.Random(bh * nq * d, seed++, -2f, 2f);
            var k = Check.Random(bh * nk * d, seed++, -2f, 2f);
            var v = Check.Random(bh * nk * d, seed++);
            var dO = Check.Random(bh * nq * d, seed++);
            var oRef = new float[bh * nq * d];
            var lseRef = new float[bh * nq];
            AttentionReference.Forward(oRef, lseRef, q, k, v, bh, nq, nk, d, scale);
            var dqRef = new float[q.Length];
            var dkRef = new float[k.Length];
            var dvRef = new float[v.Length];
            AttentionReference.Backward(dqRef, dkRef, dvRef, q, k, v, oRef, dO, lseRef, bh, nq, nk, d, scale);
            string what = $"attention mixed layouts warps={warps} BH={bh} H={heads} Nq={nq} Nk={nk} D={d}";

            using var bQ = Upload(AttentionLayouts.Placed(l.Q, q, bh, nq, d));
            using var bK = Upload(AttentionLayouts.Placed(l.K, k, bh, nk, d));
            using var bV = Upload(AttentionLayouts.Placed(l.V, v, bh, nk, d));
            using var bO = Upload(Check.NaNs(AttentionLayouts.Length(l.O, bh, nq, d)));
            using var bLse = Upload(Check.NaNs(bh * nq));
            kernels.Forward(Accelerator.DefaultStream, bO.View, bLse.View, bQ.View, bK.View, bV.View, bh, nq, nk, d, scale, s);
            var o = Download(bO);
            Check.Close(AttentionLayouts.Take(o, l.O, bh, nq, d), oRef, 1e-5, 1e-4, what + " o");
            Check.Close(Download(bLse), lseRef, 1e-5, 1e-5, what + " lse");
            AttentionLayouts.AssertGapsUntouched(o, what + " o", bh, d, (l.O, nq));

            // Backward from the reference O and lse (in the O layout), so each kernel is checked on its own.
            using var bOIn = Upload(AttentionLayouts.Placed(l.O, oRef, bh, nq, d));
            using var bDo = Upload(AttentionLayouts.Placed(l.O, dO, bh, nq, d));
            using var bLseIn = Upload(lseRef);
            using var bDq = Upload(Check.NaNs(AttentionLayouts.Length(l.Q, bh, nq, d)));
            using var bDk = Upload(Check.NaNs(AttentionLayouts.Length(l.K, bh, nk, d)));
            using var bDv = Upload(Check.NaNs(AttentionLayouts.Length(l.V, bh, nk, d)));
            kernels.Backward(Accelerator.DefaultStream, bDq.View, bDk.View, bDv.View, bQ.View, bK.View, bV.View, bOIn.View, bDo.View,
                bLseIn.View, bh, nq, nk, d, scale, s);
            var dq = Download(bDq);
            var dk = Download(bDk);
            var dv = Download(bDv);
            Check.Close(AttentionLayouts.Take(dq, l.Q, bh, nq, d), dqRef, 1e-4, 1e-3, what + " dq");
            Check.Close(AttentionLayouts.Take(dk, l.K, bh, nk, d), dkRef, 1e-4, 1e-3, what + " dk");
            Check.Close(AttentionLayouts.Take(dv, l.V, bh, nk, d), dvRef, 1e-4, 1e-3, what + " dv");
            AttentionLayouts.AssertGapsUntouched(dq, what + " dq", bh, d, (l.Q, nq));
            AttentionLayouts.AssertGapsUntouched(dk, what + " dk", bh, d, (l.K, nk));
            AttentionLayouts.AssertGapsUntouched(dv, what + " dv", bh, d, (l.V, nk));
        }
    }

    /// <summary>
    /// q, k, v read in place from one qkv [B, N, 3, H, D] buffer, o written as [B, N, H, D], dq, dk, dv into one dqkv
    /// [B, N, 3·C] (the layout of Tensor.SelfAttention): against the CPU reference; every element of dqkv is written.
    /// </summary>
    [Test]
    public void PackedQkvMatchesReference([Values(1, 2, 4)] int warps)
    {
        using var kernels = new AttentionKernels(Accelerator, warps);
        int seed = 900 + warps * 100;
        // (B, H, N, D): N one past a tile with an odd D, the bench model's N = 50 and D = 64 with H = 3, N = 1.
        foreach (var (b, heads, n, d) in new[] { (2, 3, 33, 20), (1, 3, 50, 64), (2, 1, 1, 16) })
        {
            int c = heads * d, bh = b * heads;
            var l = AttentionLayout.PackedQkv(n, heads, d);
            var s = l;
            float scale = 1f / MathF.Sqrt(d);
            var qkv = Check.Random(b * n * 3 * c, seed++, -2f, 2f);
            var q = AttentionLayouts.Take(qkv, l.Q, bh, n, d);
            var k = AttentionLayouts.Take(qkv, l.K, bh, n, d);
            var v = AttentionLayouts.Take(qkv, l.V, bh, n, d);
            var dODense = Check.Random(bh * n * d, seed++);
            var oRef = new float[bh * n * d];
            var lseRef = new float[bh * n];
            AttentionReference.Forward(oRef, lseRef, q, k, v, bh, n, n, d, scale);
            var dqRef = new float[q.Length];
            var dkRef = new float[k.Length];
            var dvRef = new float[v.Length];
            AttentionReference.Backward(dqRef, dkRef, dvRef, q, k, v, oRef, dODense, lseRef, bh, n, n, d, scale);
            string what = $"attention packed qkv warps={warps} B={b} H={heads} N={n} D={d}";

            using var bQkv = Upload(qkv);
            using var bO = Upload(Check.NaNs(b * n * c));
            using var bLse = Upload(Check.NaNs(bh * n));
            kernels.Forward(Accelerator.DefaultStream, bO.View, bLse.View, bQkv.View, bQkv.View, bQkv.View, bh, n, n, d, scale, s);
            var o = Download(bO);
            Check.Close(AttentionLayouts.Take(o, l.O, bh, n, d), oRef, 1e-5, 1e-4, what + " o");
            Check.Close(Download(bLse), lseRef, 1e-5, 1e-5, what + " lse");

            var dO = new float[b * n * c];
            AttentionLayouts.Place(dO, l.O, dODense, bh, n, d);
            var oIn = new float[b * n * c];
            AttentionLayouts.Place(oIn, l.O, oRef, bh, n, d);
            using var bOIn = Upload(oIn);
            using var bDo = Upload(dO);
            using var bLseIn = Upload(lseRef);
            using var bDqkv = Upload(Check.NaNs(qkv.Length));
            kernels.Backward(Accelerator.DefaultStream, bDqkv.View, bDqkv.View, bDqkv.View, bQkv.View, bQkv.View, bQkv.View, bOIn.View,
                bDo.View, bLseIn.View, bh, n, n, d, scale, s);
            var dqkv = Download(bDqkv);
            Assert.That(dqkv.All(float.IsFinite), Is.True, what + ": every element of dqkv is written");
            Check.Close(AttentionLayouts.Take(dqkv, l.Q, bh, n, d), dqRef, 1e-4, 1e-3, what + " dq");
            Check.Close(AttentionLayouts.Take(dqkv, l.K, bh, n, d), dkRef, 1e-4, 1e-3, what + " dk");
            Check.Close(AttentionLayouts.Take(dqkv, l.V, bh, n, d), dvRef, 1e-4, 1e-3, what + " dv");
        }
    }

    [Test]
    public void RejectsLayoutReachingPastItsBuffer()
    {
        using var kernels = new AttentionKernels(Accelerator, 1);
        // A packed layout for B = 1, N = 4, H = 2, D = 8: v (columns 32..47 of each 48-float row) reaches 4·48 floats;
        // the shared qkv buffer is one float short (BH·N·D = 64 would pass a contiguous-size check).
        var s = AttentionLayout.PackedQkv(4, 2, 8);
        using var qkv = Upload(new float[4 * 48 - 1]);
        using var o = Upload(new float[4 * 16]);
        using var lse = Upload(new float[2 * 4]);
        var ex = Assert.Throws<ArgumentException>(() =>
            kernels.Forward(Accelerator.DefaultStream, o.View, lse.View, qkv.View, qkv.View, qkv.View, 2, 4, 4, 8, 1f, s))!;
        Assert.That(ex.Message, Does.Contain("needs " + 4 * 48));
    }

    [Test]
    public void RejectsHeadDimensionAbove128()
    {
        using var kernels = new AttentionKernels(Accelerator, 1);
        using var buf = Upload(new float[4 * 129]);
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            kernels.Forward(Accelerator.DefaultStream, buf.View, buf.View, buf.View, buf.View, buf.View, 1, 1, 1, 129, 1f));
    }
}
