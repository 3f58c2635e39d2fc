namespace MicroExpr.Kernels;

/// <summary>
/// The CPU pooling kernels (math in <see cref="PoolReference"/>): the planes [p0, p1) of P = N·C, the caller splits planes
/// over threads (planes are independent: the result does not depend on the split). One pass over the input and one over
/// the output; float accumulation within a window. Backward passes scatter within their own plane in a fixed order,
/// so they are deterministic. The window loops are scalar: a k×k window at stride s reads rows of k values, too short
/// for a vector, and the passes are bound by memory, not arithmetic.
/// </summary>
public static unsafe class PoolCpu
{
    public static void MaxPool(float* y, int* idx, float* x, in PoolGeometry g, int p0, int p1)
    {
        int inPlane = g.InPlane, outPlane = g.OutPlane;
        for (int p = p0; p < p1; p++)
        {
            float* xp = x + (long)p * inPlane;
            int o = p * outPlane;
            for (int od = 0; od < g.Do; od++)
            {
                PoolGeometry.Window(od, g.D, g.Do, g.Kd, g.Sd, g.Pd, false, out int d0, out int d1, out _);
                for (int oh = 0; oh < g.Ho; oh++)
                {
                    PoolGeometry.Window(oh, g.H, g.Ho, g.Kh, g.Sh, g.Ph, false, out int h0, out int h1, out _);
                    for (int ow = 0; ow < g.Wo; ow++, o++)
                    {
                        PoolGeometry.Window(ow, g.W, g.Wo, g.Kw, g.Sw, g.Pw, false, out int w0, out int w1, out _);
                        int arg = (d0 * g.H + h0) * g.W + w0;
                        float best = xp[arg];
                        for (int d = d0; d < d1; d++)
                            for (int h = h0; h < h1; h++)
                            {
                                int row = (d * g.H + h) * g.W;
                                for (int w = w0; w < w1; w++)
                                {
                                    float v = xp[row + w];
                                    if (v > best || float.IsNaN(v)) { best = v; arg = row + w; }
                                }
                            }
                        y[o] = best;
                        idx[o] = arg;
                    }
                }
            }
        }
    }

    /// <summary>dx[p, ·] = 0, then dx[p, idx[p, o]] += dy[p, o] in output order (max-pool backward; dx [P, n], dy, idx [P, m]).</summary>
    public static void ScatterAdd(float* dx, float* dy, int* idx, int m, int n, int p0, int p1)
    {
        for (int p = p0; p < p1; p++)
        {
            float* d = dx + (long)p * n;
            new Span<float>(d, n).Clear();
            long b = (long)p * m;
            for (int j = 0; j < m; j++) d[idx[b + j]] += dy[b + j];
        }
    }

    /// <summary>y[p, ·] = 0, then y[p, idx[p, j]] = x[p, j] (max-unpool; y [P, n], x, idx [P, m]; later j win on repeats).</summary>
    public static void Scatter(float* y, float* x, int* idx, int m, int n, int p0, int p1)
    {
        for (int p = p0; p < p1; p++)
        {
            float* d = y + (long)p * n;
            new Span<float>(d, n).Clear();
            long b = (long)p * m;
            for (int j = 0; j < m; j++) d[idx[b + j]] = x[b + j];
        }
    }

    /// <summary>dx[p, j] = dy[p, idx[p, j]] (max-unpool backward; dx, idx [P, m], dy [P, n]).</summary>
    public static void Gather(float* dx, float* dy, int* idx, int m, int n, int p0, int p1)
    {
        for (int p = p0; p < p1; p++)
        {
            long b = (long)p * m;
            float* s = dy + (long)p * n;
            for (int j = 0; j < m; j++) dx[b + j] = s[idx[b + j]];
        }
    }

    /// <summary>Average pooling forward (<paramref name="backward"/> false: y from x) or backward (true: dx from dy, dx
    /// overwritten), planes [p0, p1).</summary>
    public static void AvgPool(float* y, float* x, in PoolGeometry g, bool backward, int p0, int p1)
    {
        int inPlane = g.InPlane, outPlane = g.OutPlane;
        bool ad = g.Adaptive != 0;
        for (int p = p0; p < p1; p++)
        {
            float* xp = x + (long)p * inPlane;
            if (backward) new Span<float>(xp, inPlane).Clear();
            int o = p * outPlane;
            for (int od = 0; od < g.Do; od++)
            {
                PoolGeometry.Window(od, g.D, g.Do, g.Kd, g.Sd, g.Pd, ad, out int d0, out int d1, out int pd);
                for (int oh = 0; oh < g.Ho; oh++)
                {
                    PoolGeometry.Window(oh, g.H, g.Ho, g.Kh, g.Sh, g.Ph, ad, out int h0, out int h1, out int ph);
                    for (int ow = 0; ow < g.Wo; ow++, o++)
                    {
                        PoolGeometry.Window(ow, g.W, g.Wo, g.Kw, g.Sw, g.Pw, ad, out int w0, out int w1, out int pw);
                        int count = g.CountIncludePad != 0 && !ad ? pd * ph * pw : (d1 - d0) * (h1 - h0) * (w1 - w0);
                        float inv = 1f / count;
                        if (backward)
                        {
                            float v = y[o] * inv;
                            for (int d = d0; d < d1; d++)
                                for (int h = h0; h < h1; h++)
                                {
                                    float* row = xp + (d * g.H + h) * g.W;
                                    for (int w = w0; w < w1; w++) row[w] += v;
                                }
                        }
                        else
                        {
                            float sum = 0f;
                            for (int d = d0; d < d1; d++)
                                for (int h = h0; h < h1; h++)
                                {
                                    float* row = xp + (d * g.H + h) * g.W;
                                    for (int w = w0; w < w1; w++) sum += row[w];
                                }
                            y[o] = sum * inv;
                        }
                    }
                }
            }
        }
    }
}
