using MicroExpr.Kernels;

namespace MicroExpr.Tests.Kernels;

/// <summary>
/// The teaching versions of attention that <c>bench attention --version</c> lines up with the SIMD and ILGPU kernels: v1
/// <see cref="AttentionNaive"/> (N×N scores) and v2 <see cref="AttentionOnline"/> (online softmax over key tiles), each
/// against the double reference <see cref="AttentionReference"/>, outputs NaN-poisoned, on shapes with N = 1, odd N,
/// N one short of and one past the 64-key tile, two tiles plus one, Nq ≠ Nk, D = 1 and odd D, the bench model's and
/// ViT's 197, on 1 and 2 threads.
/// </summary>
public unsafe class AttentionVersionsTests
{
    private static readonly (int BH, int Nq, int Nk, int D)[] Shapes =
    {
        (1, 1, 1, 1), (3, 7, 7, 5), (2, 63, 63, 16), (2, 65, 65, 17), (1, 33, 129, 64), (2, 50, 50, 64), (1, 197, 197, 64), (2, 5, 200, 3),
    };

    public enum Version { Naive, Online }

    [Test]
    public void ForwardMatchesTheDoubleReference([Values] Version version, [Values(1, 2)] int threads)
    {
        int seed = 900 + (int)version * 50 + threads;
        foreach (var (bh, nq, nk, d) in Shapes)
        {
            float scale = 1f / MathF.Sqrt(d);
            // Scores up to about ±4·√d·scale: the softmax is far from uniform, so a wrong max or rescale shows.
            var q = Check.Random(bh * nq * d, seed++, -2f, 2f);
            var k = Check.Random(bh * nk * d, seed++, -2f, 2f);
            var v = Check.Random(bh * nk * d, seed++);
            var oRef = new double[bh * nq * d];
            var lseRef = new double[bh * nq];
            AttentionReference.Forward(oRef, lseRef, q.Select(x => (double)x).ToArray(), k.Select(x => (double)x).ToArray(),
                v.Select(x => (double)x).ToArray(), bh, nq, nk, d, scale);
            var o = Check.NaNs(bh * nq * d);
            var lse = Check.NaNs(bh * nq);
            fixed (float* po = o, pl = lse, pq = q, pk = k, pv = v)
            {
                if (version == Version.Naive) AttentionNaive.Forward(po, pl, pq, pk, pv, bh, nq, nk, d, scale, threads);
                else AttentionOnline.Forward(po, pl, pq, pk, pv, bh, nq, nk, d, scale, threads);
            }
            string what = $"{version} threads={threads} BH={bh} Nq={nq} Nk={nk} D={d}";
            Check.Close(o, oRef, 1e-5, 1e-4, what + " o");
            Check.Close(lse, lseRef, 1e-5, 1e-5, what + " lse");
        }
    }

    [Test]
    public void ABadDimensionIsRefusedInOneLine([Values] Version version)
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() =>
        {
            var o = new float[1];
            fixed (float* p = o)
            {
                if (version == Version.Naive) AttentionNaive.Forward(p, p, p, p, p, 1, 0, 1, 1, 1f, 1);
                else AttentionOnline.Forward(p, p, p, p, p, 1, 0, 1, 1, 1f, 1);
            }
        });
        Assert.That(ex!.Message, Does.Contain("BH, Nq, Nk, D must be ≥ 1 (got 1, 0, 1, 1)"));
    }
}
