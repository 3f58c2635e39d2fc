namespace MicroExpr.Kernels;

/// <summary>
/// Reference GEMM: <c>C[M,N] = alpha·op(A)·op(B) + beta·C</c>, row-major, with the same argument conventions as
/// <see cref="GemmSimd.Run"/>. Literal scalar loops with a double accumulator; no threads, no SIMD. For tests only.
/// </summary>
public static class GemmReference
{
    /// <summary>Float result; with beta = 0, C is overwritten without being read.</summary>
    public static void Run(Span<float> c, int ldc, ReadOnlySpan<float> a, int lda, bool transA, ReadOnlySpan<float> b, int ldb,
        bool transB, int m, int n, int k, float alpha, float beta)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                c[i * ldc + j] = (float)Element(c, ldc, a, lda, transA, b, ldb, transB, i, j, k, alpha, beta);
    }

    /// <summary>
    /// The result in double precision, as a dense [M,N] array (row stride N). <paramref name="c"/> is read only when
    /// beta ≠ 0 (its elements at row stride ldc).
    /// </summary>
    public static double[] RunDouble(ReadOnlySpan<float> c, int ldc, ReadOnlySpan<float> a, int lda, bool transA,
        ReadOnlySpan<float> b, int ldb, bool transB, int m, int n, int k, float alpha, float beta)
    {
        var r = new double[(long)m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                r[(long)i * n + j] = Element(c, ldc, a, lda, transA, b, ldb, transB, i, j, k, alpha, beta);
        return r;
    }

    /// <summary>alpha·Σ_p op(A)[i, p]·op(B)[p, j] + beta·C[i, j] in double; C[i, j] is read only when beta ≠ 0.</summary>
    static double Element(ReadOnlySpan<float> c, int ldc, ReadOnlySpan<float> a, int lda, bool transA, ReadOnlySpan<float> b, int ldb,
        bool transB, int i, int j, int k, float alpha, float beta)
    {
        double s = 0;
        for (int p = 0; p < k; p++)
            s += (double)A(a, lda, transA, i, p) * B(b, ldb, transB, p, j);
        double r = alpha * s;
        if (beta != 0f) r += (double)beta * c[i * ldc + j];
        return r;
    }

    static float A(ReadOnlySpan<float> a, int lda, bool transA, int i, int p) => transA ? a[p * lda + i] : a[i * lda + p];
    static float B(ReadOnlySpan<float> b, int ldb, bool transB, int p, int j) => transB ? b[j * ldb + p] : b[p * ldb + j];
}
