namespace MicroExpr.Tensors.Cpu;

/// <summary>GEMM, SIMD: C[M,N] = alpha·op(A)·op(B) + beta·C, row-major. (Placeholder: implemented by the GEMM work.)</summary>
public static unsafe class GemmSimd
{
    public static void Run(float* c, int ldc, float* a, int lda, bool transA, float* b, int ldb, bool transB,
        int m, int n, int k, float alpha, float beta, int threads) => throw new NotImplementedException();

    public static void RunBatched(int batch, float* c, long strideC, int ldc, float* a, long strideA, int lda, bool transA,
        float* b, long strideB, int ldb, bool transB, int m, int n, int k, float alpha, float beta, int threads)
        => throw new NotImplementedException();
}
