namespace MicroExpr.Tensors.Cpu;

/// <summary>Fused multi-head attention, SIMD. (Placeholder: implemented by the attention work.)</summary>
public static unsafe class AttentionSimd
{
    public static void Forward(float* o, float* lse, float* q, float* k, float* v, int bh, int nq, int nk, int d,
        float scale, int threads) => throw new NotImplementedException();

    public static void Backward(float* dq, float* dk, float* dv, float* q, float* k, float* v, float* o, float* dO,
        float* lse, int bh, int nq, int nk, int d, float scale, int threads) => throw new NotImplementedException();
}
