using OpenCvSharp;

namespace MicroExpr.Data.Motion;

/// <summary>
/// TV-L1 optical flow (Zach, Pock, Bischof 2007, "A duality based approach for realtime TV-L1 optical flow"), following
/// the numerical scheme of Sánchez Pérez, Meinhardt-Llopis, Facciolo (IPOL 2013) that OpenCV's DualTVL1 also uses:
/// coarse-to-fine over a pyramid (factor <see cref="ScaleStep"/>), <see cref="Warps"/> warpings per scale, and per
/// warping the alternation thresholding step (v) / dual projection (p) until the mean squared update of u falls under
/// <see cref="Epsilon"/>² or <see cref="MaxIterations"/> is reached; a 5×5 median filter of the flow after each warping.
/// Written in C# because the OpenCvSharp runtime's DualTVL1 (superres module) crashes natively and has no optflow module.
/// Image gradients, warping (bilinear remap), pyramid resizing and the median filter use OpenCV; the iteration is plain
/// C# over row-major float buffers of H×W.
/// Intensities are expected in 0..255 (λ = 0.15 is tuned for that range, as in OpenCV).
/// </summary>
public sealed class TvL1Flow
{
    public double Tau { get; init; } = 0.25;
    public double Lambda { get; init; } = 0.15;
    public double Theta { get; init; } = 0.3;
    public int Scales { get; init; } = 5;
    public int Warps { get; init; } = 5;
    public double Epsilon { get; init; } = 0.01;
    public int MaxIterations { get; init; } = 300;
    public double ScaleStep { get; init; } = 0.5;
    /// <summary>Coarsest level's smaller side is kept at least this many pixels (fewer scales on small images).</summary>
    public int MinSide { get; init; } = 12;

    /// <summary>
    /// Flow from <paramref name="i0"/> to <paramref name="i1"/> (single channel, same size; any depth, converted to float):
    /// i1(x + u(x)) ≈ i0(x). Returns u (horizontal) and v (vertical) as row-major H×W arrays.
    /// </summary>
    public (float[] U, float[] V) Calc(Mat i0, Mat i1)
    {
        if (i0.Size() != i1.Size() || i0.Channels() != 1 || i1.Channels() != 1)
            throw new ArgumentException("TV-L1 needs two single-channel images of the same size");
        var p0 = new List<Mat>();
        var p1 = new List<Mat>();
        var f0 = new Mat(); i0.ConvertTo(f0, MatType.CV_32F);
        var f1 = new Mat(); i1.ConvertTo(f1, MatType.CV_32F);
        p0.Add(f0);
        p1.Add(f1);
        double sigma = 0.6 * Math.Sqrt(1 / (ScaleStep * ScaleStep) - 1);
        for (int s = 1; s < Scales; s++)
        {
            var prev0 = p0[^1];
            int w = (int)Math.Round(prev0.Cols * ScaleStep), h = (int)Math.Round(prev0.Rows * ScaleStep);
            if (Math.Min(w, h) < MinSide) break;
            p0.Add(Down(prev0, w, h, sigma));
            p1.Add(Down(p1[^1], w, h, sigma));
        }
        try
        {
            int L = p0.Count;
            int hh = p0[L - 1].Rows, ww = p0[L - 1].Cols;
            var u = new float[hh * ww];
            var v = new float[hh * ww];
            for (int s = L - 1; s >= 0; s--)
            {
                if (s < L - 1)
                {
                    int nh = p0[s].Rows, nw = p0[s].Cols;
                    u = Up(u, hh, ww, nh, nw, (float)nw / ww);
                    v = Up(v, hh, ww, nh, nw, (float)nh / hh);
                    hh = nh; ww = nw;
                }
                Level(p0[s], p1[s], u, v);
            }
            return (u, v);
        }
        finally
        {
            foreach (var m in p0) m.Dispose();
            foreach (var m in p1) m.Dispose();
        }
    }

    static Mat Down(Mat src, int w, int h, double sigma)
    {
        using var blurred = new Mat();
        Cv2.GaussianBlur(src, blurred, new Size(0, 0), sigma, sigma, BorderTypes.Replicate);
        var dst = new Mat();
        Cv2.Resize(blurred, dst, new Size(w, h), 0, 0, InterpolationFlags.Linear);
        return dst;
    }

    static float[] Up(float[] a, int h, int w, int nh, int nw, float factor)
    {
        using var m = MatBuffers.FromArray(a, h, w);
        using var r = new Mat();
        Cv2.Resize(m, r, new Size(nw, nh), 0, 0, InterpolationFlags.Linear);
        var o = MatBuffers.ToArray(r);
        for (int i = 0; i < o.Length; i++) o[i] *= factor;
        return o;
    }

