namespace MicroExpr.Data.Motion;

/// <summary>
/// FDP's input and target (papers.md §3, from CYF-cuber/FDP's released code):
/// <list type="bullet">
/// <item><see cref="FdpFrameIndices"/>: 8 frames per clip at i·⌊L/8⌋, i = 0..7 (L frames, onset first), as the released
/// code samples; not our uniform selection, which includes both ends. Clips under 8 frames cannot be sampled.</item>
/// <item><see cref="Compute"/>: the dynamic image, Bilen et al.'s approximate rank pooling DI = Σₜ αₜ·Iₜ with
/// αₜ = Σ_{i=t}^{T} (2i − T − 1)/i (t = 1..T), then min–max scaled to [0, 1] over the whole image.</item>
/// </list>
/// </summary>
public static class DynamicImage
{
    /// <summary>Frames FDP samples per clip.</summary>
    public const int FdpFrames = 8;

    /// <summary>The approximate rank pooling coefficients α₁..α_T (index 0 is α₁). T = 8: −8.461, −1.461, 1.039, 2.039, 2.289, 2.089, 1.589, 0.875.</summary>
    public static double[] Coefficients(int t)
    {
        if (t < 1) throw new ArgumentOutOfRangeException(nameof(t), "rank pooling needs at least one frame");
        var a = new double[t];
        double acc = 0;
        for (int i = t; i >= 1; i--)
        {
            acc += (2.0 * i - t - 1) / i;
            a[i - 1] = acc;
        }
        return a;
    }

    /// <summary>0-based frame indices i·⌊L/8⌋ (i = 0..7) into a clip of <paramref name="length"/> frames; null when L &lt; 8.</summary>
    public static int[]? FdpFrameIndices(int length)
    {
        if (length < FdpFrames) return null;
        int step = length / FdpFrames;
        return Enumerable.Range(0, FdpFrames).Select(i => i * step).ToArray();
    }

    /// <summary>
    /// DI of T frames of equal size (each [pixels], any layout): Σₜ αₜ·Iₜ, min–max scaled to [0, 1]; a constant result
    /// (e.g. identical frames) becomes all zeros.
    /// </summary>
    public static float[] Compute(IReadOnlyList<float[]> frames)
    {
        if (frames.Count == 0) throw new ArgumentException("dynamic image: no frames");
        int n = frames[0].Length;
        if (frames.Any(f => f.Length != n)) throw new ArgumentException("dynamic image: frames differ in size");
        var alpha = Coefficients(frames.Count);
        var acc = new double[n];
        for (int t = 0; t < frames.Count; t++)
        {
            var f = frames[t];
            double a = alpha[t];
            for (int p = 0; p < n; p++) acc[p] += a * f[p];
        }
        double min = acc.Min(), max = acc.Max();
        var di = new float[n];
        if (max > min)
            for (int p = 0; p < n; p++) di[p] = (float)((acc[p] - min) / (max - min));
        return di;
    }
}
