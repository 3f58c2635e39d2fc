using ILGPU;
using ILGPU.Runtime;

namespace MicroExpr.Kernels;

/// <summary>
/// Glossary (every comment in this folder uses these letters): BH batch·heads, N tokens (Nq queries, Nk keys),
/// D head dimension, M/N/K the GEMM dimensions, rows × C (LayerNorm) or rows × cols (softmax).
/// Helpers shared by the kernels: warp reductions (butterfly shuffles, every lane gets the result) and a
/// four-float register vector, used for register blocking (GEMM) and for the per-lane slice of a D ≤ 128 row
/// (attention: lane l owns columns l, l+32, l+64, l+96).
/// </summary>
internal static class WarpReduce
{
    public static float Sum(float v)
    {
        for (int offset = Warp.WarpSize / 2; offset > 0; offset >>= 1) v += Warp.ShuffleXor(v, offset);
        return v;
    }

    public static float Max(float v)
    {
        for (int offset = Warp.WarpSize / 2; offset > 0; offset >>= 1) v = MathF.Max(v, Warp.ShuffleXor(v, offset));
        return v;
    }
}

/// <summary>Four floats kept in registers; value semantics only (no refs), so ILGPU keeps them in registers.</summary>
internal struct Vec4
{
    public float X, Y, Z, W;

    public Vec4(float x, float y, float z, float w) { X = x; Y = y; Z = z; W = w; }

    public static Vec4 Zero => new(0f, 0f, 0f, 0f);

    /// <summary>acc + a·b, component-wise.</summary>
    public static Vec4 Fma(Vec4 acc, float a, Vec4 b) => new(acc.X + a * b.X, acc.Y + a * b.Y, acc.Z + a * b.Z, acc.W + a * b.W);

    public static Vec4 Scale(Vec4 v, float s) => new(v.X * s, v.Y * s, v.Z * s, v.W * s);
}

/// <summary>Launch-time checks shared by the kernel classes.</summary>
internal static class KernelChecks
{
    public const int WarpSize = 32;

    /// <summary>Throws unless the accelerator has 32-lane warps and can run <paramref name="threads"/> threads per group.</summary>
    public static void GroupSize(Accelerator accelerator, int threads, string what)
    {
        if (accelerator.WarpSize != WarpSize)
            throw new NotSupportedException($"{what}: the kernels assume 32-lane warps, the accelerator has {accelerator.WarpSize} " +
                                            "(configure the CPU accelerator with new CPUDevice(numThreadsPerWarp: 32, ...))");
        if (threads <= 0 || threads > accelerator.MaxNumThreadsPerGroup)
            throw new ArgumentOutOfRangeException(nameof(threads),
                $"{what}: {threads} threads per group; the accelerator allows 1..{accelerator.MaxNumThreadsPerGroup}");
    }

    public static void Length(ArrayView<float> view, long needed, string name, string what)
    {
        if (view.Length < needed)
            throw new ArgumentException($"{what}: {name} has {view.Length} elements, needs {needed}", name);
    }
}

/// <summary>
/// A device scratch buffer that only grows. A buffer that is outgrown is kept (not freed) until <see cref="Dispose"/>,
/// because kernels queued earlier on a stream may still be reading it: the methods never synchronise the host.
/// </summary>
internal sealed class Scratch : IDisposable
{
    private readonly Accelerator _accelerator;
    private readonly List<MemoryBuffer1D<float, Stride1D.Dense>> _retired = new();
    private MemoryBuffer1D<float, Stride1D.Dense>? _buffer;

    public Scratch(Accelerator accelerator) => _accelerator = accelerator;

    public ArrayView<float> Get(long length)
    {
        if (_buffer is null || _buffer.Length < length)
        {
            if (_buffer is not null) _retired.Add(_buffer);
            _buffer = _accelerator.Allocate1D<float>(Math.Max(length, 1));
        }
        return _buffer.View.SubView(0, Math.Max(length, 1));
    }

    public void Dispose()
    {
        _buffer?.Dispose();
        foreach (var b in _retired) b.Dispose();
        _retired.Clear();
        _buffer = null;
    }
}

/// <summary>
/// exp and log through the base-2 hardware instructions (PTX ex2/lg2). ILGPU's core PTX backend has intrinsics for
/// exp2/log2 but needs the ILGPU.Algorithms extension (<c>EnableAlgorithms()</c> on the context) for MathF.Exp/Log; going
/// through exp2/log2 keeps the kernels independent of how the caller built its context (and is what FlashAttention does).
/// </summary>
internal static class FastMath
{
    private const float Log2E = 1.44269504088896341f;
    private const float Ln2 = 0.693147180559945309f;

    public static float Exp(float x) => ILGPU.Algorithms.XMath.Exp2(x * Log2E);

    public static float Log(float x) => ILGPU.Algorithms.XMath.Log2(x) * Ln2;
}
