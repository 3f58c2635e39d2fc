using MicroExpr.Tensors.Cpu;

namespace MicroExpr.Tests;

/// <summary>GemmSimd against a double-precision reference: all transposes, edge shapes, block boundaries, alpha/beta, threads, batches.</summary>
public unsafe class GemmTests
{
    static readonly (bool, bool)[] Trans = [(false, false), (true, false), (false, true), (true, true)];

    /// <summary>
    /// Runs GemmSimd (the micro-kernel path forced when the hardware has it, else the best available one) on seeded inputs with padded leading dimensions and checks every valid C element against
    /// <see cref="GemmReference.RunDouble"/>, and that the padding columns of C were not touched.
    /// </summary>
    static void Verify(int m, int n, int k, bool tA, bool tB, float alpha, float beta, int threads,
        GemmSimd.Path path = GemmSimd.Path.Auto, bool noDirect = false, int pad = 3, int seed = 1, bool bias = false, bool residual = false,
        bool gelu = false)
    {
        int lda = (tA ? m : k) + pad, ldb = (tB ? k : n) + pad, ldc = n + pad;
        int aRows = tA ? k : m, bRows = tB ? n : k;
        var a = Check.Random(Math.Max(1, aRows * lda), seed);
        var b = Check.Random(Math.Max(1, bRows * ldb), seed + 1);
        var c = beta == 0f ? Check.NaNs(m * ldc) : Check.Random(m * ldc, seed + 2);
        var c0 = (float[])c.Clone();
        var expected = GemmReference.RunDouble(c0, ldc, a, lda, tA, b, ldb, tB, m, n, k, alpha, beta);
        var bv = bias ? Check.Random(n, seed + 3) : null;
        if (bv != null)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) expected[i * n + j] += bv[j];
        int ldr = n + 5;
        var rv = residual ? Check.Random(m * ldr, seed + 4) : null;
        if (rv != null)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) expected[i * n + j] += rv[i * ldr + j];
        if (gelu)
            for (int i = 0; i < expected.Length; i++) expected[i] = GeluSimdTests.GeluD(expected[i]);

        GemmSimd.ForcePath = path;
        GemmSimd.NoDirect = noDirect;
        try
        {
            fixed (float* pa = a, pb = b, pc = c, pbias = bv, pr = rv)
            {
                if (bv is null && rv is null && !gelu) GemmSimd.Run(pc, ldc, pa, lda, tA, pb, ldb, tB, m, n, k, alpha, beta, threads);
                else GemmSimd.RunAffine(pc, ldc, pa, lda, tA, pb, ldb, tB, m, n, k, alpha, beta, pbias, threads, pr, ldr, gelu);
            }
        }
        finally
        {
            GemmSimd.ForcePath = GemmSimd.Path.Auto;
            GemmSimd.NoDirect = false;
        }

        var got = new float[m * n];
        for (int i = 0; i < m; i++)
        {
            Array.Copy(c, i * ldc, got, i * n, n);
            for (int j = n; j < ldc; j++)
                if (BitConverter.SingleToInt32Bits(c[i * ldc + j]) != BitConverter.SingleToInt32Bits(c0[i * ldc + j]))
                    Assert.Fail($"padding C[{i},{j}] was written");
        }
        double atol = 1e-5 * Math.Sqrt(Math.Max(k, 1)) * Math.Max(1, Math.Abs(alpha)) + 1e-6;
        Check.Close(got, expected, atol, 1e-4,
            $"gemm m={m} n={n} k={k} tA={tA} tB={tB} alpha={alpha} beta={beta} threads={threads} path={path} noDirect={noDirect} bias={bias} residual={residual} gelu={gelu}");
    }

    // M, N, K: ones, odd sizes, vector width ±1 (15/16/17, 31/32/33), micro-tile ±1 (MR = 6: 5/6/7, 13/14; NR = 16 or 32).
    static readonly int[][] EdgeShapes =
    [
        [1, 1, 1], [1, 17, 5], [7, 1, 3], [5, 3, 1], [3, 5, 2],
        [15, 16, 17], [16, 17, 15], [17, 33, 31], [31, 32, 33], [33, 31, 32], [32, 32, 32],
        [5, 31, 7], [6, 32, 8], [7, 33, 6], [13, 65, 29], [14, 31, 9], [15, 64, 3], [29, 47, 11],
    ];

    static IEnumerable<TestCaseData> EdgeCases()
    {
        foreach (var path in new[] { "Avx512", "Avx2", "Scalar" })
            foreach (var (tA, tB) in Trans)
                yield return new TestCaseData(path, tA, tB).SetArgDisplayNames(path, $"tA={tA}", $"tB={tB}");
    }

    [TestCaseSource(nameof(EdgeCases))]
    public void EdgeShapes_PackedPath(string pathName, bool tA, bool tB)
    {
        var path = Enum.Parse<GemmSimd.Path>(pathName);
        foreach (var s in EdgeShapes)
        {
            Verify(s[0], s[1], s[2], tA, tB, 1f, 0f, 1, path, noDirect: true);
            Verify(s[0], s[1], s[2], tA, tB, -0.75f, 0.5f, 1, path, noDirect: true, seed: 7);
        }
    }

    /// <summary>Bias and residual folded into the C tiles, GELU on finished tiles: every path and transpose, edge tiles, beta 0 (C holds NaN) and beta ≠ 0.</summary>
    [TestCaseSource(nameof(EdgeCases))]
    public void Bias_EdgeShapes(string pathName, bool tA, bool tB)
    {
        var path = Enum.Parse<GemmSimd.Path>(pathName);
        foreach (var s in EdgeShapes)
        {
            Verify(s[0], s[1], s[2], tA, tB, 1f, 0f, 1, path, noDirect: true, bias: true);
            Verify(s[0], s[1], s[2], tA, tB, -0.75f, 0.5f, 1, path, noDirect: true, seed: 7, bias: true);
            Verify(s[0], s[1], s[2], tA, tB, 1f, 0f, 1, path, bias: true, seed: 3); // small ones take the direct path
            Verify(s[0], s[1], s[2], tA, tB, 1f, 0f, 1, path, noDirect: true, bias: true, residual: true, seed: 9);
            Verify(s[0], s[1], s[2], tA, tB, 0.5f, 0.25f, 1, path, noDirect: true, residual: true, seed: 11);
            Verify(s[0], s[1], s[2], tA, tB, 1f, 0f, 1, path, residual: true, seed: 13);
            Verify(s[0], s[1], s[2], tA, tB, 1f, 0f, 1, path, noDirect: true, bias: true, gelu: true, seed: 15);
            Verify(s[0], s[1], s[2], tA, tB, 1f, 0f, 1, path, gelu: true, seed: 17);
        }
    }

    /// <summary>GELU after the last of several K slices (K = 1100: three), bias and residual before the first, on every path.</summary>
    [TestCase("Avx512")]
    [TestCase("Avx2")]
    [TestCase("Scalar")]
    public void Gelu_AfterTheLastOfSeveralKSlices(string pathName)
    {
        var path = Enum.Parse<GemmSimd.Path>(pathName);
        Verify(13, 65, 1100, false, true, 1f, 0f, 1, path, noDirect: true, bias: true, residual: true, gelu: true, seed: 21);
        Verify(14, 31, 1100, true, false, 1f, 0f, 1, path, noDirect: true, bias: true, gelu: true, seed: 23);
    }

    /// <summary>y = x·Wᵀ + b + y in place: a residual that is C itself (beta 0), on the tile fast path (N = 32) and the general one.</summary>
    [TestCase(40, 20, 24)]
    [TestCase(40, 32, 24)]
    [TestCase(3, 5, 4)]
    [TestCase(300, 70, 200)]
    public void Residual_MayBeCItself(int m, int n, int k)
    {
        var a = Check.Random(m * k, 31);
        var w = Check.Random(n * k, 32);
        var bias = Check.Random(n, 33);
        var c = Check.Random(m * n, 34);
        var expected = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double acc = c[i * n + j] + bias[j];
                for (int p = 0; p < k; p++) acc += (double)a[i * k + p] * w[j * k + p];
                expected[i * n + j] = acc;
            }
        fixed (float* pa = a, pw = w, pb = bias, pc = c)
            GemmSimd.RunAffine(pc, n, pa, k, false, pw, k, true, m, n, k, 1f, 0f, pb, 2, pc, n);
        Check.Close(c, expected, 1e-5 * Math.Sqrt(k) + 1e-6, 1e-4, $"in-place residual m={m} n={n} k={k}");
    }

    /// <summary>Bias and residual with the work split over threads along M and along N (the pointers follow the split), several K slices.</summary>
    [TestCase(3200, 192, 192)]
    [TestCase(50, 2100, 70)]
    [TestCase(97, 577, 1100)]
    [TestCase(8, 5, 192)]
    public void Bias_Threads(int m, int n, int k)
    {
        foreach (int threads in new[] { 2, 3 })
        {
            Verify(m, n, k, false, true, 1f, 0f, threads, bias: true);
            Verify(m, n, k, true, false, 1f, 1f, threads, bias: true, seed: 5);
            Verify(m, n, k, false, true, 1f, 0f, threads, bias: true, residual: true, seed: 6);
            Verify(m, n, k, false, false, 1f, 0f, threads, residual: true, seed: 8);
            Verify(m, n, k, false, true, 1f, 0f, threads, bias: true, gelu: true, seed: 10);
        }
    }

    [TestCaseSource(nameof(EdgeCases))]
    public void EdgeShapes_Auto(string pathName, bool tA, bool tB)
    {
        var path = Enum.Parse<GemmSimd.Path>(pathName);
        foreach (var s in EdgeShapes)
            foreach (int threads in new[] { 1, 2 })
                Verify(s[0], s[1], s[2], tA, tB, 1.25f, 0f, threads, path);
    }

    // Cross the KC (512: K is cut into equal slices of at most 512), MC (120) and NC (2048) block boundaries.
    static readonly int[][] BlockShapes =
    [
        [70, 40, 511], [70, 40, 512], [37, 45, 513], [20, 33, 1030], [9, 40, 767],
        [119, 33, 20], [121, 35, 20], [253, 70, 9], [481, 20, 7],
        [7, 2047, 9], [7, 2049, 9], [13, 4127, 3],
        [243, 97, 300],
    ];

    [TestCaseSource(nameof(EdgeCases))]
    public void BlockBoundaries(string pathName, bool tA, bool tB)
    {
        var path = Enum.Parse<GemmSimd.Path>(pathName);
        if (path == GemmSimd.Path.Scalar) { Verify(37, 45, 257, tA, tB, 1f, 0f, 2, path); return; }
        foreach (var s in BlockShapes)
            foreach (int threads in new[] { 1, 2 })
                Verify(s[0], s[1], s[2], tA, tB, threads == 1 ? 1f : 0.5f, threads == 1 ? 0f : 1f, threads, path);
    }

    [TestCase(1f, 0f)]
    [TestCase(2f, 0f)]
    [TestCase(1f, 1f)]
    [TestCase(-1.5f, 0.25f)]
    [TestCase(0.5f, -1f)]
    [TestCase(0f, 0f)]
    [TestCase(0f, 0.5f)]
    public void AlphaBeta(float alpha, float beta)
    {
        foreach (var (tA, tB) in Trans)
            foreach (int threads in new[] { 1, 2 })
            {
                Verify(3, 4, 5, tA, tB, alpha, beta, threads);
                Verify(67, 71, 300, tA, tB, alpha, beta, threads);
            }
    }

    [Test]
    public void KZero_ScalesC()
    {
        Verify(5, 7, 0, false, false, 1f, 0f, 1);
        Verify(5, 7, 0, true, true, 1f, 0.5f, 2);
        Verify(5, 7, 0, false, true, 1f, 0f, 1, bias: true);
        Verify(5, 7, 3, false, true, 0f, 0.5f, 1, bias: true);
    }

    [Test]
    public void Beta1_Accumulates_AcrossCalls()
    {
        const int m = 45, n = 70, k = 300;
        var a = Check.Random(m * k, 11);
        var b = Check.Random(k * n, 12);
        var c = Check.NaNs(m * n);
        fixed (float* pa = a, pb = b, pc = c)
        {
            GemmSimd.Run(pc, n, pa, k, false, pb, n, false, m, n, k, 1f, 0f, 2);
            GemmSimd.Run(pc, n, pa, k, false, pb, n, false, m, n, k, 1f, 1f, 2);
        }
        var once = GemmReference.RunDouble(c, n, a, k, false, b, n, false, m, n, k, 1f, 0f);
        for (int i = 0; i < once.Length; i++) once[i] *= 2;
        Check.Close(c, once, 1e-4 * Math.Sqrt(k), 1e-4, "C = A·B then C += A·B");
    }

    [Test]
    public void SameCallTwice_BitIdentical()
    {
        const int m = 300, n = 200, k = 600;
        var a = Check.Random(m * k, 21);
        var b = Check.Random(k * n, 22);
        var c1 = Check.NaNs(m * n);
        var c2 = Check.NaNs(m * n);
        fixed (float* pa = a, pb = b, p1 = c1, p2 = c2)
        {
            GemmSimd.Run(p1, n, pa, k, false, pb, n, false, m, n, k, 1f, 0f, 2);
            GemmSimd.Run(p2, n, pa, k, false, pb, n, false, m, n, k, 1f, 0f, 2);
        }
        for (int i = 0; i < c1.Length; i++)
            Assert.That(BitConverter.SingleToInt32Bits(c2[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(c1[i])), $"element {i}");
    }

    // The model's real shapes: QKV projection forward, and its weight gradient (Xᵀ·dY, K = 3200), on 2 threads.
    [Test]
    public void ModelShape_Qkv_Forward() => Verify(3200, 576, 192, false, false, 1f, 0f, 2, pad: 0);

    [Test]
    public void ModelShape_Qkv_WeightGradient() => Verify(192, 576, 3200, true, false, 1f, 1f, 2, pad: 0);

    [Test]
    public void ModelShape_Fc2_InputGradient() => Verify(640, 768, 192, false, true, 1f, 0f, 2, pad: 0);

    static void VerifyBatched(int batch, int m, int n, int k, bool tA, bool tB, float alpha, float beta, int threads, int gap)
    {
        int lda = tA ? m : k, ldb = tB ? k : n, ldc = n;
        long sA = (long)(tA ? k : m) * lda + gap, sB = (long)(tB ? n : k) * ldb + gap, sC = (long)m * ldc + gap;
        var a = Check.Random((int)(sA * batch), 31);
        var b = Check.Random((int)(sB * batch), 32);
        var c = beta == 0f ? Check.NaNs((int)(sC * batch)) : Check.Random((int)(sC * batch), 33);
        var c0 = (float[])c.Clone();
        fixed (float* pa = a, pb = b, pc = c)
            GemmSimd.RunBatched(batch, pc, sC, ldc, pa, sA, lda, tA, pb, sB, ldb, tB, m, n, k, alpha, beta, threads);
        for (int i = 0; i < batch; i++)
        {
            var exp = GemmReference.RunDouble(c0.AsSpan((int)(i * sC)), ldc, a.AsSpan((int)(i * sA)), lda, tA,
                b.AsSpan((int)(i * sB)), ldb, tB, m, n, k, alpha, beta);
            Check.Close(c.AsSpan((int)(i * sC), m * n), exp, 1e-5 * Math.Sqrt(k) + 1e-6, 1e-4,
                $"batch {i}/{batch} m={m} n={n} k={k} tA={tA} tB={tB} threads={threads}");
            for (int g = 0; g < gap; g++)
            {
                int idx = (int)(i * sC) + m * n + g;
                Assert.That(BitConverter.SingleToInt32Bits(c[idx]), Is.EqualTo(BitConverter.SingleToInt32Bits(c0[idx])), $"gap element {idx} written");
            }
        }
    }

    [Test]
    public void Batched_Attention_Scores_QKt() => VerifyBatched(192, 50, 50, 64, false, true, 0.125f, 0f, 2, 0);

    [Test]
    public void Batched_Attention_Values() => VerifyBatched(192, 50, 64, 50, false, false, 1f, 0f, 2, 0);

    [Test]
    public void Batched_AllTransposes_WithGaps()
    {
        foreach (var (tA, tB) in Trans)
            foreach (int threads in new[] { 1, 2 })
            {
                VerifyBatched(5, 19, 33, 21, tA, tB, 1f, 0f, threads, 5);
                VerifyBatched(3, 70, 45, 130, tA, tB, -0.5f, 1f, threads, 3);
                VerifyBatched(1, 130, 70, 45, tA, tB, 1f, 0f, threads, 1);
                VerifyBatched(8, 4, 3, 2, tA, tB, 1f, 0.5f, threads, 2);
            }
    }
}
