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
        var v = new ForwardSums<T> { Y = y, X = x, W = w, B = b, Relu = relu, Cout = g.Cout, Plane = g.Do * g.Ho * g.Wo };
        Walk(g, ref v);
    }

    /// <summary>dx [N, Cin, D, H, W] overwritten from dy [N, Cout, Do, Ho, Wo] and w.</summary>
    public static void BackwardData<T>(Span<T> dx, ReadOnlySpan<T> dy, ReadOnlySpan<T> w, in ConvGeometry g)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var v = new DataSums<T> { Dy = dy, W = w, Acc = new double[g.XLength] };
        Walk(g, ref v);
        for (long i = 0; i < v.Acc.Length; i++) dx[(int)i] = T.CreateTruncating(v.Acc[i]);
    }

    /// <summary>dw [Cout, Cg, kd, kh, kw] and db [Cout] (empty: not computed) overwritten from dy and x.</summary>
    public static void BackwardWeight<T>(Span<T> dw, Span<T> db, ReadOnlySpan<T> dy, ReadOnlySpan<T> x, in ConvGeometry g)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var v = new WeightSums<T>
        {
            Dy = dy, X = x, Acc = new double[g.WLength], BiasAcc = new double[g.Cout], Cout = g.Cout, Plane = g.Do * g.Ho * g.Wo,
        };
        Walk(g, ref v);
        for (int i = 0; i < v.Acc.Length; i++) dw[i] = T.CreateTruncating(v.Acc[i]);
        if (!db.IsEmpty)
            for (int i = 0; i < g.Cout; i++) db[i] = T.CreateTruncating(v.BiasAcc[i]);
    }

    /// <summary>What the three passes do along the one walk over the convolution's terms.</summary>
    private interface ITerms
    {
        /// <summary>Output element y[yi] starts.</summary>
        void Begin(int yi);
        /// <summary>The term w[wi]·x[xi] of output y[yi] (its input position is inside x).</summary>
        void Term(int yi, int xi, int wi);
        /// <summary>Output element y[yi] is complete.</summary>
        void End(int yi);
    }

    /// <summary>
    /// The definition, once: for every output y[n, co, o], every kernel tap k whose input position o·s − p + k·d is inside
    /// x, and every input channel c of co's group, the term w[co, c, k]·x[n, g·Cg + c, o·s − p + k·d].
    /// </summary>
    private static void Walk<TV>(in ConvGeometry g, ref TV v) where TV : ITerms, allows ref struct
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
                            int yi = YIndex(g, n, co, oz, oy, ox);
                            v.Begin(yi);
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
                                            v.Term(yi, XIndex(g, n, grp * cg + c, iz, iy, ix), WIndex(g, co, c, kz, ky, kx));
                                    }
                                }
                            }
                            v.End(yi);
                        }
            }
    }

    /// <summary>Forward: y = f(b + Σ w·x) per output.</summary>
    private ref struct ForwardSums<T> : ITerms where T : unmanaged, IFloatingPointIeee754<T>
    {
        public Span<T> Y;
        public ReadOnlySpan<T> X, W, B;
        public bool Relu;
        public int Cout, Plane;
        private double _s;

        public void Begin(int yi) => _s = B.IsEmpty ? 0 : double.CreateTruncating(B[yi / Plane % Cout]);
        public void Term(int yi, int xi, int wi) => _s += double.CreateTruncating(W[wi]) * double.CreateTruncating(X[xi]);
        public void End(int yi) => Y[yi] = T.CreateTruncating(Relu && _s < 0 ? 0 : _s);
    }

    /// <summary>Backward data: dx[xi] += w[wi]·dy[yi] over every term.</summary>
    private ref struct DataSums<T> : ITerms where T : unmanaged, IFloatingPointIeee754<T>
    {
        public ReadOnlySpan<T> Dy, W;
        public double[] Acc;
        private double _gy;

        public void Begin(int yi) => _gy = double.CreateTruncating(Dy[yi]);
        public void Term(int yi, int xi, int wi) => Acc[xi] += double.CreateTruncating(W[wi]) * _gy;
        public readonly void End(int yi) { }
    }

    /// <summary>Backward weight: dw[wi] += x[xi]·dy[yi] over every term, db[co] += dy[yi] over every output.</summary>
    private ref struct WeightSums<T> : ITerms where T : unmanaged, IFloatingPointIeee754<T>
    {
        public ReadOnlySpan<T> Dy, X;
        public double[] Acc, BiasAcc;
        public int Cout, Plane;
        private double _gy;

        public void Begin(int yi)
        {
            _gy = double.CreateTruncating(Dy[yi]);
            BiasAcc[yi / Plane % Cout] += _gy;
        }

        public void Term(int yi, int xi, int wi) => Acc[wi] += double.CreateTruncating(X[xi]) * _gy;
        public readonly void End(int yi) { }
    }

    private static int XIndex(in ConvGeometry g, int n, int c, int z, int y, int x) => (((n * g.Cin + c) * g.D + z) * g.H + y) * g.W + x;
    private static int YIndex(in ConvGeometry g, int n, int c, int z, int y, int x) => (((n * g.Cout + c) * g.Do + z) * g.Ho + y) * g.Wo + x;
    private static int WIndex(in ConvGeometry g, int co, int c, int z, int y, int x) => (((co * g.Cg + c) * g.Kd + z) * g.Kh + y) * g.Kw + x;
}
