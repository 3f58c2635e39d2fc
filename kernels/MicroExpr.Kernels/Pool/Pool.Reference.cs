namespace MicroExpr.Kernels;

/// <summary>
/// Pooling (windows in <see cref="PoolGeometry"/>), literal references in double over planes x [P, D, H, W] → y [P, Do, Ho, Wo]:
/// <code>
/// max:      y[p, o] = max over the window's inputs, idx[p, o] = its flat index d·H·W + h·W + w in the input plane
///           (the first maximum in d, h, w order; padding never wins)
/// average:  y[p, o] = Σ window / divisor (count_include_pad: the padded window's size, else the inputs in it);
///           adaptive windows always divide by the inputs in them
/// unpool:   y[p, ·] = 0, y[p, idx[p, j]] = x[p, j]   (x, idx [P, m] → y [P, n])
/// </code>
/// Backward: max pooling sends dy to the arg-max input (added where windows overlap), average pooling spreads dy/divisor
/// over the window, unpooling gathers dx[p, j] = dy[p, idx[p, j]]. Scalar loops, no threads: tests take finite
/// differences of these and check every fast version (<see cref="PoolCpu"/>, <see cref="PoolIlgpu"/>) against them.
/// </summary>
public static class PoolReference
{
    public static void MaxPool(Span<double> y, Span<int> idx, ReadOnlySpan<double> x, in PoolGeometry g)
    {
        for (int p = 0; p < g.Planes; p++)
            for (int od = 0; od < g.Do; od++)
                for (int oh = 0; oh < g.Ho; oh++)
                    for (int ow = 0; ow < g.Wo; ow++)
                    {
                        PoolGeometry.Window(od, g.D, g.Do, g.Kd, g.Sd, g.Pd, false, out int d0, out int d1, out _);
                        PoolGeometry.Window(oh, g.H, g.Ho, g.Kh, g.Sh, g.Ph, false, out int h0, out int h1, out _);
                        PoolGeometry.Window(ow, g.W, g.Wo, g.Kw, g.Sw, g.Pw, false, out int w0, out int w1, out _);
                        double best = double.NegativeInfinity;
                        int arg = -1;
                        for (int d = d0; d < d1; d++)
                            for (int h = h0; h < h1; h++)
                                for (int w = w0; w < w1; w++)
                                {
                                    int i = (d * g.H + h) * g.W + w;
                                    double v = x[p * g.InPlane + i];
                                    if (arg < 0 || v > best || double.IsNaN(v)) { best = v; arg = i; }
                                }
                        int o = p * g.OutPlane + (od * g.Ho + oh) * g.Wo + ow;
                        y[o] = best;
                        idx[o] = arg;
                    }
    }

    public static void AvgPool(Span<double> y, ReadOnlySpan<double> x, in PoolGeometry g)
    {
        bool ad = g.Adaptive != 0;
        for (int p = 0; p < g.Planes; p++)
            for (int od = 0; od < g.Do; od++)
                for (int oh = 0; oh < g.Ho; oh++)
                    for (int ow = 0; ow < g.Wo; ow++)
                    {
                        PoolGeometry.Window(od, g.D, g.Do, g.Kd, g.Sd, g.Pd, ad, out int d0, out int d1, out int pd);
                        PoolGeometry.Window(oh, g.H, g.Ho, g.Kh, g.Sh, g.Ph, ad, out int h0, out int h1, out int ph);
                        PoolGeometry.Window(ow, g.W, g.Wo, g.Kw, g.Sw, g.Pw, ad, out int w0, out int w1, out int pw);
                        double sum = 0;
                        for (int d = d0; d < d1; d++)
                            for (int h = h0; h < h1; h++)
                                for (int w = w0; w < w1; w++) sum += x[p * g.InPlane + (d * g.H + h) * g.W + w];
                        int count = g.CountIncludePad != 0 && !ad ? pd * ph * pw : (d1 - d0) * (h1 - h0) * (w1 - w0);
                        y[p * g.OutPlane + (od * g.Ho + oh) * g.Wo + ow] = sum / count;
                    }
    }

    public static void MaxUnpool(Span<double> y, ReadOnlySpan<double> x, ReadOnlySpan<int> idx, int planes, int m, int n)
    {
        y[..(planes * n)].Clear();
        for (int p = 0; p < planes; p++)
            for (int j = 0; j < m; j++) y[p * n + idx[p * m + j]] = x[p * m + j];
    }
}
