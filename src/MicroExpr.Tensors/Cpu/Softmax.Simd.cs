namespace MicroExpr.Tensors.Cpu;

/// <summary>Fused softmax and log-softmax over the last axis, SIMD. (Placeholder: implemented by the softmax work.)</summary>
public static unsafe class SoftmaxSimd
{
    public static void Forward(float* y, float* x, int rows, int cols, int threads) => throw new NotImplementedException();
    public static void Backward(float* dx, float* y, float* dy, int rows, int cols, int threads) => throw new NotImplementedException();
    public static void LogForward(float* y, float* x, int rows, int cols, int threads) => throw new NotImplementedException();
    public static void LogBackward(float* dx, float* y, float* dy, int rows, int cols, int threads) => throw new NotImplementedException();
}
