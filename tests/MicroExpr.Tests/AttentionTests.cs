using MicroExpr.Tensors.Cpu;

namespace MicroExpr.Tests;

/// <summary>
/// AttentionSimd against AttentionReference (scores materialised in double), plus a finite-difference gradcheck of
/// the reference backward itself. Outputs are NaN-prefilled so an element the kernel never writes fails.
/// </summary>
public unsafe class AttentionTests
{
    // (BH, Nq, Nk): single elements, tiles that do not divide 6 or 16, Nq ≠ Nk both ways, several key tiles (197 > 3·64).
    static readonly (int Bh, int Nq, int Nk)[] Shapes =
    {
        (1, 1, 1), (3, 31, 33), (1, 33, 31), (3, 50, 50), (1, 197, 50), (3, 1, 197), (1, 197, 197), (3, 50, 1),
    };

    static readonly int[] Dims = { 1, 7, 16, 17, 64, 65 };

    static IEnumerable<TestCaseData> Cases()
    {
        foreach (var (bh, nq, nk) in Shapes)
            foreach (int d in Dims)
                foreach (int threads in new[] { 1, 2 })
                    yield return new TestCaseData(bh, nq, nk, d, threads).SetArgDisplayNames($"bh{bh}", $"nq{nq}", $"nk{nk}", $"d{d}", $"t{threads}");
        yield return new TestCaseData(192, 50, 50, 64, 2).SetArgDisplayNames("bh192", "nq50", "nk50", "d64", "t2");
        yield return new TestCaseData(12, 197, 197, 64, 2).SetArgDisplayNames("bh12", "nq197", "nk197", "d64", "t2");
    }

    sealed record Problem(int Bh, int Nq, int Nk, int D, float Scale, float[] Q, float[] K, float[] V, float[] DO);

    static Problem Make(int bh, int nq, int nk, int d, int seed, float inputScale = 1f)
    {
        var q = Check.Random(bh * nq * d, seed, -inputScale, inputScale);
        var k = Check.Random(bh * nk * d, seed + 1, -inputScale, inputScale);
        var v = Check.Random(bh * nk * d, seed + 2);
        var dO = Check.Random(bh * nq * d, seed + 3);
        return new Problem(bh, nq, nk, d, 1f / MathF.Sqrt(d), q, k, v, dO);
    }

    static (float[] O, float[] Lse) RefForward(Problem p)
    {
        var o = new float[p.Bh * p.Nq * p.D];
        var lse = new float[p.Bh * p.Nq];
        AttentionReference.Forward(o, lse, p.Q, p.K, p.V, p.Bh, p.Nq, p.Nk, p.D, p.Scale);
        return (o, lse);
    }

    static (float[] O, float[] Lse) SimdForward(Problem p, int threads)
    {
        var o = Check.NaNs(p.Bh * p.Nq * p.D);
        var lse = Check.NaNs(p.Bh * p.Nq);
        fixed (float* po = o, pl = lse, pq = p.Q, pk = p.K, pv = p.V)
            AttentionSimd.Forward(po, pl, pq, pk, pv, p.Bh, p.Nq, p.Nk, p.D, p.Scale, threads);
        return (o, lse);
    }

    static (float[] Dq, float[] Dk, float[] Dv) RefBackward(Problem p, float[] o, float[] lse)
    {
        var dq = new float[p.Q.Length];
        var dk = new float[p.K.Length];
        var dv = new float[p.V.Length];
        AttentionReference.Backward(dq, dk, dv, p.Q, p.K, p.V, o, p.DO, lse, p.Bh, p.Nq, p.Nk, p.D, p.Scale);
        return (dq, dk, dv);
    }

    static (float[] Dq, float[] Dk, float[] Dv) SimdBackward(Problem p, float[] o, float[] lse, int threads)
    {
        var dq = Check.NaNs(p.Q.Length);
        var dk = Check.NaNs(p.K.Length);
        var dv = Check.NaNs(p.V.Length);
        fixed (float* pdq = dq, pdk = dk, pdv = dv, pq = p.Q, pk = p.K, pv = p.V, po = o, pdo = p.DO, pl = lse)
            AttentionSimd.Backward(pdq, pdk, pdv, pq, pk, pv, po, pdo, pl, p.Bh, p.Nq, p.Nk, p.D, p.Scale, threads);
        return (dq, dk, dv);
    }

    [TestCaseSource(nameof(Cases))]
    public void ForwardMatchesReference(int bh, int nq, int nk, int d, int threads)
    {
        var p = Make(bh, nq, nk, d, seed: 1000 + 7 * nq + 13 * nk + d);
        var (oRef, lseRef) = RefForward(p);
        var (o, lse) = SimdForward(p, threads);
        Check.Close(o, oRef, 2e-6, 1e-4, "O");
        Check.Close(lse, lseRef, 2e-6, 1e-5, "lse");
    }

    [TestCaseSource(nameof(Cases))]
    public void BackwardMatchesReference(int bh, int nq, int nk, int d, int threads)
    {
        var p = Make(bh, nq, nk, d, seed: 2000 + 7 * nq + 13 * nk + d);
        var (o, lse) = RefForward(p);
        var (dqRef, dkRef, dvRef) = RefBackward(p, o, lse);
        var (dq, dk, dv) = SimdBackward(p, o, lse, threads);
        Check.Close(dq, dqRef, 1e-5, 1e-3, "dQ");
        Check.Close(dk, dkRef, 1e-5, 1e-3, "dK");
        Check.Close(dv, dvRef, 1e-5, 1e-3, "dV");
    }

