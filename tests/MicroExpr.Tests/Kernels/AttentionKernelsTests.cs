using MicroExpr.Kernels;
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

    [Test]
    public void RejectsHeadDimensionAbove128()
    {
        using var kernels = new AttentionKernels(Accelerator, 1);
        using var buf = Upload(new float[4 * 129]);
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            kernels.Forward(Accelerator.DefaultStream, buf.View, buf.View, buf.View, buf.View, buf.View, 1, 1, 1, 129, 1f));
    }
}
