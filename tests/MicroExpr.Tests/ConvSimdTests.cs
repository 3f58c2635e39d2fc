using MicroExpr.Kernels;

namespace MicroExpr.Tests;

/// <summary>
/// <see cref="ConvSimd"/> (im2col + packed GEMM) against <see cref="ConvReference"/> in double on the model's shapes: forward
/// (bias, ReLU), dx, dw, db; on 1 and 2 threads, on the Vector512 and the Vector256 GEMM paths (forced on one thread,
/// where the GEMM's path hook applies), the forward by the implicit phase GEMM and by im2col (forced), the implicit phase
/// GEMM's Vector256 tiles (forced through <see cref="SimdIsaSelect.Force"/>, on 1 and 2 threads), the 3×3 stride-1 forward and
/// backward data by Winograd's F(2×2, 3×3) and with it turned off, outputs NaN-filled;
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
        // Winograd's F(2×2, 3×3) (3×3, stride 1): odd outputs (a last tile of one row or column), tile rows and 32-tile
        // strips across samples, channels around the 8-row tile and the vector width, pads 0–2, groups, a 1×1 output.
        yield return new TestCaseData("winograd 28 px, 16 -> 64, strips across samples", 3, 16, 64, 28, 28, 3, 1, 1, 1, 1);
        yield return new TestCaseData("winograd odd 13 px pad 0, 17 -> 15", 3, 17, 15, 13, 13, 3, 1, 0, 1, 1);
        yield return new TestCaseData("winograd 7 px pad 2, groups 2, 16 per group", 2, 32, 32, 7, 7, 3, 1, 2, 1, 2);
        yield return new TestCaseData("winograd 1 px input pad 1 (1x1 output)", 2, 16, 17, 1, 1, 3, 1, 1, 1, 1);
        yield return new TestCaseData("winograd 34 px wide rows (two vectors of tiles), 8 -> 8", 1, 8, 8, 9, 34, 3, 1, 1, 1, 1);
        yield return new TestCaseData("winograd 128 -> 128 at 7 px, one sample", 1, 128, 128, 7, 7, 3, 1, 1, 1, 1);
        yield return new TestCaseData("winograd 256 -> 272 at 8 px (U past 4 MiB: two strips in a group on 1 thread)", 4, 256, 272, 8, 8, 3, 1, 1, 1, 1);
    }

    [TestCaseSource(nameof(Shapes))]
    public void MatchesReference(string name, int n, int cin, int cout, int h, int w, int k, int s, int p, int d, int groups) =>
        Verify(name, ConvGeometry.Create2d(n, cin, cout, groups, h, w, k, k, s, s, p, p, d, d));

    public static IEnumerable<TestCaseData> Shapes3d()
    {
        // name, N, Cin, Cout, input (D, H, W), kernel, stride, padding, groups
        yield return new TestCaseData("3x3x3 pad 1, 7 planes of 13 px (Winograd: depth blocks, odd tiles)", 2, 16, 16, (7, 13, 13), (3, 3, 3), (1, 1, 1), (1, 1, 1), 1);
        yield return new TestCaseData("3x3x3 pad 0, 17 -> 9, depth 4", 1, 17, 9, (4, 10, 10), (3, 3, 3), (1, 1, 1), (0, 0, 0), 1);
        yield return new TestCaseData("1x3x3 pad (0, 1, 1), groups 2", 2, 16, 32, (3, 8, 8), (1, 3, 3), (1, 1, 1), (0, 1, 1), 2);
        yield return new TestCaseData("3x3x3 stride (1, 2, 2) (implicit GEMM)", 1, 8, 8, (4, 9, 9), (3, 3, 3), (1, 2, 2), (1, 1, 1), 1);
    }

    [TestCaseSource(nameof(Shapes3d))]
    public void MatchesReference3d(string name, int n, int cin, int cout, (int, int, int) input, (int, int, int) k, (int, int, int) s,
        (int, int, int) p, int groups) =>
        Verify(name, ConvGeometry.Create(n, cin, cout, groups, input, k, s, p, (1, 1, 1)));

    private static void Verify(string name, ConvGeometry g)
    {
        int cout = g.Cout;
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

        foreach (var (threads, path, im2col, isa, noWinograd) in new[] { (1, GemmSimd.Path.Auto, false, (SimdIsa?)null, false),
                     (2, GemmSimd.Path.Auto, false, null, false), (1, GemmSimd.Path.Auto, false, null, true), (2, GemmSimd.Path.Auto, false, null, true),
                     (1, GemmSimd.Path.Auto, true, null, false), (2, GemmSimd.Path.Auto, true, null, false), (1, GemmSimd.Path.Avx2, true, null, false),
                     (1, GemmSimd.Path.Auto, false, SimdIsa.V256, false), (2, GemmSimd.Path.Auto, false, SimdIsa.V256, false) })
        {
            var keep = SimdIsaSelect.Force;
            SimdIsaSelect.Force = isa;
            ConvSimd.NoWinograd = noWinograd;
            ConvSimd.NoImplicit = im2col;
            string forward = ConvSimd.UsesWinograd(g) ? "winograd" : ConvSimd.UsesImplicit(g) ? "implicit" : "im2col";
            string what = $"{name} {g} threads={threads} path={path} isa={SimdIsaSelect.Current} forward={forward}";
            GemmSimd.ForcePath = path;
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
                ConvSimd.NoWinograd = false;
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
