using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MicroExpr.Tensors.Cpu;

/// <summary>
/// Exact GELU, SIMD: y = ½·x·(1 + erf(x/√2)); backward dx = dy·(Φ(x) + x·φ(x)), φ(x) = e^{-x²/2}/√(2π).
/// erf uses Abramowitz–Stegun 7.1.26 (|error| ≤ 1.5e-7, below float32 resolution of the result),
/// evaluated in Vector512 lanes (Vector256 when 512 is not accelerated) with a scalar tail.
/// </summary>
public static unsafe class GeluSimd
{
    private const float P = 0.3275911f, A1 = 0.254829592f, A2 = -0.284496736f, A3 = 1.421413741f,
        A4 = -1.453152027f, A5 = 1.061405429f, InvSqrt2 = 0.70710678118654752f, InvSqrt2Pi = 0.3989422804014327f;

    public static void Forward(float* y, float* x, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= n - 16; i += 16)
            {
                var v = Vector512.Load(x + i);
                Vector512.Store(0.5f * v * (Vector512<float>.One + Erf(v * InvSqrt2)), y + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - 8; i += 8)
            {
                var v = Vector256.Load(x + i);
                Vector256.Store(0.5f * v * (Vector256<float>.One + Erf(v * InvSqrt2)), y + i);
            }
        }
        for (; i < n; i++) y[i] = 0.5f * x[i] * (1f + Erf(x[i] * InvSqrt2));
    }

    public static void Backward(float* dx, float* x, float* dy, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= n - 16; i += 16)
            {
                var v = Vector512.Load(x + i);
                var cdf = 0.5f * (Vector512<float>.One + Erf(v * InvSqrt2));
                var pdf = Vector512.Exp(-0.5f * v * v) * InvSqrt2Pi;
                Vector512.Store(Vector512.Load(dy + i) * (cdf + v * pdf), dx + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - 8; i += 8)
            {
                var v = Vector256.Load(x + i);
                var cdf = 0.5f * (Vector256<float>.One + Erf(v * InvSqrt2));
                var pdf = Vector256.Exp(-0.5f * v * v) * InvSqrt2Pi;
                Vector256.Store(Vector256.Load(dy + i) * (cdf + v * pdf), dx + i);
            }
        }
        for (; i < n; i++)
        {
            float v = x[i];
            float cdf = 0.5f * (1f + Erf(v * InvSqrt2));
            float pdf = MathF.Exp(-0.5f * v * v) * InvSqrt2Pi;
            dx[i] = dy[i] * (cdf + v * pdf);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Erf(Vector512<float> x)
    {
        var ax = Vector512.Abs(x);
        var t = Vector512<float>.One / (Vector512<float>.One + P * ax);
        var poly = t * (Vector512.Create(A1) + t * (Vector512.Create(A2) + t * (Vector512.Create(A3) + t * (Vector512.Create(A4) + t * A5))));
        var r = Vector512<float>.One - poly * Vector512.Exp(-ax * ax);
        return Vector512.CopySign(r, x);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Erf(Vector256<float> x)
    {
        var ax = Vector256.Abs(x);
        var t = Vector256<float>.One / (Vector256<float>.One + P * ax);
        var poly = t * (Vector256.Create(A1) + t * (Vector256.Create(A2) + t * (Vector256.Create(A3) + t * (Vector256.Create(A4) + t * A5))));
        var r = Vector256<float>.One - poly * Vector256.Exp(-ax * ax);
        return Vector256.CopySign(r, x);
    }

    private static float Erf(float x)
    {
        float ax = MathF.Abs(x);
        float t = 1f / (1f + P * ax);
        float poly = t * (A1 + t * (A2 + t * (A3 + t * (A4 + t * A5))));
        return MathF.CopySign(1f - poly * MathF.Exp(-ax * ax), x);
    }
}
