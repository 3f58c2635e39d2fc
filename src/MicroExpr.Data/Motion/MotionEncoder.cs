using OpenCvSharp;

namespace MicroExpr.Data.Motion;

/// <summary>Turns the T flow fields of a clip into the [T, 3, H, W] tensor (see <see cref="MotionEncoding"/>).</summary>
public static class MotionEncoder
{
    /// <summary>
    /// <see cref="MotionEncoding.Uvs"/>: channel 0 u / m, 1 v / m, 2 ε / e, with m the clip's largest |flow| and e its
    /// largest strain (0 where the clip does not move): zero motion stays 0, the sign of u, v is kept.
    /// <see cref="MotionEncoding.Hsv"/> (SLSTT): per frame, hue = angle of (u, v) in 0..360°, saturation 1, value =
    /// magnitude min–max stretched over the frame, converted to RGB in [0, 1] (channels R, G, B).
    /// <see cref="MotionEncoding.Hsv8"/> (SLSTT as released): per frame <see cref="Hsv8Bgr"/> then <see cref="JpegRoundTrip"/>.
    /// </summary>
    /// <param name="fixedScale">uvs only: when &gt; 0, u, v and ε are divided by this fixed value (pixels) instead of the
    /// clip's maxima, and clipped to ±4, so equal motions give equal values in every clip (a blink no longer shrinks the
    /// rest of its clip)</param>
    public static float[] Encode(IReadOnlyList<(float[] U, float[] V)> flows, int h, int w, MotionEncoding encoding, float fixedScale = 0)
    {
        int n = h * w, t = flows.Count;
        var o = new float[t * 3 * n];
        if (encoding == MotionEncoding.Uvs)
        {
            var strains = flows.Select(f => OpticalFlow.Strain(f.U, f.V, h, w)).ToList();
            float maxMag = 0, maxStrain = 0;
            for (int i = 0; i < t; i++)
                for (int k = 0; k < n; k++)
                {
                    maxMag = MathF.Max(maxMag, MathF.Sqrt(flows[i].U[k] * flows[i].U[k] + flows[i].V[k] * flows[i].V[k]));
                    maxStrain = MathF.Max(maxStrain, strains[i][k]);
                }
            float sm = maxMag > 1e-12f ? 1 / maxMag : 0, se = maxStrain > 1e-12f ? 1 / maxStrain : 0;
            float limit = float.MaxValue;
            if (fixedScale > 0)
            {
                sm = se = 1 / fixedScale;
                limit = 4;
            }
            for (int i = 0; i < t; i++)
            {
                int b = i * 3 * n;
                for (int k = 0; k < n; k++)
                {
                    o[b + k] = Math.Clamp(flows[i].U[k] * sm, -limit, limit);
                    o[b + n + k] = Math.Clamp(flows[i].V[k] * sm, -limit, limit);
                    o[b + 2 * n + k] = Math.Min(strains[i][k] * se, limit);
                }
            }
            return o;
        }
        if (encoding == MotionEncoding.Hsv8)
        {
            for (int i = 0; i < t; i++)
            {
                using var bgr = Hsv8Bgr(flows[i].U, flows[i].V, h, w);
                JpegRoundTrip(bgr).CopyTo(o, i * 3 * n);
            }
            return o;
        }
        var mag = new float[n];
        for (int i = 0; i < t; i++)
        {
            var (u, v) = flows[i];
            float lo = float.MaxValue, hi = float.MinValue;
            for (int k = 0; k < n; k++)
            {
                mag[k] = MathF.Sqrt(u[k] * u[k] + v[k] * v[k]);
                lo = MathF.Min(lo, mag[k]);
                hi = MathF.Max(hi, mag[k]);
            }
            float range = hi - lo > 1e-12f ? hi - lo : 0;
            int b = i * 3 * n;
            for (int k = 0; k < n; k++)
            {
                float hue = MathF.Atan2(v[k], u[k]) * (180f / MathF.PI);
                if (hue < 0) hue += 360;
                float val = range > 0 ? (mag[k] - lo) / range : 0;
                var (r, g, bl) = HsvToRgb(hue, 1, val);
                o[b + k] = r;
                o[b + n + k] = g;
                o[b + 2 * n + k] = bl;
            }
        }
        return o;
    }