    [Test]
    public void BackwardOverwritesRatherThanAccumulates()
    {
        var p = Make(2, 33, 70, 16, seed: 5);
        var (o, lse) = RefForward(p);
        var (dqRef, dkRef, dvRef) = RefBackward(p, o, lse);
        var dq = Check.Random(p.Q.Length, 9, 100f, 200f);
        var dk = Check.Random(p.K.Length, 10, 100f, 200f);
        var dv = Check.Random(p.V.Length, 11, 100f, 200f);
        fixed (float* pdq = dq, pdk = dk, pdv = dv, pq = p.Q, pk = p.K, pv = p.V, po = o, pdo = p.DO, pl = lse)
            AttentionSimd.Backward(pdq, pdk, pdv, pq, pk, pv, po, pdo, pl, p.Bh, p.Nq, p.Nk, p.D, p.Scale, 2);
        Check.Close(dq, dqRef, 1e-5, 1e-3, "dQ");
        Check.Close(dk, dkRef, 1e-5, 1e-3, "dK");
        Check.Close(dv, dvRef, 1e-5, 1e-3, "dV");
    }

    [Test]
    public void ResultsDoNotDependOnThreadCount()
    {
        var p = Make(5, 197, 131, 64, seed: 77);
        var (o1, l1) = SimdForward(p, 1);
        var (o2, l2) = SimdForward(p, 2);
        Assert.That(o2, Is.EqualTo(o1), "O");
        Assert.That(l2, Is.EqualTo(l1), "lse");
        var (dq1, dk1, dv1) = SimdBackward(p, o1, l1, 1);
        var (dq2, dk2, dv2) = SimdBackward(p, o1, l1, 2);
        Assert.That(dq2, Is.EqualTo(dq1), "dQ");
        Assert.That(dk2, Is.EqualTo(dk1), "dK");
        Assert.That(dv2, Is.EqualTo(dv1), "dV");
    }

    /// <summary>
    /// Q and K scaled by 30: scores reach the hundreds, so exp(S) overflows float without a running max, and the max
    /// moves between key tiles (Nk = 197 spans four tiles), which exercises the rescaling of the accumulators.
    /// </summary>
    [TestCase(1)]
    [TestCase(2)]
    public void LargeScoresAreStable(int threads)
    {
        var p = Make(3, 50, 197, 64, seed: 31, inputScale: 30f);
        var (oRef, lseRef) = RefForward(p);
        Assert.That(lseRef.Max(), Is.GreaterThan(200f), "the case must overflow a naive exp(S) in float");
        var (o, lse) = SimdForward(p, threads);
        // fp32 scores of magnitude ~10³ carry ~10⁻⁴ absolute error, which exp turns into ~10⁻⁴ relative error of P.
        Check.Close(o, oRef, 2e-3, 2e-3, "O");
        Check.Close(lse, lseRef, 1e-3, 1e-5, "lse");
        var (dqRef, dkRef, dvRef) = RefBackward(p, oRef, lseRef);
        var (dq, dk, dv) = SimdBackward(p, oRef, lseRef, threads);
        Check.Close(dv, dvRef, 2e-3, 2e-3, "dV");
        // dQ and dK are scale·dS·K and scale·dSᵀ·Q with |K|, |Q| ≤ 30: absolute errors grow by that factor.
        Check.Close(dq, dqRef, 0.1, 2e-3, "dQ");
        Check.Close(dk, dkRef, 0.1, 2e-3, "dK");
    }

    /// <summary>Central differences of loss = Σ O∘G through the reference forward verify the reference backward.</summary>
    [Test]
    public void ReferenceBackwardMatchesFiniteDifferences()
    {
        const int bh = 2, nq = 3, nk = 4, d = 3;
        var p = Make(bh, nq, nk, d, seed: 4242);
        var g = p.DO; // loss = Σ O∘G  ⇒  dO = G
        var (o, lse) = RefForward(p);
        var (dq, dk, dv) = RefBackward(p, o, lse);

        double Loss()
        {
            var (oo, _) = RefForward(p);
            double s = 0;
            for (int i = 0; i < oo.Length; i++) s += (double)oo[i] * g[i];
            return s;
        }

        void Verify(float[] x, float[] grad, string what)
        {
            const double eps = 1e-2;
            for (int i = 0; i < x.Length; i++)
            {
                float x0 = x[i];
                float xp = (float)(x0 + eps), xm = (float)(x0 - eps);
                x[i] = xp;
                double lp = Loss();
                x[i] = xm;
                double lm = Loss();
                x[i] = x0;
                double fd = (lp - lm) / ((double)xp - xm);
                Assert.That(grad[i], Is.EqualTo(fd).Within(1e-4 + 1e-3 * Math.Abs(fd)), $"{what}[{i}]");
            }
        }

        Verify(p.Q, dq, "dQ");
        Verify(p.K, dk, "dK");
        Verify(p.V, dv, "dV");
        Assert.That(dq.Max(Math.Abs), Is.GreaterThan(1e-3f), "gradients must not be trivially zero");
    }
}
