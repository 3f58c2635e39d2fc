using System.Runtime.InteropServices;

namespace MicroExpr.Bench;

/// <summary>One float buffer from <see cref="NativeMemory.AlignedAlloc"/>, 64-byte aligned (one cache line, one Vector512).</summary>
public sealed unsafe class NativeBuffer
{
    public float* P { get; }
    public long Length { get; }

    public NativeBuffer(float* p, long length)
    {
        P = p;
        Length = length;
    }
}

/// <summary>
/// Owns every buffer of one benchmark and frees them all on dispose. Random fills come from one seeded generator,
/// so the same <c>--seed</c> gives the same inputs.
/// </summary>
public sealed unsafe class NativeBuffers(int seed) : IDisposable
{
    readonly List<nint> owned = [];
    readonly Random rng = new(seed);

    /// <summary>Uninitialised memory would be a timing hazard (denormals, NaN): every buffer is filled.</summary>
    public NativeBuffer Zeros(long length) => Fill(Alloc(length), 0f);

    /// <summary>Uniform values in [lo, hi).</summary>
    public NativeBuffer Random(long length, float lo = -1f, float hi = 1f)
    {
        var b = Alloc(length);
        for (long i = 0; i < length; i++) b.P[i] = lo + (hi - lo) * rng.NextSingle();
        return b;
    }

    NativeBuffer Alloc(long length)
    {
        if (length <= 0) throw new ArgumentOutOfRangeException(nameof(length), length, "buffer length must be positive");
        var p = (float*)NativeMemory.AlignedAlloc(checked((nuint)(length * sizeof(float))), 64);
        owned.Add((nint)p);
        return new NativeBuffer(p, length);
    }

    static NativeBuffer Fill(NativeBuffer b, float value)
    {
        new Span<float>(b.P, checked((int)b.Length)).Fill(value);
        return b;
    }

    public void Dispose()
    {
        foreach (var p in owned) NativeMemory.AlignedFree((void*)p);
        owned.Clear();
    }
}