    /// <summary>
    /// One flow field [h·w] (u, v) → the 8-bit BGR image SLSTT's <c>preprocess/data_init.py</c> writes (a CV_8UC3 Mat; the
    /// caller disposes it): <c>mag, ang = cv2.cartToPolar(u, v)</c> (OpenCV's, so its approximate angle), H =
    /// <see cref="QuantiseHue"/>(ang), S = 255, V = <see cref="QuantiseValue"/>(mag), then <c>cv2.COLOR_HSV2BGR</c> (OpenCV's
    /// 8-bit HSV, H in 0..179).
    /// </summary>
    public static Mat Hsv8Bgr(float[] u, float[] v, int h, int w)
    {
        int n = h * w;
        if (u.Length != n || v.Length != n) throw new ArgumentException($"flow of {u.Length} and {v.Length} values for a {h}x{w} image");
        using var mu = new Mat(h, w, MatType.CV_32F);
        using var mv = new Mat(h, w, MatType.CV_32F);
        mu.SetArray(u);
        mv.SetArray(v);
        using var mag = new Mat();
        using var ang = new Mat();
        Cv2.CartToPolar(mu, mv, mag, ang);
        mag.GetArray(out float[] m);
        ang.GetArray(out float[] a);
        var value = QuantiseValue(m);
        var hsv = new Vec3b[n];
        for (int k = 0; k < n; k++) hsv[k] = new Vec3b(QuantiseHue(a[k]), 255, value[k]);
        using var hsvMat = new Mat(h, w, MatType.CV_8UC3);
        hsvMat.SetArray(hsv);
        var bgr = new Mat();
        Cv2.CvtColor(hsvMat, bgr, ColorConversionCodes.HSV2BGR);
        return bgr;
    }

    /// <summary>
    /// The release's hue: <c>hsv[..., 0] = ang*180/np.pi/2</c>, evaluated as NumPy does on a float32 array (float32
    /// arithmetic, left to right) and stored into uint8 by truncation toward zero: an angle in [0, 2π) radians → 0..179.
    /// </summary>
    public static byte QuantiseHue(float angleRadians)
    {
        float h = angleRadians * 180f / MathF.PI / 2f;
        return (byte)Math.Clamp(MathF.Truncate(h), 0f, 255f);
    }

    /// <summary>
    /// The release's value: <c>cv2.normalize(mag, None, 0, 255, cv2.NORM_MINMAX)</c> (float32 out: scale = 255/(max − min),
    /// or 0 when max − min ≤ DBL_EPSILON, so a still frame is 0; shift = −min·scale), stored into uint8 by NumPy's
    /// truncation toward zero (not rounding: a magnitude halfway up the range gives 127).
    /// </summary>
    public static byte[] QuantiseValue(float[] magnitude)
    {
        double lo = double.MaxValue, hi = double.MinValue;
        foreach (float x in magnitude)
        {
            lo = Math.Min(lo, x);
            hi = Math.Max(hi, x);
        }
        double scale = hi - lo > DblEpsilon ? 255.0 / (hi - lo) : 0, shift = -lo * scale;
        var o = new byte[magnitude.Length];
        for (int k = 0; k < o.Length; k++)
        {
            float y = (float)(magnitude[k] * scale + shift);
            o[k] = (byte)Math.Clamp(MathF.Truncate(y), 0f, 255f);
        }
        return o;
    }

    /// <summary>
    /// The release's storage round trip: <c>cv2.imwrite(… .jpg)</c> at OpenCV's default JPEG quality (95, 4:2:0 chroma),
    /// read back (the release reads with PIL as RGB; here OpenCV's <c>imdecode</c>, both libjpeg decoders, which may differ by
    /// a level where their upsampling differs) → RGB planes / 255, [3, h·w]. The loss is part of the recipe: the
    /// pretrained ViT saw these images, artefacts included.
    /// </summary>
    public static float[] JpegRoundTrip(Mat bgr)
    {
        Cv2.ImEncode(".jpg", bgr, out byte[] jpeg);
        using var back = Cv2.ImDecode(jpeg, ImreadModes.Color);
        if (back.Empty() || back.Rows != bgr.Rows || back.Cols != bgr.Cols)
            throw new InvalidOperationException($"JPEG round trip of a {bgr.Cols}x{bgr.Rows} motion image failed");
        back.GetArray(out Vec3b[] px);
        int n = px.Length;
        var o = new float[3 * n];
        for (int k = 0; k < n; k++)
        {
            o[k] = px[k].Item2 / 255f;          // R
            o[n + k] = px[k].Item1 / 255f;      // G
            o[2 * n + k] = px[k].Item0 / 255f;  // B
        }
        return o;
    }

    const double DblEpsilon = 2.220446049250313e-16; // C's DBL_EPSILON, OpenCV's test in normalize

    /// <summary>HSV (hue in degrees 0..360, saturation and value in 0..1) to RGB in 0..1.</summary>
    public static (float R, float G, float B) HsvToRgb(float h, float s, float v)
    {
        float c = v * s, hp = (h % 360) / 60f, x = c * (1 - MathF.Abs(hp % 2 - 1)), m = v - c;
        (float r, float g, float b) = (int)hp switch
        {
            0 => (c, x, 0f),
            1 => (x, c, 0f),
            2 => (0f, c, x),
            3 => (0f, x, c),
            4 => (x, 0f, c),
            _ => (c, 0f, x),
        };
        return (r + m, g + m, b + m);
    }
}
