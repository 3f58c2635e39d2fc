using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MicroExpr.Kernels;

/// <summary>Instruction-set level of the CPU SIMD kernels, chosen once at run time (tests may force a lower one).</summary>
internal enum SimdIsa { Scalar = 0, V256 = 1, V512 = 2 }

/// <summary>The one ISA dispatch of the CPU kernels: every SIMD kernel picks its lane width from <see cref="Current"/>.</summary>
internal static class SimdIsaSelect
{
    /// <summary>The best level this machine runs: Vector512 (AVX-512F masked loads), else Vector256 (AVX masked loads), else scalar.</summary>
    public static readonly SimdIsa Detected =
        Vector512.IsHardwareAccelerated && Avx512F.IsSupported ? SimdIsa.V512
        : Vector256.IsHardwareAccelerated && Avx.IsSupported ? SimdIsa.V256
        : SimdIsa.Scalar;

    /// <summary>Tests force a lower level here to cover every path on one machine; null means <see cref="Detected"/>.</summary>
    internal static SimdIsa? Force;

    public static SimdIsa Current => Force is { } f && f <= Detected ? f : Detected;
}

/// <summary>
/// The CPU SIMD toolkit: lane operations over a vector type TV of float, implemented once per width by
/// <see cref="Simd512"/>, <see cref="Simd256"/> and <see cref="Simd128"/>. A kernel written once as a generic method
/// <c>Body&lt;TS, TV&gt;() where TS : struct, ISimd&lt;TV&gt;</c> is specialised per width by the JIT (static abstract
/// members on a struct: no virtual calls, everything inlined), and dispatched once at its entry point on
/// <see cref="SimdIsaSelect.Current"/>. The math (<see cref="Exp"/>, <see cref="Exp2"/>, <see cref="Erf"/>) is written
/// once in <see cref="Simd"/> and tested on every width (<c>SimdToolkitTests</c>).
/// </summary>
internal unsafe interface ISimd<TV> where TV : struct
{
    /// <summary>Lanes per vector.</summary>
    static abstract int Count { get; }
    static abstract TV Load(float* p);
    static abstract void Store(float* p, TV v);
    static abstract TV Splat(float x);
    /// <summary>a·b + c, fused.</summary>
    static abstract TV Fma(TV a, TV b, TV c);
    static abstract TV Mul(TV a, TV b);
    static abstract TV Add(TV a, TV b);
    static abstract TV Sub(TV a, TV b);
    static abstract TV Div(TV a, TV b);
    /// <summary>Lane maximum (IEEE: a NaN lane gives NaN).</summary>
    static abstract TV Max(TV a, TV b);
    static abstract TV Min(TV a, TV b);
    /// <summary>Lane maximum as the hardware does it (vmaxps: a NaN or ±0 lane may come from either side): for reductions
    /// whose inputs are finite or −∞, one instruction where <see cref="Max"/> needs fix-ups.</summary>
    static abstract TV MaxNative(TV a, TV b);
    static abstract float HMax(TV v);
    /// <summary>Horizontal maximum by <see cref="MaxNative"/> steps.</summary>
    static abstract float HMaxNative(TV v);
    static abstract float HSum(TV v);
    /// <summary>eˣ (<see cref="Simd.Exp(Vector512{float})"/>).</summary>
    static abstract TV Exp(TV x);
    /// <summary>2ˣ, flushed to 0 below −125 (<see cref="Simd.Exp2(Vector512{float})"/>).</summary>
    static abstract TV Exp2(TV x);
    /// <summary>erf(x) (<see cref="Simd.Erf(Vector512{float})"/>).</summary>
    static abstract TV Erf(TV x);
    /// <summary>Round to nearest integer (ties to even).</summary>
    static abstract TV Round(TV x);
    /// <summary>p·2ⁿ for integral n, by adding n to p's exponent field (no range check: the caller keeps it normal).</summary>
    static abstract TV AddExponent(TV p, TV n);
    /// <summary>v where x ≥ limit, 0 where x &lt; limit.</summary>
    static abstract TV ZeroWhereLess(TV v, TV x, float limit);
    /// <summary>Lanes ≥ n replaced by fill.</summary>
    static abstract TV KeepFirst(TV v, int n, float fill);
    /// <summary>The first <paramref name="n"/> floats at p (0 ≤ n ≤ Count), the other lanes <paramref name="fill"/>; reads nothing past p + n.</summary>
    static abstract TV LoadFirst(float* p, int n, float fill);
    /// <summary>Stores the first <paramref name="n"/> lanes of v at p; writes nothing past p + n.</summary>
    static abstract void StoreFirst(float* p, int n, TV v);
    /// <summary>
    /// A lane mask with the first <paramref name="n"/> lanes set (none for n ≤ 0, all for n ≥ Count): computed once
    /// outside a row loop and then used by <see cref="LoadMasked"/>, <see cref="StoreMasked"/> and <see cref="Select"/>.
    /// </summary>
    static abstract TV FirstMask(int n);
    /// <summary>Lanes set in <paramref name="mask"/> (a <see cref="FirstMask"/>) from p, the others <paramref name="merge"/>; unset lanes are not read.</summary>
    static abstract TV LoadMasked(float* p, TV mask, TV merge);
    /// <summary>Stores the lanes set in <paramref name="mask"/> (a <see cref="FirstMask"/>); unset lanes are not written.</summary>
    static abstract void StoreMasked(float* p, TV mask, TV v);
    /// <summary>mask ? a : b, per lane.</summary>
    static abstract TV Select(TV mask, TV a, TV b);
}

