using MicroExpr.Kernels;

namespace MicroExpr.GpuCheck;

/// <summary>
/// The convolutions (tiled implicit GEMM): checked against <see cref="ConvReference"/> on two small shapes, then timed on
/// the shapes (64 frames at 112 px: the ResNet-18 3×3 layers at 28 and 14 px, the 7×7/2 stem, and a 3×3×3 conv3d
/// on 8 clips of 8 frames), forward and backward (dx + dw + db, counted as twice the forward's FLOPs), the same shapes as
/// <c>benchmarks/pytorch_peer.py --conv</c>. --quick shrinks the batch to 2.
/// </summary>
internal static class ConvSuite
{
    public static void Run(Harness h, bool quick)
    {
        Console.WriteLine("Conv (v1: tiled implicit GEMM, im2col gathered into shared memory; dW by ordered K slices)");
        using var k = new ConvKernels(h.Accelerator);
        var checks = new[]
        {
            ("conv2d_odd", ConvGeometry.Create2d(2, 5, 7, 1, 13, 11, 3, 3, 2, 1, 1, 1, 1, 1)),
            ("conv2d_dw_dil", ConvGeometry.Create2d(2, 8, 8, 8, 9, 9, 3, 3, 1, 1, 2, 2, 2, 2)),
            ("conv3d_odd", ConvGeometry.Create(1, 3, 5, 1, (4, 7, 6), (3, 3, 3), (1, 2, 1), (1, 1, 1), (1, 1, 1))),
        };
        foreach (var (name, g) in checks)
        {
            var x = Harness.Random(g.XLength, 21);
            var w = Harness.Random(g.WLength, 22, -0.3f, 0.3f);
            var b = Harness.Random(g.Cout, 23);
            var dy = Harness.Random(g.YLength, 24);
            var yRef = new float[g.YLength]; var dxRef = new float[g.XLength]; var dwRef = new float[g.WLength]; var dbRef = new float[g.Cout];
            ConvReference.Forward<float>(yRef, x, w, b, g, relu: false);
            ConvReference.BackwardData<float>(dxRef, dy, w, g);
            ConvReference.BackwardWeight<float>(dwRef, dbRef, dy, x, g);
            var dX = h.Upload(x); var dW = h.Upload(w); var dB = h.Upload(b); var dDy = h.Upload(dy);
            var y = h.NaNs(g.YLength); var dx = h.NaNs(g.XLength); var dw = h.NaNs(g.WLength); var db = h.NaNs(g.Cout);
            k.Forward(h.Stream, y.View, dX.View, dW.View, dB.View, g, relu: false);
            h.ReportCheck($"{name}_fwd", g.ToString(), Harness.Compare(h.Download(y), yRef, 1e-4, 1e-4));
            k.BackwardData(h.Stream, dx.View, dDy.View, dW.View, g);
            k.BackwardWeight(h.Stream, dw.View, db.View, dDy.View, dX.View, g);
            var c1 = Harness.Compare(h.Download(dx), dxRef, 1e-4, 1e-4);
            var c2 = Harness.Compare(h.Download(dw), dwRef, 5e-4, 1e-4);
            var c3 = Harness.Compare(h.Download(db), dbRef, 5e-4, 1e-4);
            h.ReportCheck($"{name}_bwd", g.ToString(), (c1.Pass && c2.Pass && c3.Pass, Math.Max(c1.MaxErr, Math.Max(c2.MaxErr, c3.MaxErr))));
            h.ReleaseBuffers();
        }

        int n = quick ? 2 : 64, clips = quick ? 1 : 8;
        var shapes = new[]
        {
            ("conv2d_3x3_64@28", ConvGeometry.Create2d(n, 64, 64, 1, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1)),
            ("conv2d_3x3_128@14", ConvGeometry.Create2d(n, 128, 128, 1, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1)),
            ("conv2d_stem_7x7/2", ConvGeometry.Create2d(n, 3, 64, 1, 112, 112, 7, 7, 2, 2, 3, 3, 1, 1)),
            ("conv3d_3x3x3_64", ConvGeometry.Create(clips, 64, 64, 1, (8, 28, 28), (3, 3, 3), (1, 1, 1), (1, 1, 1), (1, 1, 1))),
        };
        foreach (var (name, g) in shapes)
        {
            var dX = h.Upload(Harness.Random(g.XLength, 25)); var dW = h.Upload(Harness.Random(g.WLength, 26, -0.1f, 0.1f));
            var dB = h.Upload(Harness.Random(g.Cout, 27)); var dDy = h.Upload(Harness.Random(g.YLength, 28));
            var y = h.NaNs(g.YLength); var dx = h.NaNs(g.XLength); var dw = h.NaNs(g.WLength); var db = h.NaNs(g.Cout);
            string shape = g.ToString();
            h.Time($"{name}_fwd", shape, () => k.Forward(h.Stream, y.View, dX.View, dW.View, dB.View, g, relu: false), g.Flops, "GFLOP/s");
            h.Time($"{name}_bwd", shape, () =>
            {
                k.BackwardData(h.Stream, dx.View, dDy.View, dW.View, g);
                k.BackwardWeight(h.Stream, dw.View, db.View, dDy.View, dX.View, g);
            }, 2 * g.Flops, "GFLOP/s");
            h.ReleaseBuffers();
        }
    }
}
