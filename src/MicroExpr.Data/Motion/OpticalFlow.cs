using OpenCvSharp;

namespace MicroExpr.Data.Motion;

/// <summary>Dense flow between two single-channel images of the same size, as row-major H×W arrays u (x) and v (y).</summary>
public static class OpticalFlow
{
    /// <summary>Flow from <paramref name="from"/> to <paramref name="to"/>: to(x + u, y + v) ≈ from(x, y).</summary>
    public static (float[] U, float[] V) Compute(FlowMethod method, Mat from, Mat to) => method switch
    {
        FlowMethod.Farneback => Farneback(from, to),
        FlowMethod.TvL1 => new TvL1Flow().Calc(from, to),
        _ => throw new ArgumentOutOfRangeException(nameof(method)),
    };

    /// <summary>OpenCV's Farneback with SLSTT's parameters: pyr_scale 0.5, levels 3, winsize 15, iterations 3, poly_n 5, poly_sigma 1.2.</summary>
    public static (float[] U, float[] V) Farneback(Mat from, Mat to)
    {
        using var flow = new Mat();
        Cv2.CalcOpticalFlowFarneback(from, to, flow, 0.5, 3, 15, 3, 5, 1.2, OpticalFlowFlags.None);
        var uv = MatBuffers.ToArray(flow);
        int n = from.Rows * from.Cols;
        var u = new float[n];
        var v = new float[n];
        for (int k = 0; k < n; k++) { u[k] = uv[2 * k]; v[k] = uv[2 * k + 1]; }
        return (u, v);
    }

    /// <summary>
    /// Optical strain ε = sqrt(u_x² + v_y² + ½(u_y + v_x)²) with central differences (one-sided at the border).
    /// Zero for a pure translation.
    /// </summary>
    public static float[] Strain(float[] u, float[] v, int h, int w)
    {
        var e = new float[h * w];
        for (int y = 0; y < h; y++)
        {
            int y0 = Math.Max(y - 1, 0), y1 = Math.Min(y + 1, h - 1);
            float dy = Math.Max(y1 - y0, 1);
            for (int x = 0; x < w; x++)
            {
                int x0 = Math.Max(x - 1, 0), x1 = Math.Min(x + 1, w - 1);
                float dx = Math.Max(x1 - x0, 1);
                int k = y * w + x;
                float ux = (u[y * w + x1] - u[y * w + x0]) / dx, uy = (u[y1 * w + x] - u[y0 * w + x]) / dy;
                float vx = (v[y * w + x1] - v[y * w + x0]) / dx, vy = (v[y1 * w + x] - v[y0 * w + x]) / dy;
                float shear = uy + vx;
                e[k] = MathF.Sqrt(ux * ux + vy * vy + 0.5f * shear * shear);
            }
        }
        return e;
    }
}
