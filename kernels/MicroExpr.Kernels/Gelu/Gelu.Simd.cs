using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MicroExpr.Kernels;

/// <summary>
/// Exact GELU, SIMD: y = x·Φ(x) with Φ(x) = ½(1 + erf(x/√2)); backward dx = dy·(Φ(x) + x·φ(x)), φ(x) = e^{−x²/2}/√(2π).
/// <para>
/// erf is a rational minimax fit, erf(z) ≈ z·P(z²)/Q(z²) on z clamped to [−4, 4] (beyond it erf is ±1 in float32),
/// P of degree 6 and Q of degree 4 in z² (the coefficients of Eigen's and TensorFlow's fast float erf): 11 FMAs
/// and one division, no exponential. Against a double erf on a 1e-4 grid over [−6, 6] its largest error is 3.3e-7 (at
/// z ≈ −3.93), so GELU is within 1e-6 absolute for |x| ≤ 6 (largest 9.3e-7, at x ≈ −5.57); the tests hold erf to
/// 4e-7 on every lane width and GELU to 1e-6 + 2e-7·|x| over [−12, 12]. The backward's φ needs one exponential, computed as
/// 2^u with u = −x²/2·log₂e by the toolkit's <see cref="Simd.Exp2(Vector512{float})"/> (0 below u = −125, where φ is
/// 0 in float32 terms). erf and 2^u are the toolkit's (<see cref="Simd"/>), written once for every width.
/// Why not the runtime's Vector512.Exp and a classic erf = 1 − poly(t)·e^{−z²}: measured 3× slower per element on
/// the bench model's [3200, 768] activations, where GELU was 6–8 % of a step.
/// </para>
/// Lanes: one generic body over <see cref="ISimd{TV}"/>, run at Vector512, Vector256 or Vector128 (<see cref="SimdIsaSelect"/>);
/// the last n mod lanes elements go through masked loads and stores with the same formulas.
/// </summary>
public static unsafe class GeluSimd
{
    private const float InvSqrt2 = 0.70710678118654752f, InvSqrt2Pi = 0.3989422804014327f;
    private const float HalfLog2E = 0.72134752044448170f; // ½·log₂e: −x²/2·log₂e = −x²·HalfLog2E

    /// <summary>y[n] = GELU(x[n]) (y may be x).</summary>
    public static void Forward(float* y, float* x, int n)
    {
        switch (SimdIsaSelect.Current)
        {
            case SimdIsa.V512: Forward<Simd512, Vector512<float>>(y, x, n); break;
            case SimdIsa.V256: Forward<Simd256, Vector256<float>>(y, x, n); break;
            default: Forward<Simd128, Vector128<float>>(y, x, n); break;
        }
    }

    /// <summary>dx[n] = dy·GELU'(x) (dx may be dy).</summary>
    public static void Backward(float* dx, float* x, float* dy, int n)
    {
        switch (SimdIsaSelect.Current)
        {
            case SimdIsa.V512: Backward<Simd512, Vector512<float>>(dx, x, dy, n); break;
            case SimdIsa.V256: Backward<Simd256, Vector256<float>>(dx, x, dy, n); break;
            default: Backward<Simd128, Vector128<float>>(dx, x, dy, n); break;
        }
    }

    private static void Forward<TS, TV>(float* y, float* x, int n) where TS : struct, ISimd<TV> where TV : struct
    {
        int i = 0;
        for (; i <= n - TS.Count; i += TS.Count) TS.Store(y + i, Gelu<TS, TV>(TS.Load(x + i)));
        if (i < n) TS.StoreFirst(y + i, n - i, Gelu<TS, TV>(TS.LoadFirst(x + i, n - i, 0f)));
    }

    private static void Backward<TS, TV>(float* dx, float* x, float* dy, int n) where TS : struct, ISimd<TV> where TV : struct
    {
        int i = 0;
        for (; i <= n - TS.Count; i += TS.Count) TS.Store(dx + i, TS.Mul(TS.Load(dy + i), Slope<TS, TV>(TS.Load(x + i))));
        if (i < n)
            TS.StoreFirst(dx + i, n - i, TS.Mul(TS.LoadFirst(dy + i, n - i, 0f), Slope<TS, TV>(TS.LoadFirst(x + i, n - i, 0f))));
    }

    /// <summary>x·Φ(x), Φ(x) = ½ + ½·erf(x/√2).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV Gelu<TS, TV>(TV v) where TS : struct, ISimd<TV> where TV : struct
    {
        var half = TS.Splat(0.5f);
        return TS.Mul(v, TS.Fma(half, TS.Erf(TS.Mul(v, TS.Splat(InvSqrt2))), half));
    }

    /// <summary>GELU'(x) = Φ(x) + x·φ(x), φ(x) = 2^(−x²·½log₂e)/√(2π).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV Slope<TS, TV>(TV v) where TS : struct, ISimd<TV> where TV : struct
    {
        var half = TS.Splat(0.5f);
        var cdf = TS.Fma(half, TS.Erf(TS.Mul(v, TS.Splat(InvSqrt2))), half);
        var pdf = TS.Mul(TS.Exp2(TS.Mul(TS.Mul(v, v), TS.Splat(-HalfLog2E))), TS.Splat(InvSqrt2Pi));
        return TS.Fma(v, pdf, cdf);
    }
}
