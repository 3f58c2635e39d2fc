namespace MicroExpr.Data.Motion;

/// <summary>Which T positions of a clip become the T frames (positions are 0-based indices into the clip's frames).</summary>
public static class FrameSelector
{
    /// <summary>
    /// <see cref="FrameSelection.ApexCentred"/> (SLSTT): T consecutive frames centred on the apex (apex − T/2 …), shifted to
    /// fit inside onset+1..offset (onset..offset when the clip is one frame long).
    /// <see cref="FrameSelection.Uniform"/> (FDP): T positions spread evenly over onset..offset, both ends included,
    /// rounded to whole frames.
    /// <see cref="FrameSelection.Fdp"/>: onset + i·⌊L/T⌋ as FDP's released code (<see cref="DynamicImage.FdpFrameIndices"/>
    /// for T = 8); a clip of L &lt; T frames throws <see cref="ClipTooShortException"/> (dropped, not padded).
    /// When the range holds fewer than T frames the positions are fractional, spread evenly over it: the frame at
    /// position p is then the linear interpolation of frames ⌊p⌋ and ⌈p⌉ (padding a short clip).
    /// </summary>
    public static double[] Select(int onset, int apex, int offset, int t, FrameSelection selection)
    {
        if (selection == FrameSelection.SlsttReleased) return SlsttReleased(onset, apex, offset, t);
        if (onset < 0 || offset < onset || apex < onset || apex > offset || t < 1)
            throw new ArgumentException($"need 0 <= onset <= apex <= offset and T >= 1, got onset {onset}, apex {apex}, offset {offset}, T {t}");
        if (selection == FrameSelection.Fdp)
        {
            int length = offset - onset + 1;
            if (length < t) throw new ClipTooShortException(length, t);
            int step = length / t;
            return Enumerable.Range(0, t).Select(i => (double)(onset + i * step)).ToArray();
        }
        int lo = selection == FrameSelection.ApexCentred && offset > onset ? onset + 1 : onset, hi = offset;
        int count = hi - lo + 1;
        var p = new double[t];
        if (count < t)
        {
            for (int i = 0; i < t; i++) p[i] = t == 1 ? (lo + hi) / 2.0 : lo + (hi - lo) * (double)i / (t - 1);
            return p;
        }
        if (selection == FrameSelection.ApexCentred)
        {
            int start = Math.Clamp(apex - t / 2, lo, hi - t + 1);
            for (int i = 0; i < t; i++) p[i] = start + i;
        }
        else
        {
            for (int i = 0; i < t; i++) p[i] = t == 1 ? Math.Round((lo + hi) / 2.0) : Math.Round(lo + (hi - lo) * (double)i / (t - 1));
        }
        return p;
    }

    /// <summary>
    /// <see cref="FrameSelection.SlsttReleased"/>, SLSTT's released <c>selectframes</c> (T = 11 there): the real frames
    /// start..end with start = max(apex − ⌊T/2⌋, onset + 1) and end = min(start + T − 1, offset). Unlike
    /// <see cref="FrameSelection.ApexCentred"/>, the window is never shifted back when the apex is near the offset: it is
    /// filled instead. With n = end − start + 1 &lt; T real frames, the T − n missing ones go into the n − 1 gaps as the
    /// release distributes them: every gap gets q = ⌊(T − n)/(n − 1)⌋, and the r = (T − n) − q·(n − 1) left over go one each
    /// to the gaps ⌊n/2⌋ − ⌊r/2⌋ … ⌊n/2⌋ − ⌊r/2⌋ + r − 1 (the middle of the window). A gap i with k insertions gets the
    /// positions i' + j/(k + 1), j = 1..k (i' its first frame): the frame there is the linear blend of its two neighbours
    /// (<see cref="MotionPipeline"/>). The release fills with RIFE, a neural frame interpolator we do not have, and keeps
    /// the central k of the frames RIFE makes for the gap; evenly spaced linear blends are the documented stand-in
    /// (rejected: repeating frames, which adds no motion between them). A window of one frame (start = offset; the
    /// release divides by zero there) repeats that frame T times.
    /// Throws <see cref="ApexUnusableException"/> when the apex is unknown (&lt; 0) or not after the onset: the release skips
    /// those clips ("/" apex, apex ≤ onset) and so do we (dropped and reported, not estimated).
    /// </summary>
    public static double[] SlsttReleased(int onset, int apex, int offset, int t)
    {
        if (apex < 0) throw new ApexUnusableException($"dropped: the apex is unknown; SLSTT's released selection needs one (the release skips '/' apex rows)");
        if (apex <= onset) throw new ApexUnusableException($"dropped: apex {apex} is not after onset {onset}; SLSTT's released selection skips such clips");
        if (offset < apex || t < 1)
            throw new ArgumentException($"need 0 <= onset < apex <= offset and T >= 1, got onset {onset}, apex {apex}, offset {offset}, T {t}");
        int start = Math.Max(apex - t / 2, onset + 1), end = Math.Min(start + t - 1, offset);
        int n = end - start + 1;
        var p = new List<double>(t);
        if (n == 1)
        {
            for (int i = 0; i < t; i++) p.Add(start);
            return [.. p];
        }
        int missing = t - n, gaps = n - 1;
        int q = missing / gaps, r = missing - q * gaps;
        int extraFrom = n / 2 - r / 2;
        for (int i = 0; i < n; i++)
        {
            p.Add(start + i);
            if (i == gaps) break;
            int k = q + (i >= extraFrom && i < extraFrom + r ? 1 : 0);
            for (int j = 1; j <= k; j++) p.Add(start + i + (double)j / (k + 1));
        }
        return [.. p];
    }
}

/// <summary>A clip whose apex SLSTT's released selection cannot use (unknown, or not after the onset): dropped and reported.</summary>
public sealed class ApexUnusableException(string message) : ClipDroppedException(message);

/// <summary>
/// A clip a selection leaves out by design (not a failure): the preprocessor drops it and lists it with its reason. An
/// <see cref="InvalidOperationException"/>, so a command that meets one elsewhere (predict on such a clip) reports it in one line.
/// </summary>
public abstract class ClipDroppedException(string message) : InvalidOperationException(message);

/// <summary>A clip too short for a selection that never pads (FDP's): the preprocessor drops and reports it.</summary>
public sealed class ClipTooShortException(int length, int needed)
    : ClipDroppedException($"dropped: {length} frames from onset to offset, FDP's selection needs at least {needed}")
{
    public int Length { get; } = length;
    public int Needed { get; } = needed;
}
