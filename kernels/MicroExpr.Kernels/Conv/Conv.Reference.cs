using System.Numerics;

namespace MicroExpr.Kernels;

/// <summary>
/// The literal convolution (2-d and 3-d, groups, stride, padding, dilation; shapes in <see cref="ConvGeometry"/>):
/// scalar loops, every sum in double, no threads, no SIMD. Generic in the element type so that tests run it in double
/// (finite differences) or compare it with the fast versions in float. Outputs first; every output is overwritten.
/// <para>Forward: y[n, co, o] = f(b[co] + Σ_{c &lt; Cg, k} w[co, c, k]·x[n, g·Cg + c, o·s − p + k·d]), g = co / Coutg,
/// f = ReLU or identity, out-of-range input positions read as 0.</para>
/// <para>Backward: dx[n, ci, i] = Σ_{co in ci's group, k, o: o·s − p + k·d = i} w[co, ci − g·Cg, k]·dy[n, co, o];
/// dw[co, c, k] = Σ_{n, o} dy[n, co, o]·x[n, g·Cg + c, o·s − p + k·d]; db[co] = Σ_{n, o} dy[n, co, o].</para>
/// </summary>
public static class ConvReference
{
    /// <summary>y [N, Cout, Do, Ho, Wo] from x [N, Cin, D, H, W], w [Cout, Cg, kd, kh, kw], b [Cout] (empty: none).</summary>
    public static void Forward<T>(Span<T> y, ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> b, in ConvGeometry g, bool relu)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int cg = g.Cg, coutg = g.Coutg;
        for (int n = 0; n < g.N; n++)
            for (int co = 0; co < g.Cout; co++)
            {
                int grp = co / coutg;
                for (int oz = 0; oz < g.Do; oz++)
                    for (int oy = 0; oy < g.Ho; oy++)
                        for (int ox = 0; ox < g.Wo; ox++)
                        {
                            double s = b.IsEmpty ? 0 : double.CreateTruncating(b[co]);
                            for (int c = 0; c < cg; c++)
                                for (int kz = 0; kz < g.Kd; kz++)
                                {
                                    int iz = oz * g.Sd - g.Pd + kz * g.Dd;
                                    if ((uint)iz >= (uint)g.D) continue;
                                    for (int ky = 0; ky < g.Kh; ky++)
                                    {
                                        int iy = oy * g.Sh - g.Ph + ky * g.Dh;
                                        if ((uint)iy >= (uint)g.H) continue;
                                        for (int kx = 0; kx < g.Kw; kx++)
                                        {
                                            int ix = ox * g.Sw - g.Pw + kx * g.Dw;
                                            if ((uint)ix >= (uint)g.W) continue;
                                            s += double.CreateTruncating(w[WIndex(g, co, c, kz, ky, kx)]) *
                                                 double.CreateTruncating(x[XIndex(g, n, grp * cg + c, iz, iy, ix)]);
                                        }
                                    }
                                }
                            if (relu && s < 0) s = 0;
                            y[YIndex(g, n, co, oz, oy, ox)] = T.CreateTruncating(s);
                        }
            }
    }

    /// <summary>dx [N, Cin, D, H, W] overwritten from dy [N, Cout, Do, Ho, Wo] and w.</summary>
    public static void BackwardData<T>(Span<T> dx, ReadOnlySpan<T> dy, ReadOnlySpan<T> w, in ConvGeometry g)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var acc = new double[g.XLength];
        int cg = g.Cg, coutg = g.Coutg;
        for (int n = 0; n < g.N; n++)
            for (int co = 0; co < g.Cout; co++)
            {
                int grp = co / coutg;
                for (int oz = 0; oz < g.Do; oz++)
                    for (int oy = 0; oy < g.Ho; oy++)
                        for (int ox = 0; ox < g.Wo; ox++)
                        {
                            double gy = double.CreateTruncating(dy[YIndex(g, n, co, oz, oy, ox)]);
                            for (int kz = 0; kz < g.Kd; kz++)
                            {
                                int iz = oz * g.Sd - g.Pd + kz * g.Dd;
                                if ((uint)iz >= (uint)g.D) continue;
                                for (int ky = 0; ky < g.Kh; ky++)
                                {
                                    int iy = oy * g.Sh - g.Ph + ky * g.Dh;
                                    if ((uint)iy >= (uint)g.H) continue;
                                    for (int kx = 0; kx < g.Kw; kx++)
                                    {
                                        int ix = ox * g.Sw - g.Pw + kx * g.Dw;
                                        if ((uint)ix >= (uint)g.W) continue;
                                        for (int c = 0; c < cg; c++)
                                            acc[XIndex(g, n, grp * cg + c, iz, iy, ix)] += double.CreateTruncating(w[WIndex(g, co, c, kz, ky, kx)]) * gy;
                                    }
                                }
                            }
                        }
            }
        for (long i = 0; i < acc.Length; i++) dx[(int)i] = T.CreateTruncating(acc[i]);
    }

    /// <summary>dw [Cout, Cg, kd, kh, kw] and db [Cout] (empty: not computed) overwritten from dy and x.</summary>
    public static void BackwardWeight<T>(Span<T> dw, Span<T> db, ReadOnlySpan<T> dy, ReadOnlySpan<T> x, in ConvGeometry g)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var acc = new double[g.WLength];
        var bacc = new double[g.Cout];
        int cg = g.Cg, coutg = g.Coutg;
        for (int n = 0; n < g.N; n++)
            for (int co = 0; co < g.Cout; co++)
            {
                int grp = co / coutg;
                for (int oz = 0; oz < g.Do; oz++)
                    for (int oy = 0; oy < g.Ho; oy++)
                        for (int ox = 0; ox < g.Wo; ox++)
                        {
                            double gy = double.CreateTruncating(dy[YIndex(g, n, co, oz, oy, ox)]);
                            bacc[co] += gy;
                            for (int kz = 0; kz < g.Kd; kz++)
                            {
                                int iz = oz * g.Sd - g.Pd + kz * g.Dd;
                                if ((uint)iz >= (uint)g.D) continue;
                                for (int ky = 0; ky < g.Kh; ky++)
                                {
                                    int iy = oy * g.Sh - g.Ph + ky * g.Dh;
                                    if ((uint)iy >= (uint)g.H) continue;
                                    for (int kx = 0; kx < g.Kw; kx++)
                                    {
                                        int ix = ox * g.Sw - g.Pw + kx * g.Dw;
                                        if ((uint)ix >= (uint)g.W) continue;
                                        for (int c = 0; c < cg; c++)
                                            acc[WIndex(g, co, c, kz, ky, kx)] += double.CreateTruncating(x[XIndex(g, n, grp * cg + c, iz, iy, ix)]) * gy;
                                    }
                                }
                            }
                        }
            }
        for (int i = 0; i < acc.Length; i++) dw[i] = T.CreateTruncating(acc[i]);
        if (!db.IsEmpty)
            for (int i = 0; i < g.Cout; i++) db[i] = T.CreateTruncating(bacc[i]);
    }

    private static int XIndex(in ConvGeometry g, int n, int c, int z, int y, int x) => (((n * g.Cin + c) * g.D + z) * g.H + y) * g.W + x;
    private static int YIndex(in ConvGeometry g, int n, int c, int z, int y, int x) => (((n * g.Cout + c) * g.Do + z) * g.Ho + y) * g.Wo + x;
    private static int WIndex(in ConvGeometry g, int co, int c, int z, int y, int x) => (((co * g.Cg + c) * g.Kd + z) * g.Kh + y) * g.Kw + x;
}
