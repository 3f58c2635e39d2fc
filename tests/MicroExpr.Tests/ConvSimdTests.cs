using MicroExpr.Kernels;

namespace MicroExpr.Tests;

/// <summary>
/// <see cref="ConvSimd"/> (im2col + packed GEMM) against <see cref="ConvReference"/> in double on the model's shapes: forward
/// (bias, ReLU), dx, dw, db; on 1 and 2 threads, on the Vector512 and the Vector256 GEMM paths (forced on one thread,
/// where the GEMM's path hook applies), the forward by the implicit phase GEMM and by im2col (forced), the implicit phase
/// GEMM's Vector256 tiles (forced through <see cref="SimdIsaSelect.Force"/>, on 1 and 2 threads), outputs NaN-filled;
/// and bit-identical on a second run.
/// </summary>
public unsafe class ConvSimdTests
{
    public static IEnumerable<TestCaseData> Shapes()
    {
        // name, N, Cin, Cout, H, W, k, stride, pad, dilation, groups
        yield return new TestCaseData("resnet 3x3 64", 2, 64, 64, 14, 14, 3, 1, 1, 1, 1);
        yield return new TestCaseData("stem 7x7/2", 2, 3, 16, 56, 56, 7, 2, 3, 1, 1);
        yield return new TestCaseData("1x1 fast path, one sample", 1, 64, 128, 14, 14, 1, 1, 0, 1, 1);
        yield return new TestCaseData("1x1/2 downsample", 3, 32, 64, 13, 13, 1, 2, 0, 1, 1);
        yield return new TestCaseData("3x3/2, one sample (threaded GEMMs)", 1, 17, 33, 28, 28, 3, 2, 1, 1, 1);
        yield return new TestCaseData("dilated, groups 2", 2, 16, 32, 13, 13, 3, 1, 2, 2, 2);
        yield return new TestCaseData("depthwise", 2, 64, 64, 14, 14, 3, 1, 1, 1, 64);
        yield return new TestCaseData("3x3/3 pad 0, 9 channels out (6 + 3 rows)", 2, 5, 9, 17, 17, 3, 3, 0, 1, 1);
        yield return new TestCaseData("7x7/2 pad 3, odd 13, one sample (row blocks on 2 threads)", 1, 3, 8, 13, 13, 7, 2, 3, 1, 1);
        yield return new TestCaseData("2x2/2 pad 0, 1 px output rows of 33", 2, 7, 17, 2, 66, 2, 2, 0, 1, 1);
        yield return new TestCaseData("3x3/2 pad 1, 16 in, 14 px (strided dx by residues)", 2, 16, 16, 14, 14, 3, 2, 1, 1, 1);
        yield return new TestCaseData("5x5/3 pad 2, 9 in, 17 px (strided dx, uneven residues)", 2, 9, 12, 17, 17, 5, 3, 2, 1, 1);
        yield return new TestCaseData("7x7/2 pad 3, 8 in, 13 px, one sample", 1, 8, 8, 13, 13, 7, 2, 3, 1, 1);
        yield return new TestCaseData("the stem at 112 px, one sample (grid outputs in several row blocks)", 1, 3, 64, 112, 112, 7, 2, 3, 1, 1);
    }

    [TestCaseSource(nameof(Shapes))]
    public void MatchesReference(string name, int n, int cin, int cout, int h, int w, int k, int s, int p, int d, int groups)
    {
        var g = ConvGeometry.Create2d(n, cin, cout, groups, h, w, k, k, s, s, p, p, d, d);
        var x = Check.Random((int)g.XLength, 1);
        var wt = Check.Random((int)g.WLength, 2, -0.2f, 0.2f);
        var b = Check.Random(cout, 3);
        var dy = Check.Random((int)g.YLength, 4);
        var yRef = new double[g.YLength];
        var dxRef = new double[g.XLength];
        var dwRef = new double[g.WLength];
        var dbRef = new double[cout];
        ConvReference.Forward<double>(yRef, D(x), D(wt), D(b), g, relu: true);
        ConvReference.BackwardData<double>(dxRef, D(dy), D(wt), g);
        ConvReference.BackwardWeight<double>(dwRef, dbRef, D(dy), D(x), g);

        foreach (var (threads, path, im2col, isa) in new[] { (1, GemmSimd.Path.Auto, false, (SimdIsa?)null), (2, GemmSimd.Path.Auto, false, null),
                     (1, GemmSimd.Path.Auto, true, null), (2, GemmSimd.Path.Auto, true, null), (1, GemmSimd.Path.Avx2, true, null),
                     (1, GemmSimd.Path.Auto, false, SimdIsa.V256), (2, GemmSimd.Path.Auto, false, SimdIsa.V256) })
        {
            var keep = SimdIsaSelect.Force;
            SimdIsaSelect.Force = isa;
            string what = $"{name} {g} threads={threads} path={path} isa={SimdIsaSelect.Current} {(im2col || !ConvSimd.UsesImplicit(g) ? "im2col" : "implicit")}";
            GemmSimd.ForcePath = path;
            ConvSimd.NoImplicit = im2col;
            try
            {
                var (y, dx, dw, db) = Run(g, x, wt, b, dy, threads);
                Check.Close(y, yRef, 1e-4, 1e-4, what + " y");
                Check.Close(dx, dxRef, 1e-4, 1e-4, what + " dx");
                Check.Close(dw, dwRef, 2e-4, 1e-4, what + " dw");
                Check.Close(db, dbRef, 1e-4, 1e-5, what + " db");
                var again = Run(g, x, wt, b, dy, threads);
                Assert.That(again.y, Is.EqualTo(y), what + ": y differs between two runs");
                Assert.That(again.dw, Is.EqualTo(dw), what + ": dw differs between two runs");
            }
            finally
            {
                GemmSimd.ForcePath = GemmSimd.Path.Auto;
                ConvSimd.NoImplicit = false;
                SimdIsaSelect.Force = keep;
            }
        }
    }

    private static (float[] y, float[] dx, float[] dw, float[] db) Run(ConvGeometry g, float[] x, float[] w, float[] b, float[] dy, int threads)
    {
        var y = Check.NaNs((int)g.YLength);
        var dx = Check.NaNs((int)g.XLength);
        var dw = Check.NaNs((int)g.WLength);
        var db = Check.NaNs(g.Cout);
        fixed (float* py = y, px = x, pw = w, pb = b, pdy = dy, pdx = dx, pdw = dw, pdb = db)
        {
            ConvSimd.Forward(py, px, pw, pb, g, relu: true, threads);
            ConvSimd.BackwardData(pdx, pdy, pw, g, threads);
            ConvSimd.BackwardWeight(pdw, pdb, pdy, px, g, threads);
        }
        return (y, dx, dw, db);
    }

    private static double[] D(float[] a) => a.Select(v => (double)v).ToArray();
}