/// <summary>Vector512 lanes (AVX-512F).</summary>
internal readonly unsafe struct Simd512 : ISimd<Vector512<float>>
{
    public static int Count => 16;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(float* p) => Vector512.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector512<float> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Splat(float x) => Vector512.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Mul(Vector512<float> a, Vector512<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Sub(Vector512<float> a, Vector512<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Div(Vector512<float> a, Vector512<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Max(Vector512<float> a, Vector512<float> b) => Vector512.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Min(Vector512<float> a, Vector512<float> b) => Vector512.Min(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float HMax(Vector512<float> v) => Simd256.HMax(Vector256.Max(v.GetLower(), v.GetUpper()));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float HSum(Vector512<float> v) => Simd.HSum(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Exp(Vector512<float> x) => Simd.Exp(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Exp2(Vector512<float> x) => Simd.Exp2(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Erf(Vector512<float> x) => Simd.Erf(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Round(Vector512<float> x) => Vector512.Round(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> AddExponent(Vector512<float> p, Vector512<float> n) => (p.AsInt32() + Vector512.ShiftLeft(Vector512.ConvertToInt32(n), 23)).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> ZeroWhereLess(Vector512<float> v, Vector512<float> x, float limit) => Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512.Create(limit)), Vector512<float>.Zero, v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> KeepFirst(Vector512<float> v, int n, float fill) =>
        Vector512.ConditionalSelect(Vector512.LessThan(Vector512<float>.Indices, Vector512.Create((float)n)), v, Vector512.Create(fill));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadFirst(float* p, int n, float fill) => Simd.LoadTail(p, Simd.TailMask512(n), Vector512.Create(fill));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreFirst(float* p, int n, Vector512<float> v) => Simd.StoreTail(p, Simd.TailMask512(n), v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> MaxNative(Vector512<float> a, Vector512<float> b) => Vector512.MaxNative(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float HMaxNative(Vector512<float> v) => Simd.HMax(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> FirstMask(int n) => Simd.TailMask512(n);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Select(Vector512<float> mask, Vector512<float> a, Vector512<float> b) => Vector512.ConditionalSelect(mask, a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> LoadMasked(float* p, Vector512<float> mask, Vector512<float> merge) => Simd.LoadTail(p, mask, merge);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void StoreMasked(float* p, Vector512<float> mask, Vector512<float> v) => Simd.StoreTail(p, mask, v);
}

/// <summary>Vector256 lanes (AVX2/FMA).</summary>
internal readonly unsafe struct Simd256 : ISimd<Vector256<float>>
{
    public static int Count => 8;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(float* p) => Vector256.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector256<float> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Splat(float x) => Vector256.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Fma(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Mul(Vector256<float> a, Vector256<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Sub(Vector256<float> a, Vector256<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Div(Vector256<float> a, Vector256<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Max(Vector256<float> a, Vector256<float> b) => Vector256.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Min(Vector256<float> a, Vector256<float> b) => Vector256.Min(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float HMax(Vector256<float> v) => Simd128.HMax(Vector128.Max(v.GetLower(), v.GetUpper()));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float HSum(Vector256<float> v) => Simd.HSum(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Exp(Vector256<float> x) => Simd.Exp(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Exp2(Vector256<float> x) => Simd.Exp2(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Erf(Vector256<float> x) => Simd.Erf(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Round(Vector256<float> x) => Vector256.Round(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> AddExponent(Vector256<float> p, Vector256<float> n) => (p.AsInt32() + Vector256.ShiftLeft(Vector256.ConvertToInt32(n), 23)).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ZeroWhereLess(Vector256<float> v, Vector256<float> x, float limit) => Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256.Create(limit)), Vector256<float>.Zero, v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> KeepFirst(Vector256<float> v, int n, float fill) =>
        Vector256.ConditionalSelect(Vector256.LessThan(Vector256<float>.Indices, Vector256.Create((float)n)), v, Vector256.Create(fill));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LoadFirst(float* p, int n, float fill) => Simd.LoadTail(p, Simd.TailMask256(n), Vector256.Create(fill));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreFirst(float* p, int n, Vector256<float> v) => Simd.StoreTail(p, Simd.TailMask256(n), v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> MaxNative(Vector256<float> a, Vector256<float> b) => Vector256.MaxNative(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float HMaxNative(Vector256<float> v) => Simd.HMax(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> FirstMask(int n) => Simd.TailMask256(n);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Select(Vector256<float> mask, Vector256<float> a, Vector256<float> b) => Vector256.ConditionalSelect(mask, a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> LoadMasked(float* p, Vector256<float> mask, Vector256<float> merge) => Simd.LoadTail(p, mask, merge);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void StoreMasked(float* p, Vector256<float> mask, Vector256<float> v) => Simd.StoreTail(p, mask, v);
}

/// <summary>Vector128 lanes (SSE/NEON; the fallback of the kernels that need no masked loads).</summary>
internal readonly unsafe struct Simd128 : ISimd<Vector128<float>>
{
    public static int Count => 4;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Load(float* p) => Vector128.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector128<float> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Splat(float x) => Vector128.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Fma(Vector128<float> a, Vector128<float> b, Vector128<float> c) => Vector128.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Mul(Vector128<float> a, Vector128<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Sub(Vector128<float> a, Vector128<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Div(Vector128<float> a, Vector128<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Max(Vector128<float> a, Vector128<float> b) => Vector128.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Min(Vector128<float> a, Vector128<float> b) => Vector128.Min(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HMax(Vector128<float> v) =>
        MathF.Max(MathF.Max(v.GetElement(0), v.GetElement(1)), MathF.Max(v.GetElement(2), v.GetElement(3)));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float HSum(Vector128<float> v) => Vector128.Sum(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Exp(Vector128<float> x) => Simd.Exp(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Exp2(Vector128<float> x) => Simd.Exp2(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Erf(Vector128<float> x) => Simd.Erf(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Round(Vector128<float> x) => Vector128.Round(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> AddExponent(Vector128<float> p, Vector128<float> n) => (p.AsInt32() + Vector128.ShiftLeft(Vector128.ConvertToInt32(n), 23)).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> ZeroWhereLess(Vector128<float> v, Vector128<float> x, float limit) => Vector128.ConditionalSelect(Vector128.LessThan(x, Vector128.Create(limit)), Vector128<float>.Zero, v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> KeepFirst(Vector128<float> v, int n, float fill) =>
        Vector128.ConditionalSelect(Vector128.LessThan(Vector128<float>.Indices, Vector128.Create((float)n)), v, Vector128.Create(fill));
    public static Vector128<float> LoadFirst(float* p, int n, float fill)
    {
        var v = Vector128.Create(fill);
        for (int i = 0; i < n; i++) v = v.WithElement(i, p[i]);
        return v;
    }
    public static void StoreFirst(float* p, int n, Vector128<float> v)
    {
        for (int i = 0; i < n; i++) p[i] = v.GetElement(i);
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> MaxNative(Vector128<float> a, Vector128<float> b) => Vector128.MaxNative(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float HMaxNative(Vector128<float> v) => HMax(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> FirstMask(int n) => Vector128.LessThan(Vector128<int>.Indices, Vector128.Create(n)).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Select(Vector128<float> mask, Vector128<float> a, Vector128<float> b) => Vector128.ConditionalSelect(mask, a, b);
    /// <summary>AVX's 128-bit masked load where the CPU has it; else lane by lane (the mask is a prefix: its set-lane count).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> LoadMasked(float* p, Vector128<float> mask, Vector128<float> merge)
    {
        var v = Avx.IsSupported ? Avx.MaskLoad(p, mask) : LoadFirst(p, BitOperations.PopCount(mask.ExtractMostSignificantBits()), 0f);
        return Vector128.ConditionalSelect(mask, v, merge);
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreMasked(float* p, Vector128<float> mask, Vector128<float> v)
    {
        if (Avx.IsSupported) Avx.MaskStore(p, mask, v);
        else StoreFirst(p, BitOperations.PopCount(mask.ExtractMostSignificantBits()), v);
    }
}

/// <summary>
/// The toolkit's functions, overloaded by width, each written once: masked tails, horizontal sum and max, eˣ, 2ˣ, erf and a
/// scalar ln. Kernels reach them through <see cref="ISimd{TV}"/> (whose structs forward to these width overloads) and
/// call only <see cref="Log"/> directly.
/// </summary>
internal static unsafe class Simd
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> TailMask512(int rem) => Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(rem)).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> TailMask256(int rem) => Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(rem)).AsSingle();

    /// <summary>Lanes where mask is set come from p; the others are <paramref name="merge"/> (and are not read).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LoadTail(float* p, Vector512<float> mask, Vector512<float> merge) => Avx512F.MaskLoad(p, mask, merge);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> LoadTail(float* p, Vector256<float> mask, Vector256<float> merge) =>
        Vector256.ConditionalSelect(mask, Avx.MaskLoad(p, mask), merge);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreTail(float* p, Vector512<float> mask, Vector512<float> v) => Avx512F.MaskStore(p, mask, v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreTail(float* p, Vector256<float> mask, Vector256<float> v) => Avx.MaskStore(p, mask, v);

    /// <summary>Horizontal sum: halve the width three times, then two in-register shuffles (fewer steps than Vector512.Sum).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HSum(Vector512<float> v) => HSum(v.GetLower() + v.GetUpper());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HSum(Vector256<float> v)
    {
        var q = v.GetLower() + v.GetUpper();
        q += Vector128.Shuffle(q, Vector128.Create(2, 3, 0, 1));
        q += Vector128.Shuffle(q, Vector128.Create(1, 0, 3, 2));
        return q.ToScalar();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HMax(Vector512<float> v) => HMax(Vector256.MaxNative(v.GetLower(), v.GetUpper()));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HMax(Vector256<float> v)
    {
        var q = Vector128.MaxNative(v.GetLower(), v.GetUpper());
        q = Vector128.MaxNative(q, Vector128.Shuffle(q, Vector128.Create(2, 3, 0, 1)));
        q = Vector128.MaxNative(q, Vector128.Shuffle(q, Vector128.Create(1, 0, 3, 2)));
        return q.ToScalar();
    }

    // exp(x) = 2ⁿ·exp(r), n = round(x·log₂e), r = x − n·ln2 (Cody–Waite, two constants), exp(r) by a degree-5
    // minimax polynomial for relative error on |r| ≤ ln2/2 (Remez: 7.5e-8 exact, ≈1.9e-7 ≈ 1.5 ulp in float Horner/FMA),
    // five FMAs. NaN propagates.
    private const float Log2E = 1.44269504088896341f, Ln2Hi = 0.693359375f, Ln2Lo = -2.12194440e-4f;
    private const float C0 = 1.0000001192092896f, C1 = 0.9999997019767761f, C2 = 0.49998894333839417f,
        C3 = 0.16667574644088745f, C4 = 0.04191538318991661f, C5 = 0.008297654800117016f;

    /// <summary>
    /// Vector512 exp. 2ⁿ is applied with vscalefps, which underflows to 0 and overflows to +∞ by itself; inputs below
    /// −110 (e.g. −∞) are clamped there first so that r stays finite, and give exactly 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        x = Vector512.MaxNative(Vector512.Create(-110f), x); // x second: a NaN x is returned as is
        var n = Avx512F.RoundScale(x * Vector512.Create(Log2E), 0); // round to nearest
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Hi), x);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Lo), r);
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(C5), r, Vector512.Create(C4));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C3));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C2));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C1));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C0));
        return Avx512F.Scale(p, n);
    }

    /// <summary>Vector256 exp: 2ⁿ built in the exponent field; x clamped to [−87.3, 88.7], and x below −87.3 gives 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        var under = Vector256.LessThan(x, Vector256.Create(-87.33f));
        x = Vector256.MinNative(Vector256.Create(88.72f), Vector256.MaxNative(Vector256.Create(-87.33f), x));
        var n = Vector256.Round(x * Vector256.Create(Log2E));
        var r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Hi), x);
        r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Lo), r);
        var p = Vector256.FusedMultiplyAdd(Vector256.Create(C5), r, Vector256.Create(C4));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C3));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C2));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C1));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C0));
        // n ∈ [−126, 128]: 2ⁿ = (n + 127) << 23, except n = 128 (x ≈ 88.72), done as 2·2¹²⁷.
        var ni = Vector256.ConvertToInt32(n);
        var top = Vector256.Equals(ni, Vector256.Create(128));
        ni -= top & Vector256<int>.One;
        var pow = Vector256.ShiftLeft(ni + Vector256.Create(127), 23).AsSingle();
        p *= pow;
        p += top.AsSingle() & p;
        return Vector256.AndNot(p, under.AsSingle());
    }

    // --- 2ˣ: Cephes exp2f minimax on [−½, ½], 2ˣ = 2ⁿ·p(x − n); written once, for every width --------------------------
    private const float X0 = 1.535336188319500E-4f, X1 = 1.339887440266574E-3f, X2 = 9.618437357674640E-3f,
        X3 = 5.550332471162809E-2f, X4 = 2.402264791363012E-1f, X5 = 6.931472028550421E-1f;

    /// <summary>2ˣ for x clamped to [−127, 127], flushed to 0 below −125 (relative error ≈ 2e-7); NaN is not preserved.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Exp2<TS, TV>(TV x) where TS : struct, ISimd<TV> where TV : struct
    {
        x = TS.Min(TS.Max(x, TS.Splat(-127f)), TS.Splat(127f));
        TV n = TS.Round(x);
        TV f = TS.Sub(x, n);
        TV p = TS.Fma(TS.Splat(X0), f, TS.Splat(X1));
        p = TS.Fma(p, f, TS.Splat(X2));
        p = TS.Fma(p, f, TS.Splat(X3));
        p = TS.Fma(p, f, TS.Splat(X4));
        p = TS.Fma(p, f, TS.Splat(X5));
        p = TS.Fma(p, f, TS.Splat(1f));
        return TS.ZeroWhereLess(TS.AddExponent(p, n), x, -125f);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Exp2(Vector512<float> x) => Exp2<Simd512, Vector512<float>>(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Exp2(Vector256<float> x) => Exp2<Simd256, Vector256<float>>(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Exp2(Vector128<float> x) => Exp2<Simd128, Vector128<float>>(x);

    /// <summary>Scalar 2ˣ: the Vector128 lanes, so that a scalar tail computes exactly what the vector body does.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Exp2(float x) => Exp2(Vector128.CreateScalarUnsafe(x)).ToScalar();

    // --- erf: rational minimax erf(z) ≈ z·P(z²)/Q(z²) on z clamped to [−4, 4] (Eigen's and TensorFlow's float erf) -----
    private const float A1 = -1.60960333262415e-02f, A3 = -2.95459980854025e-03f, A5 = -7.34990630326855e-04f,
        A7 = -5.69250639462346e-05f, A9 = -2.10102402082508e-06f, A11 = 2.77068142495902e-08f, A13 = -2.72614225801306e-10f;
    private const float B0 = -1.42647390514189e-02f, B2 = -7.37332916720468e-03f, B4 = -1.68282697438203e-03f,
        B6 = -2.13374055278905e-04f, B8 = -1.45660718464996e-05f;

    /// <summary>erf(z): 11 FMAs and one division, no exponential; largest error 3.3e-7 against a double erf.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Erf<TS, TV>(TV z) where TS : struct, ISimd<TV> where TV : struct
    {
        z = TS.Min(TS.Max(z, TS.Splat(-4f)), TS.Splat(4f));
        TV z2 = TS.Mul(z, z);
        TV p = TS.Fma(z2, TS.Splat(A13), TS.Splat(A11));
        p = TS.Fma(z2, p, TS.Splat(A9));
        p = TS.Fma(z2, p, TS.Splat(A7));
        p = TS.Fma(z2, p, TS.Splat(A5));
        p = TS.Fma(z2, p, TS.Splat(A3));
        p = TS.Fma(z2, p, TS.Splat(A1));
        TV q = TS.Fma(z2, TS.Splat(B8), TS.Splat(B6));
        q = TS.Fma(z2, q, TS.Splat(B4));
        q = TS.Fma(z2, q, TS.Splat(B2));
        q = TS.Fma(z2, q, TS.Splat(B0));
        return TS.Div(TS.Mul(z, p), q);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Erf(Vector512<float> z) => Erf<Simd512, Vector512<float>>(z);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Erf(Vector256<float> z) => Erf<Simd256, Vector256<float>>(z);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Erf(Vector128<float> z) => Erf<Simd128, Vector128<float>>(z);

    /// <summary>Scalar erf: the Vector128 lanes (what the vector body computes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Erf(float z) => Erf(Vector128.CreateScalarUnsafe(z)).ToScalar();

    /// <summary>Vector128 eˣ: the Vector256 version on a doubled vector (one implementation; Vector128 is only a fallback).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Exp(Vector128<float> x) => Exp(Vector256.Create(x, x)).GetLower();

    /// <summary>
    /// Σ (x − k) and Σ (x − k)² over one row of len floats, in two pairs of vector accumulators and a masked tail: the
    /// shifted one-pass moments of LayerNorm and BatchNorm (with k an element of the row, a large mean loses no precision
    /// to cancellation in var = Σ(x − k)²/n − (Σ(x − k)/n)²).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ShiftedMoments<TS, TV>(float* x, int len, float k, out float sum, out float sq) where TS : struct, ISimd<TV> where TV : struct
    {
        int i = 0, w = TS.Count;
        var kv = TS.Splat(k);
        TV a0 = default, a1 = default, q0 = default, q1 = default;
        for (; i + 2 * w <= len; i += 2 * w)
        {
            var d0 = TS.Sub(TS.Load(x + i), kv);
            var d1 = TS.Sub(TS.Load(x + i + w), kv);
            a0 = TS.Add(a0, d0);
            a1 = TS.Add(a1, d1);
            q0 = TS.Fma(d0, d0, q0);
            q1 = TS.Fma(d1, d1, q1);
        }
        if (i + w <= len)
        {
            var d0 = TS.Sub(TS.Load(x + i), kv);
            a0 = TS.Add(a0, d0);
            q0 = TS.Fma(d0, d0, q0);
            i += w;
        }
        if (i < len)
        {
            var d1 = TS.Sub(TS.LoadMasked(x + i, TS.FirstMask(len - i), kv), kv); // lanes past the row read k: d = 0
            a1 = TS.Add(a1, d1);
            q1 = TS.Fma(d1, d1, q1);
        }
        sum = TS.HSum(TS.Add(a0, a1));
        sq = TS.HSum(TS.Add(q0, q1));
    }

    /// <summary>
    /// Natural log of a float without a libm call (a call would spill every live vector register around it):
    /// s = m·2ᵉ with m ∈ [√½, √2), ln m = 2·atanh t, t = (m − 1)/(m + 1), |t| ≤ 0.172, series to t⁹ in double
    /// (relative error &lt; 1e-8). For s ≥ the smallest normal float; +∞ and NaN are returned as they are.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Log(float s)
    {
        int bits = BitConverter.SingleToInt32Bits(s);
        if ((uint)bits >= 0x7F800000u) return s;
        // Branch-free split (as in musl logf): subtracting the bits of √½ makes the exponent field count from √½.
        int e = (bits - 0x3F3504F3) >> 23;
        double m = BitConverter.Int32BitsToSingle(bits - (e << 23));
        double t = (m - 1) / (m + 1), t2 = t * t;
        double series = 1 + t2 * (1.0 / 3 + t2 * (1.0 / 5 + t2 * (1.0 / 7 + t2 * (1.0 / 9))));
        return (float)(e * 0.6931471805599453 + 2 * t * series);
    }
}
