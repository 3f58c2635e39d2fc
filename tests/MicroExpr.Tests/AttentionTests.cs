using MicroExpr.Tensors;
using MicroExpr.Tensors.Cpu;

namespace MicroExpr.Tests;

/// <summary>
/// AttentionSimd against AttentionReference (scores materialised in double), plus a finite-difference gradcheck of
/// the reference backward itself. Outputs are NaN-prefilled so an element the kernel never writes fails. Strided
/// operands (mixed layouts with gaps, and q, k, v read in place from a packed QKV buffer) are checked against the
/// contiguous reference, with NaN in every gap so that a read or write outside a layout fails.
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

    // ---------------------------------------------------------------- strided layouts

    // (BH, heads, Nq, Nk, D): one element; N one short of / one past a 32 and a 5-row block with D = 20 (not a multiple
    // of 16: the padded-copy path); Nk past one key tile with D = 17; the bench model's 50 × 64 with H = 3; N = 197 over
    // four key tiles; one query against 197 keys; one key.
    static readonly (int Bh, int Heads, int Nq, int Nk, int D)[] StridedShapes =
    {
        (1, 1, 1, 1, 1), (3, 3, 31, 33, 20), (2, 1, 33, 70, 17), (6, 3, 50, 50, 64), (4, 2, 197, 65, 16), (6, 3, 1, 197, 64),
        (2, 2, 66, 1, 7),
    };

    static IEnumerable<TestCaseData> StridedCases()
    {
        foreach (var (bh, heads, nq, nk, d) in StridedShapes)
            foreach (int threads in new[] { 1, 2, 3 })
                yield return new TestCaseData(bh, heads, nq, nk, d, threads)
                    .SetArgDisplayNames($"bh{bh}", $"h{heads}", $"nq{nq}", $"nk{nk}", $"d{d}", $"t{threads}");
    }

    /// <summary>
    /// q, k, v, o each in its own buffer and its own layout (token-major and head-major, with row, head and batch gaps
    /// and offsets): forward and backward against the contiguous reference; nothing outside a layout is written.
    /// </summary>
    [TestCaseSource(nameof(StridedCases))]
    public void MixedLayoutsMatchReference(int bh, int heads, int nq, int nk, int d, int threads)
    {
        var p = Make(bh, nq, nk, d, seed: 3000 + 7 * nq + 13 * nk + d + threads);
        var l = AttentionLayouts.Mixed(heads, nq, nk, d);
        var (oRef, lseRef) = RefForward(p);
        var q = AttentionLayouts.Placed(l.Q, p.Q, bh, nq, d);
        var k = AttentionLayouts.Placed(l.K, p.K, bh, nk, d);
        var v = AttentionLayouts.Placed(l.V, p.V, bh, nk, d);
        var o = Check.NaNs(AttentionLayouts.Length(l.O, bh, nq, d));
        var lse = Check.NaNs(bh * nq);
        fixed (float* po = o, pl = lse, pq = q, pk = k, pv = v)
            AttentionSimd.Forward(po, pl, pq, pk, pv, bh, nq, nk, d, p.Scale, l, threads);
        Check.Close(AttentionLayouts.Take(o, l.O, bh, nq, d), oRef, 2e-6, 1e-4, "O");
        Check.Close(lse, lseRef, 2e-6, 1e-5, "lse");
        AttentionLayouts.AssertGapsUntouched(o, "O", bh, d, (l.O, nq));

        var (dqRef, dkRef, dvRef) = RefBackward(p, oRef, lseRef);
        var oIn = AttentionLayouts.Placed(l.O, oRef, bh, nq, d);
        var dO = AttentionLayouts.Placed(l.O, p.DO, bh, nq, d);
        var dq = Check.NaNs(AttentionLayouts.Length(l.Q, bh, nq, d));
        var dk = Check.NaNs(AttentionLayouts.Length(l.K, bh, nk, d));
        var dv = Check.NaNs(AttentionLayouts.Length(l.V, bh, nk, d));
        fixed (float* pdq = dq, pdk = dk, pdv = dv, pq = q, pk = k, pv = v, po = oIn, pdo = dO, pl = lseRef)
            AttentionSimd.Backward(pdq, pdk, pdv, pq, pk, pv, po, pdo, pl, bh, nq, nk, d, p.Scale, l, threads);
        Check.Close(AttentionLayouts.Take(dq, l.Q, bh, nq, d), dqRef, 1e-5, 1e-3, "dQ");
        Check.Close(AttentionLayouts.Take(dk, l.K, bh, nk, d), dkRef, 1e-5, 1e-3, "dK");
        Check.Close(AttentionLayouts.Take(dv, l.V, bh, nk, d), dvRef, 1e-5, 1e-3, "dV");
        AttentionLayouts.AssertGapsUntouched(dq, "dQ", bh, d, (l.Q, nq));
        AttentionLayouts.AssertGapsUntouched(dk, "dK", bh, d, (l.K, nk));
        AttentionLayouts.AssertGapsUntouched(dv, "dV", bh, d, (l.V, nk));
    }

    // (B, H, N, D) of a packed QKV buffer [B, N, 3·H·D].
    static readonly (int B, int Heads, int N, int D)[] PackedShapes =
    {
        (1, 1, 1, 1), (2, 3, 31, 20), (1, 1, 33, 16), (2, 3, 50, 64), (1, 2, 197, 17), (3, 3, 1, 64), (64, 3, 50, 64),
    };

    static IEnumerable<TestCaseData> PackedCases()
    {
        foreach (var (b, heads, n, d) in PackedShapes)
            foreach (int threads in new[] { 1, 2, 3 })
            {
                if (b * heads * n > 5000 && threads != 2) continue; // the bench model's size: once, on 2 threads
                yield return new TestCaseData(b, heads, n, d, threads).SetArgDisplayNames($"b{b}", $"h{heads}", $"n{n}", $"d{d}", $"t{threads}");
            }
    }

    /// <summary>
    /// q, k, v read in place from qkv [B, N, 3, H, D] and o written as [B, N, H, D]; dq, dk, dv written into one dqkv
    /// [B, N, 3·C]. Against the reference, and bit for bit against the contiguous kernel on the split copies (the
    /// layout changes addresses, not arithmetic); every element of o and dqkv is written.
    /// </summary>
    [TestCaseSource(nameof(PackedCases))]
    public void PackedQkvMatchesReferenceAndContiguousKernel(int b, int heads, int n, int d, int threads)
    {
        int c = heads * d, bh = b * heads;
        var l = AttentionLayout.PackedQkv(n, heads, d);
        var qkv = Check.Random(b * n * 3 * c, 4000 + 7 * n + d + threads);
        var p = new Problem(bh, n, n, d, 1f / MathF.Sqrt(d), AttentionLayouts.Take(qkv, l.Q, bh, n, d),
            AttentionLayouts.Take(qkv, l.K, bh, n, d), AttentionLayouts.Take(qkv, l.V, bh, n, d), Check.Random(bh * n * d, 4100 + n));
        var (oRef, lseRef) = RefForward(p);
        var (oC, lseC) = SimdForward(p, threads);

        var o = Check.NaNs(b * n * c);
        var lse = Check.NaNs(bh * n);
        fixed (float* po = o, pl = lse, pqkv = qkv)
            AttentionSimd.Forward(po, pl, pqkv, pqkv, pqkv, bh, n, n, d, p.Scale, l, threads);
        var oDense = AttentionLayouts.Take(o, l.O, bh, n, d); // o [B, N, C] is exactly covered by the layout
        Check.Close(oDense, oRef, 2e-6, 1e-4, "O");
        Check.Close(lse, lseRef, 2e-6, 1e-5, "lse");
        Assert.That(oDense, Is.EqualTo(oC), "O packed vs contiguous kernel");
        Assert.That(lse, Is.EqualTo(lseC), "lse packed vs contiguous kernel");

        var (dqRef, dkRef, dvRef) = RefBackward(p, oC, lseC);
        var (dqC, dkC, dvC) = SimdBackward(p, oC, lseC, threads);
        var dO = new float[b * n * c];
        AttentionLayouts.Place(dO, l.O, p.DO, bh, n, d);
        var dqkv = Check.NaNs(qkv.Length);
        fixed (float* pd = dqkv, pqkv = qkv, po = o, pdo = dO, pl = lse)
            AttentionSimd.Backward(pd, pd, pd, pqkv, pqkv, pqkv, po, pdo, pl, bh, n, n, d, p.Scale, l, threads);
        Assert.That(dqkv.All(float.IsFinite), Is.True, "every element of dqkv is written");
        var dq = AttentionLayouts.Take(dqkv, l.Q, bh, n, d);
        var dk = AttentionLayouts.Take(dqkv, l.K, bh, n, d);
        var dv = AttentionLayouts.Take(dqkv, l.V, bh, n, d);
        Check.Close(dq, dqRef, 1e-5, 1e-3, "dQ");
        Check.Close(dk, dkRef, 1e-5, 1e-3, "dK");
        Check.Close(dv, dvRef, 1e-5, 1e-3, "dV");
        Assert.That(dq, Is.EqualTo(dqC), "dQ packed vs contiguous kernel");
        Assert.That(dk, Is.EqualTo(dkC), "dK packed vs contiguous kernel");
        Assert.That(dv, Is.EqualTo(dvC), "dV packed vs contiguous kernel");
    }

    /// <summary>
    /// The reference through mixed layouts does the same double arithmetic in the same order as on contiguous copies,
    /// so its results are bitwise equal, and it writes nothing outside the layouts (it is the oracle of the strided
    /// kernels, here and in the ILGPU tests).
    /// </summary>
    [Test]
    public void ReferenceThroughLayoutsEqualsContiguousReference()
    {
        const int bh = 6, heads = 3, nq = 7, nk = 9, d = 5;
        var p = Make(bh, nq, nk, d, seed: 61);
        var l = AttentionLayouts.Mixed(heads, nq, nk, d);
        var (oRef, lseRef) = RefForward(p);
        var (dqRef, dkRef, dvRef) = RefBackward(p, oRef, lseRef);
        var q = AttentionLayouts.Placed(l.Q, p.Q, bh, nq, d);
        var k = AttentionLayouts.Placed(l.K, p.K, bh, nk, d);
        var v = AttentionLayouts.Placed(l.V, p.V, bh, nk, d);
        var o = Check.NaNs(AttentionLayouts.Length(l.O, bh, nq, d));
        var lse = Check.NaNs(bh * nq);
        AttentionReference.Forward(o, lse, q, k, v, bh, nq, nk, d, p.Scale, l);
        Assert.That(AttentionLayouts.Take(o, l.O, bh, nq, d), Is.EqualTo(oRef), "O");
        Assert.That(lse, Is.EqualTo(lseRef), "lse");
        AttentionLayouts.AssertGapsUntouched(o, "O", bh, d, (l.O, nq));

        var dO = AttentionLayouts.Placed(l.O, p.DO, bh, nq, d);
        var dq = Check.NaNs(AttentionLayouts.Length(l.Q, bh, nq, d));
        var dk = Check.NaNs(AttentionLayouts.Length(l.K, bh, nk, d));
        var dv = Check.NaNs(AttentionLayouts.Length(l.V, bh, nk, d));
        AttentionReference.Backward(dq, dk, dv, q, k, v, o, dO, lse, bh, nq, nk, d, p.Scale, l);
        Assert.That(AttentionLayouts.Take(dq, l.Q, bh, nq, d), Is.EqualTo(dqRef), "dQ");
        Assert.That(AttentionLayouts.Take(dk, l.K, bh, nk, d), Is.EqualTo(dkRef), "dK");
        Assert.That(AttentionLayouts.Take(dv, l.V, bh, nk, d), Is.EqualTo(dvRef), "dV");
        AttentionLayouts.AssertGapsUntouched(dq, "dQ", bh, d, (l.Q, nq));
        AttentionLayouts.AssertGapsUntouched(dk, "dK", bh, d, (l.K, nk));
        AttentionLayouts.AssertGapsUntouched(dv, "dV", bh, d, (l.V, nk));
    }

    [Test]
    public void RejectsLayoutWhoseHeadsDoNotDivideBh()
    {
        var buf = new float[4 * 5 * 8];
        var l = AttentionLayout.PackedQkv(5, 3, 8) with { O = AttentionOperandLayout.Contiguous(5, 8) };
        fixed (float* pb = buf)
        {
            float* b = pb;
            var ex = Assert.Throws<ArgumentException>(() => AttentionSimd.Forward(b, b, b, b, b, 4, 5, 5, 8, 1f, l, 1))!;
            Assert.That(ex.Message, Does.Contain("layout of q").And.Contain("BH = 4"));
        }
    }
}
