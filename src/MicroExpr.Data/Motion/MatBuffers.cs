using System.Runtime.InteropServices;
using OpenCvSharp;

namespace MicroExpr.Data.Motion;

/// <summary>Copies between float arrays (row-major H×W, or H×W×2 interleaved) and continuous CV_32F mats.</summary>
internal static class MatBuffers
{
    /// <summary>A continuous float mat's values, row-major, channels interleaved.</summary>
    public static float[] ToArray(Mat m)
    {
        if (m.Depth() != MatType.CV_32F) throw new ArgumentException($"expected a float mat, got {m.Type()}");
        using var c = m.IsContinuous() ? null : m.Clone();
        var src = c ?? m;
        var a = new float[src.Rows * src.Cols * src.Channels()];
        Marshal.Copy(src.Data, a, 0, a.Length);
        return a;
    }

    /// <summary>A new single-channel CV_32F mat holding a copy of <paramref name="a"/> (H×W).</summary>
    public static Mat FromArray(float[] a, int h, int w)
    {
        var m = new Mat(h, w, MatType.CV_32FC1);
        Marshal.Copy(a, 0, m.Data, h * w);
        return m;
    }
}
