using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace MicroExpr.Kernels;

/// <summary>Scalar arguments of the unary kernels (n elements, the op, alpha).</summary>
public struct UnaryArgs
{
    public int N;
    public int Op;
    public float Alpha;
}

/// <summary>
/// Element-wise kernels, one thread per element in a grid-stride loop (see <see cref="KernelGrid"/>; v1, the only
/// version: memory bound, coalesced):
/// <list type="bullet">
/// <item>Unary: y[n] = f(x[n]) for every <see cref="UnaryOp"/>; the op is a uniform switch.</item>
/// <item>UnaryBackward: dx[n] = dy·f'(x) given x and y = f(x) (overwrites dx).</item>
/// <item>Binary: z[shape] = a ∘ b, a and b read through rank ≤ 6 broadcasting strides (0 on a broadcast axis), z contiguous.</item>
/// <item>Axpy: y[n] += s·x[n]. Fill: y[n] = v.</item>
/// </list>
/// Exact GELU uses erf by Abramowitz–Stegun 7.1.26 (|error| ≤ 1.5e-7), as the SIMD CPU backend.
/// </summary>
public sealed class ElementwiseKernels
{
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, UnaryArgs> unary;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, UnaryArgs> unaryBackward;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, Strides6, int, int> binary;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, int, float> axpy;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, int, float> fill;

    public ElementwiseKernels(Accelerator accelerator, int groupSize = KernelGrid.DefaultGroupSize)
    {
        Accelerator = accelerator;
        GroupSize = KernelGrid.Resolve(accelerator, groupSize);
        MaxGroups = KernelGrid.MaxGroups(accelerator);
        unary = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, UnaryArgs>(UnaryKernel);
        unaryBackward = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, UnaryArgs>(UnaryBackwardKernel);
        binary = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, Strides6, int, int>(BinaryKernel);
        axpy = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, int, float>(AxpyKernel);
        fill = accelerator.LoadKernel<ArrayView<float>, int, float>(FillKernel);
    }

    public Accelerator Accelerator { get; }
    public int GroupSize { get; }

    /// <summary>Groups per launch at most; the kernels loop grid-stride over the rest.</summary>
    public int MaxGroups { get; }

    /// <summary>y[n] = f(x[n]).</summary>
    public void Unary(AcceleratorStream stream, UnaryOp op, ArrayView<float> y, ArrayView<float> x, int n, float alpha)
    {
        if (n > 0) unary(stream, KernelGrid.For(n, GroupSize, MaxGroups), y, x, new UnaryArgs { N = n, Op = (int)op, Alpha = alpha });
    }

    /// <summary>dx[n] = dy[n]·f'(x[n]) (y = f(x) is given for the ops whose derivative is cheaper from y).</summary>
    public void UnaryBackward(AcceleratorStream stream, UnaryOp op, ArrayView<float> dx, ArrayView<float> x, ArrayView<float> y,
        ArrayView<float> dy, int n, float alpha)
    {
        if (n > 0) unaryBackward(stream, KernelGrid.For(n, GroupSize, MaxGroups), dx, x, y, dy, new UnaryArgs { N = n, Op = (int)op, Alpha = alpha });
    }

    /// <summary>z[shape] = a ∘ b; shape and strides are merged first, rank ≤ 6 after merging.</summary>
    public void Binary(AcceleratorStream stream, BinaryOp op, ArrayView<float> z, int[] shape, ArrayView<float> a, int[] aStrides,
        ArrayView<float> b, int[] bStrides)
    {
        int n = 1;
        foreach (int d in shape) n *= d;
        if (n == 0) return;
        var (ms, ma, mb) = StrideMerge.Merge(shape, aStrides, bStrides);
        binary(stream, KernelGrid.For(n, GroupSize, MaxGroups), z, a, b, Strides6.Create(ms, ma, mb), n, (int)op);
    }

    /// <summary>y[n] += scale·x[n].</summary>
    public void Axpy(AcceleratorStream stream, ArrayView<float> y, ArrayView<float> x, int n, float scale)
    {
        if (n > 0) axpy(stream, KernelGrid.For(n, GroupSize, MaxGroups), y, x, n, scale);
    }

    /// <summary>y[n] = value.</summary>
    public void Fill(AcceleratorStream stream, ArrayView<float> y, int n, float value)
    {
        if (n > 0) fill(stream, KernelGrid.For(n, GroupSize, MaxGroups), y, n, value);
    }

    // --- device code ----------------------------------------------------------------------------
    private const float ErfP = 0.3275911f, ErfA1 = 0.254829592f, ErfA2 = -0.284496736f, ErfA3 = 1.421413741f,
        ErfA4 = -1.453152027f, ErfA5 = 1.061405429f, InvSqrt2 = 0.70710678118654752f, InvSqrt2Pi = 0.3989422804014327f;

    /// <summary>erf by Abramowitz–Stegun 7.1.26: 1 − (a1·t + … + a5·t⁵)·e^{−x²}, t = 1/(1 + p|x|), odd extension.</summary>
    public static float Erf(float x)
    {
        float ax = XMath.Abs(x);
        float t = 1f / (1f + ErfP * ax);
        float poly = ((((ErfA5 * t + ErfA4) * t + ErfA3) * t + ErfA2) * t + ErfA1) * t;
        float r = 1f - poly * XMath.Exp(-ax * ax);
        return x < 0f ? -r : r;
    }

