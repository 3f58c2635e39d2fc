namespace MicroExpr.Tensors.Cpu;

/// <summary>Fused LayerNorm, SIMD. (Placeholder: implemented by the LayerNorm work.)</summary>
public static unsafe class LayerNormSimd
{
    public static void Forward(float* y, float* mean, float* rstd, float* x, float* gamma, float* beta, int rows, int c,
        float eps, int threads) => throw new NotImplementedException();

    public static void Backward(float* dx, float* dgamma, float* dbeta, float* dy, float* x, float* mean, float* rstd,
        float* gamma, int rows, int c, int threads) => throw new NotImplementedException();
}
