using ILGPU;
using MicroExpr.Kernels;

namespace MicroExpr.GpuCheck;

/// <summary>
/// BatchNorm (deterministic per-channel reductions) and pooling (max with int32 indices, average, their backward):
/// checked against <see cref="BatchNormReference"/> and <see cref="PoolReference"/> on small odd shapes, then timed at
/// the shapes: BatchNorm2d [64, 64, 28, 28] training forward and backward, max pool 3×3/2 pad 1 on
/// [64, 64, 56, 56] (the same as <c>benchmarks/pytorch_peer.py</c>). GB/s of the input read once and the output written
/// once. --quick shrinks the batch to 2.
/// </summary>
internal static class NormPoolSuite
{
    private static double[] D(float[] a) => a.Select(v => (double)v).ToArray();

    /// <summary>A float buffer's words as int32 (pooling's indices).</summary>
    private static ArrayView<int> I(ILGPU.Runtime.MemoryBuffer1D<float, Stride1D.Dense> b)
    {
        ArrayView<float> v = b.View;
        return v.Cast<int>();
    }

    public static void Run(Harness h, bool quick)
    {
        Console.WriteLine("BatchNorm and pooling (v1: one group per channel with a fixed-order tree; pooling one thread per element, backward by gathering)");
        int group = KernelGrid.PreferredGroupSize(h.Accelerator);
        var bn = new BatchNormIlgpu(h.Accelerator, group);
        var pool = new PoolIlgpu(h.Accelerator, group);

        // --- checks ---
        {
            int n = 3, c = 17, s = 35;
            var x = Harness.Random(n * c * s, 31, -1f, 3f);
            var gamma = Harness.Random(c, 32, 0.5f, 1.5f);
            var beta = Harness.Random(c, 33);
            var dy = Harness.Random(n * c * s, 34);
            var yRef = new double[x.Length]; var mRef = new double[c]; var vRef = new double[c];
            BatchNormReference.TrainForward(yRef, mRef, vRef, D(x), D(gamma), D(beta), n, c, s, 1e-5f);
            var dxRef = new double[x.Length]; var dgRef = new double[c]; var dbRef = new double[c];
            BatchNormReference.Backward(dxRef, dgRef, dbRef, D(dy), D(x), mRef, vRef, D(gamma), n, c, s, 1e-5f, true);
            var dX = h.Upload(x); var dG = h.Upload(gamma); var dB = h.Upload(beta); var dDy = h.Upload(dy);
            var y = h.NaNs(x.Length); var mean = h.NaNs(c); var var = h.NaNs(c);
            bn.TrainForward(h.Stream, y.View, mean.View, var.View, dX.View, dG.View, dB.View, n, c, s, 1e-5f);
            h.ReportCheck("batchnorm_train_fwd", $"[{n},{c},{s}]", Harness.Compare(h.Download(y), yRef, 1e-5, 1e-4));
            var dx = h.NaNs(x.Length); var dg = h.NaNs(c); var db = h.NaNs(c);
            bn.Backward(h.Stream, dx.View, dg.View, db.View, dDy.View, dX.View, mean.View, var.View, dG.View, n, c, s, 1e-5f, true);
            var c1 = Harness.Compare(h.Download(dx), dxRef, 1e-4, 1e-4);
            var c2 = Harness.Compare(h.Download(dg), dgRef, 1e-4, 1e-4);
            var c3 = Harness.Compare(h.Download(db), dbRef, 1e-4, 1e-4);
            h.ReportCheck("batchnorm_bwd", $"[{n},{c},{s}]", (c1.Pass && c2.Pass && c3.Pass, Math.Max(c1.MaxErr, Math.Max(c2.MaxErr, c3.MaxErr))));
            h.ReleaseBuffers();

            var g = new PoolGeometry { Planes = 2 * 15, D = 1, H = 13, W = 13, Do = 1, Ho = 7, Wo = 7, Kd = 1, Kh = 3, Kw = 3, Sd = 1, Sh = 2, Sw = 2, Ph = 1, Pw = 1 };
            var px = Harness.Random(g.Planes * g.InPlane, 35);
            var pyRef = new double[g.Planes * g.OutPlane];
            var idxRef = new int[pyRef.Length];
            PoolReference.MaxPool(pyRef, idxRef, D(px), g);
            var dPx = h.Upload(px); var py = h.NaNs(pyRef.Length); var pidx = h.NaNs(pyRef.Length);
            pool.MaxPool(h.Stream, py.View, I(pidx), dPx.View, g);
            var idxGot = h.Download(pidx).Select(BitConverter.SingleToInt32Bits).ToArray();
            var values = Harness.Compare(h.Download(py), pyRef, 0, 0);
            h.ReportCheck("maxpool2d_fwd", "[2,15,13,13] 3x3/2 p1", (values.Pass && idxGot.SequenceEqual(idxRef), values.MaxErr));
            g.CountIncludePad = 0;
            var ayRef = new double[pyRef.Length];
            PoolReference.AvgPool(ayRef, D(px), g);
            var ay = h.NaNs(pyRef.Length);
            pool.AvgPool(h.Stream, ay.View, dPx.View, g);
            h.ReportCheck("avgpool2d_fwd", "[2,15,13,13] 3x3/2 p1 exclude pad", Harness.Compare(h.Download(ay), ayRef, 1e-6, 1e-5));
            h.ReleaseBuffers();
        }

        // --- timings ---
        {
            int n = quick ? 2 : 64, c = 64, s = 28 * 28;
            long size = (long)n * c * s;
            var dX = h.Upload(Harness.Random(size, 36)); var dG = h.Upload(Harness.Random(c, 37)); var dB = h.Upload(Harness.Random(c, 38));
            var dDy = h.Upload(Harness.Random(size, 39));
            var y = h.NaNs(size); var mean = h.NaNs(c); var var = h.NaNs(c); var dx = h.NaNs(size); var dg = h.NaNs(c); var db = h.NaNs(c);
            string shape = $"[{n},{c},28,28]";
            h.Time("batchnorm2d_train_fwd", shape, () => bn.TrainForward(h.Stream, y.View, mean.View, var.View, dX.View, dG.View, dB.View, n, c, s, 1e-5f),
                8.0 * size, "GB/s");
            h.Time("batchnorm2d_eval_fwd", shape, () => bn.Apply(h.Stream, y.View, dX.View, mean.View, var.View, dG.View, dB.View, n, c, s, 1e-5f),
                8.0 * size, "GB/s");
            h.Time("batchnorm2d_bwd", shape, () => bn.Backward(h.Stream, dx.View, dg.View, db.View, dDy.View, dX.View, mean.View, var.View, dG.View,
                n, c, s, 1e-5f, true), 12.0 * size, "GB/s");
            h.ReleaseBuffers();

            var g = new PoolGeometry { Planes = n * 64, D = 1, H = 56, W = 56, Do = 1, Ho = 28, Wo = 28, Kd = 1, Kh = 3, Kw = 3, Sd = 1, Sh = 2, Sw = 2, Ph = 1, Pw = 1 };
            long inN = (long)g.Planes * g.InPlane, outN = (long)g.Planes * g.OutPlane;
            var px = h.Upload(Harness.Random(inN, 40)); var py = h.NaNs(outN); var pidx = h.NaNs(outN); var pdx = h.NaNs(inN);
            pool.MaxPool(h.Stream, py.View, I(pidx), px.View, g);
            string pshape = $"[{n},64,56,56] 3x3/2 p1";
            h.Time("maxpool2d_3x3/2_fwd", pshape, () => pool.MaxPool(h.Stream, py.View, I(pidx), px.View, g), 4.0 * (inN + outN), "GB/s");
            h.Time("maxpool2d_3x3/2_bwd", pshape, () => pool.MaxPoolBackward(h.Stream, pdx.View, py.View, I(pidx), g), 4.0 * (inN + outN), "GB/s");
            h.ReleaseBuffers();
        }
    }
}