    /// <summary>Exact GELU ½·x·(1 + erf(x/√2)).</summary>
    public static float Gelu(float x) => 0.5f * x * (1f + Erf(x * InvSqrt2));

    /// <summary>GELU'(x) = Φ(x) + x·φ(x), φ(x) = e^{−x²/2}/√(2π).</summary>
    public static float GeluGrad(float x) => 0.5f * (1f + Erf(x * InvSqrt2)) + x * InvSqrt2Pi * XMath.Exp(-0.5f * x * x);

    public static float Sigmoid(float x) => 1f / (1f + XMath.Exp(-x));

    /// <summary>x^p with the sign rule of <c>MathF.Pow</c> for negative x and integral p (XMath.Pow is exp(p·log x)).</summary>
    public static float Pow(float x, float p)
    {
        if (x > 0f) return XMath.Pow(x, p);
        if (p == 0f) return 1f;
        if (x == 0f) return p > 0f ? 0f : float.PositiveInfinity;
        float ip = (float)(int)p;
        if (ip != p) return float.NaN;
        float r = XMath.Pow(-x, p);
        return ((int)p & 1) != 0 ? -r : r;
    }

    public static float ApplyUnary(int op, float x, float alpha)
    {
        switch (op)
        {
            case (int)UnaryOp.Neg: return -x;
            case (int)UnaryOp.Exp: return XMath.Exp(x);
            case (int)UnaryOp.Log: return XMath.Log(x);
            case (int)UnaryOp.Sqrt: return XMath.Sqrt(x);
            case (int)UnaryOp.Tanh: return XMath.Tanh(x);
            case (int)UnaryOp.Sigmoid: return Sigmoid(x);
            case (int)UnaryOp.Relu: return x > 0f ? x : 0f;
            case (int)UnaryOp.Gelu: return Gelu(x);
            case (int)UnaryOp.Pow: return Pow(x, alpha);
            case (int)UnaryOp.Scale: return x * alpha;
            default: return x + alpha; // AddScalar
        }
    }

    internal static void UnaryKernel(ArrayView<float> y, ArrayView<float> x, UnaryArgs a)
    {
        int gridStride = KernelGrid.Stride;
        for (int i = Grid.GlobalIndex.X; i < a.N; i += gridStride)
        {
            y[i] = ApplyUnary(a.Op, x[i], a.Alpha);
        }
    }

    internal static void UnaryBackwardKernel(ArrayView<float> dx, ArrayView<float> x, ArrayView<float> y, ArrayView<float> dy, UnaryArgs a)
    {
        int gridStride = KernelGrid.Stride;
        for (int i = Grid.GlobalIndex.X; i < a.N; i += gridStride)
        {
            float g = dy[i];
            float d;
            switch (a.Op)
            {
                case (int)UnaryOp.Neg: d = -g; break;
                case (int)UnaryOp.Exp: d = g * y[i]; break;
                case (int)UnaryOp.Log: d = g / x[i]; break;
                case (int)UnaryOp.Sqrt: d = g / y[i] * 0.5f; break;
                case (int)UnaryOp.Tanh: { float t = y[i]; d = (1f - t * t) * g; break; }
                case (int)UnaryOp.Sigmoid: { float s = y[i]; d = (1f - s) * s * g; break; }
                case (int)UnaryOp.Relu: d = x[i] > 0f ? g : 0f; break;
                case (int)UnaryOp.Gelu: d = g * GeluGrad(x[i]); break;
                case (int)UnaryOp.Pow: d = Pow(x[i], a.Alpha - 1f) * g * a.Alpha; break;
                case (int)UnaryOp.Scale: d = g * a.Alpha; break;
                default: d = g; break; // AddScalar
            }
            dx[i] = d;
        }
    }

    internal static void BinaryKernel(ArrayView<float> z, ArrayView<float> a, ArrayView<float> b, Strides6 s, int n, int op)
    {
        int gridStride = KernelGrid.Stride;
        for (int i = Grid.GlobalIndex.X; i < n; i += gridStride)
        {
            s.Offsets(i, out int ao, out int bo);
            float va = a[ao], vb = b[bo];
            float r;
            switch (op)
            {
                case (int)BinaryOp.Add: r = va + vb; break;
                case (int)BinaryOp.Sub: r = va - vb; break;
                case (int)BinaryOp.Mul: r = va * vb; break;
                default: r = va / vb; break;
            }
            z[i] = r;
        }
    }

    internal static void AxpyKernel(ArrayView<float> y, ArrayView<float> x, int n, float scale)
    {
        int gridStride = KernelGrid.Stride;
        for (int i = Grid.GlobalIndex.X; i < n; i += gridStride)
            y[i] += scale * x[i];
    }

    internal static void FillKernel(ArrayView<float> y, int n, float value)
    {
        int gridStride = KernelGrid.Stride;
        for (int i = Grid.GlobalIndex.X; i < n; i += gridStride)
            y[i] = value;
    }
}
