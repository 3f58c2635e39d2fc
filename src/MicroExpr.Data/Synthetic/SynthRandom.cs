namespace MicroExpr.Data.Synthetic;

/// <summary>
/// The synthetic generator's own PRNG (xoshiro256**, seeded through SplitMix64), so that a seed gives the same
/// pixels on every machine and .NET version. OpenCV's RNG is never used. Streams are derived from the user's seed
/// and a tag plus indices (<see cref="Derive"/>), so that each face, clip and frame has its own independent stream
/// and rendering order (or parallelism) does not change the result.
/// </summary>
public sealed class SynthRandom
{
    ulong s0, s1, s2, s3;
    double spare;
    bool hasSpare;

    public SynthRandom(ulong seed)
    {
        ulong x = seed;
        s0 = SplitMix(ref x);
        s1 = SplitMix(ref x);
        s2 = SplitMix(ref x);
        s3 = SplitMix(ref x);
    }

    /// <summary>A stream for (seed, tag, indices): e.g. <c>Derive(seed, "face", subject)</c>.</summary>
    public static SynthRandom Derive(long seed, string tag, params ReadOnlySpan<int> indices) => new(Hash(seed, tag, indices));

    internal static ulong Hash(long seed, string tag, ReadOnlySpan<int> indices)
    {
        ulong h = 0x9E3779B97F4A7C15UL ^ (ulong)seed;
        h = Mix(h);
        foreach (char c in tag) h = Mix(h ^ c);
        foreach (int i in indices) h = Mix(h ^ (uint)i ^ 0xA5A5_0000_0000UL);
        return h;
    }

    static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    static ulong SplitMix(ref ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        ulong z = x;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextULong()
    {
        ulong result = ulong.RotateLeft(s1 * 5, 7) * 9;
        ulong t = s1 << 17;
        s2 ^= s0;
        s3 ^= s1;
        s1 ^= s2;
        s0 ^= s3;
        s2 ^= t;
        s3 = ulong.RotateLeft(s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1).</summary>
    public double NextDouble() => (NextULong() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [lo, hi).</summary>
    public double Uniform(double lo, double hi) => lo + (hi - lo) * NextDouble();

    /// <summary>Uniform integer in [0, n).</summary>
    public int NextInt(int n) => (int)(NextDouble() * n);

    /// <summary>Uniform integer in [lo, hi] (both inclusive).</summary>
    public int Between(int lo, int hi) => lo + NextInt(hi - lo + 1);

    public bool Chance(double p) => NextDouble() < p;

    /// <summary>+1 or -1 with equal probability.</summary>
    public int Sign() => NextULong() >> 63 == 0 ? 1 : -1;

    /// <summary>Standard normal (Box–Muller, polar form).</summary>
    public double Gaussian()
    {
        if (hasSpare)
        {
            hasSpare = false;
            return spare;
        }
        double u, v, s;
        do
        {
            u = 2 * NextDouble() - 1;
            v = 2 * NextDouble() - 1;
            s = u * u + v * v;
        } while (s >= 1 || s == 0);
        double m = Math.Sqrt(-2 * Math.Log(s) / s);
        spare = v * m;
        hasSpare = true;
        return u * m;
    }

    public T Pick<T>(IReadOnlyList<T> items) => items[NextInt(items.Count)];

    public void Shuffle<T>(IList<T> items)
    {
        for (int i = items.Count - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}
