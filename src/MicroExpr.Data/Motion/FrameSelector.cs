namespace MicroExpr.Data.Motion;

/// <summary>Which T positions of a clip become the T frames (positions are 0-based indices into the clip's frames).</summary>
public static class FrameSelector
{
    /// <summary>
    /// <see cref="FrameSelection.ApexCentred"/> (SLSTT): T consecutive frames centred on the apex (apex − T/2 …), shifted to
    /// fit inside onset+1..offset (onset..offset when the clip is one frame long).
    /// <see cref="FrameSelection.Uniform"/> (FDP): T positions spread evenly over onset..offset, both ends included,
    /// rounded to whole frames.
    /// When the range holds fewer than T frames the positions are fractional, spread evenly over it: the frame at
    /// position p is then the linear interpolation of frames ⌊p⌋ and ⌈p⌉ (padding a short clip).
    /// </summary>
    public static double[] Select(int onset, int apex, int offset, int t, FrameSelection selection)
    {
        if (onset < 0 || offset < onset || apex < onset || apex > offset || t < 1)
            throw new ArgumentException($"need 0 <= onset <= apex <= offset and T >= 1, got onset {onset}, apex {apex}, offset {offset}, T {t}");
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