    /// <summary>One pyramid level: warpings of I1 by the current flow, each followed by the inner iterations. u, v are updated in place.</summary>
    void Level(Mat i0m, Mat i1m, float[] u, float[] v)
    {
        int h = i0m.Rows, w = i0m.Cols, n = h * w;
        var i0 = MatBuffers.ToArray(i0m);
        using var i1xm = new Mat();
        using var i1ym = new Mat();
        Cv2.Sobel(i1m, i1xm, MatType.CV_32F, 1, 0, 1, 0.5, 0, BorderTypes.Replicate);
        Cv2.Sobel(i1m, i1ym, MatType.CV_32F, 0, 1, 1, 0.5, 0, BorderTypes.Replicate);
        var p11 = new float[n]; var p12 = new float[n]; var p21 = new float[n]; var p22 = new float[n];
        var gx = new float[n]; var gy = new float[n]; var grad = new float[n]; var rhoC = new float[n];
        float lt = (float)(Lambda * Theta), theta = (float)Theta, taut = (float)(Tau / Theta);
        float eps2 = (float)(Epsilon * Epsilon);
        var mapX = new float[n];
        var mapY = new float[n];
        for (int warp = 0; warp < Warps; warp++)
        {
            for (int y = 0, k = 0; y < h; y++)
                for (int x = 0; x < w; x++, k++) { mapX[k] = x + u[k]; mapY[k] = y + v[k]; }
            using var mx = MatBuffers.FromArray(mapX, h, w);
            using var my = MatBuffers.FromArray(mapY, h, w);
            using var i1w = new Mat(); using var i1wx = new Mat(); using var i1wy = new Mat();
            Cv2.Remap(i1m, i1w, mx, my, InterpolationFlags.Linear, BorderTypes.Replicate);
            Cv2.Remap(i1xm, i1wx, mx, my, InterpolationFlags.Linear, BorderTypes.Replicate);
            Cv2.Remap(i1ym, i1wy, mx, my, InterpolationFlags.Linear, BorderTypes.Replicate);
            var iw = MatBuffers.ToArray(i1w);
            var ax = MatBuffers.ToArray(i1wx);
            var ay = MatBuffers.ToArray(i1wy);
            for (int k = 0; k < n; k++)
            {
                gx[k] = ax[k]; gy[k] = ay[k];
                grad[k] = ax[k] * ax[k] + ay[k] * ay[k];
                rhoC[k] = iw[k] - ax[k] * u[k] - ay[k] * v[k] - i0[k];
            }
            float error = float.MaxValue;
            for (int it = 0; it < MaxIterations && error > eps2; it++)
            {
                // Thresholding (v) and primal update u = v + θ·div p, fused: both only read this pixel's u and nearby p.
                double err = 0;
                for (int y = 0, k = 0; y < h; y++)
                {
                    for (int x = 0; x < w; x++, k++)
                    {
                        float g = grad[k], rho = rhoC[k] + gx[k] * u[k] + gy[k] * v[k];
                        float du, dv;
                        if (rho < -lt * g) { du = lt * gx[k]; dv = lt * gy[k]; }
                        else if (rho > lt * g) { du = -lt * gx[k]; dv = -lt * gy[k]; }
                        else if (g > 1e-10f) { float f = -rho / g; du = f * gx[k]; dv = f * gy[k]; }
                        else { du = 0; dv = 0; }
                        float v1 = u[k] + du, v2 = v[k] + dv;
                        // Divergence with backward differences; p is 0 outside the image on the left/top.
                        float div1 = p11[k] - (x > 0 ? p11[k - 1] : 0) + p12[k] - (y > 0 ? p12[k - w] : 0);
                        float div2 = p21[k] - (x > 0 ? p21[k - 1] : 0) + p22[k] - (y > 0 ? p22[k - w] : 0);
                        float nu = v1 + theta * div1, nv = v2 + theta * div2;
                        float eu = nu - u[k], ev = nv - v[k];
                        err += eu * eu + ev * ev;
                        u[k] = nu; v[k] = nv;
                    }
                }
                error = (float)(err / n);
                // Dual update: p ← (p + τ/θ ∇u) / (1 + τ/θ |∇u|), forward differences (0 at the last column/row).
                for (int y = 0, k = 0; y < h; y++)
                {
                    for (int x = 0; x < w; x++, k++)
                    {
                        float u1x = x < w - 1 ? u[k + 1] - u[k] : 0, u1y = y < h - 1 ? u[k + w] - u[k] : 0;
                        float u2x = x < w - 1 ? v[k + 1] - v[k] : 0, u2y = y < h - 1 ? v[k + w] - v[k] : 0;
                        float ng1 = 1 + taut * MathF.Sqrt(u1x * u1x + u1y * u1y);
                        float ng2 = 1 + taut * MathF.Sqrt(u2x * u2x + u2y * u2y);
                        p11[k] = (p11[k] + taut * u1x) / ng1; p12[k] = (p12[k] + taut * u1y) / ng1;
                        p21[k] = (p21[k] + taut * u2x) / ng2; p22[k] = (p22[k] + taut * u2y) / ng2;
                    }
                }
            }
            Median(u, h, w);
            Median(v, h, w);
        }
    }

    static void Median(float[] a, int h, int w)
    {
        if (h < 5 || w < 5) return;
        using var m = MatBuffers.FromArray(a, h, w);
        using var r = new Mat();
        Cv2.MedianBlur(m, r, 5);
        var o = MatBuffers.ToArray(r);
        Array.Copy(o, a, a.Length);
    }
}
