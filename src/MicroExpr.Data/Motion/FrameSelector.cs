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
}

/// <summary>A clip too short for a selection that never pads (FDP's): the preprocessor drops and reports it.</summary>
public sealed class ClipTooShortException(int length, int needed)
    : Exception($"dropped: {length} frames from onset to offset, FDP's selection needs at least {needed}")
{
    public int Length { get; } = length;
    public int Needed { get; } = needed;
}
