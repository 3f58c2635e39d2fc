namespace MicroExpr.Tensors;

/// <summary>
/// A seeded random source (xoshiro128**): the same seed gives the same stream on every machine and
/// .NET version, which System.Random does not promise.
/// </summary>
public sealed class Rng
{
    private uint s0, s1, s2, s3;
    private double? spare;

    public Rng(ulong seed)
    {
        // SplitMix64 expands the seed into the 128-bit state.
        ulong z = seed;
        ulong Next()
        {
            z += 0x9E3779B97F4A7C15UL;
            ulong r = z;
            r = (r ^ (r >> 30)) * 0xBF58476D1CE4E5B9UL;
            r = (r ^ (r >> 27)) * 0x94D049BB133111EBUL;
            return r ^ (r >> 31);
        }
        ulong a = Next(), b = Next();
        s0 = (uint)a; s1 = (uint)(a >> 32); s2 = (uint)b; s3 = (uint)(b >> 32);
        if ((s0 | s1 | s2 | s3) == 0) s0 = 1;
    }

    public uint NextUInt()
    {
        uint result = BitRotate(s1 * 5, 7) * 9;
        uint t = s1 << 9;
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3;
        s2 ^= t;
        s3 = BitRotate(s3, 11);
        return result;
    }

    private static uint BitRotate(uint x, int k) => (x << k) | (x >> (32 - k));

    /// <summary>Uniform in [0, 1).</summary>
    public double NextDouble() => ((ulong)NextUInt() << 21 ^ NextUInt() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, n).</summary>
    public int NextInt(int n) => (int)(NextDouble() * n);

    /// <summary>Standard normal (Box–Muller).</summary>
    public double NextNormal()
    {
        if (spare is double s)
        {
            spare = null;
            return s;
        }
        double u1, u2;
        do u1 = NextDouble(); while (u1 <= double.Epsilon);
        u2 = NextDouble();
        double r = Math.Sqrt(-2.0 * Math.Log(u1));
        spare = r * Math.Sin(2 * Math.PI * u2);
        return r * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>Fisher–Yates in place: for i from the end down to 1, swap item i with a uniform j in [0, i].</summary>
    public void Shuffle<T>(Span<T> items)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>A new generator whose stream depends only on this one's seed and <paramref name="stream"/>.</summary>
    public Rng Fork(ulong stream) => new(((ulong)NextUInt() << 32 | NextUInt()) ^ (stream * 0x9E3779B97F4A7C15UL));
}
