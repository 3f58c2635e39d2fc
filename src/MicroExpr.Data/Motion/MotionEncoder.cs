namespace MicroExpr.Data.Motion;

/// <summary>Turns the T flow fields of a clip into the [T, 3, H, W] tensor (see <see cref="MotionEncoding"/>).</summary>
public static class MotionEncoder
{
    /// <summary>
    /// <see cref="MotionEncoding.Uvs"/>: channel 0 u / m, 1 v / m, 2 ε / e, with m the clip's largest |flow| and e its
    /// largest strain (0 where the clip does not move): zero motion stays 0, the sign of u, v is kept.
    /// <see cref="MotionEncoding.Hsv"/> (SLSTT): per frame, hue = angle of (u, v) in 0..360°, saturation 1, value =
    /// magnitude min–max stretched over the frame, converted to RGB in [0, 1] (channels R, G, B).
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
