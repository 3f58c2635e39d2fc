using MicroExpr.Kernels;
using MicroExpr.Tensors.Cpu;

namespace MicroExpr.GpuCheck;

/// <summary>
/// The shapes: the bench model (8 clips·8 frames·3 heads = BH 192, N = 50 tokens, D = 64, C = 192, 3200 rows),
/// ViT-B/16 at 224 px (BH = 32·12, N = 197, C = 768), long sequences (BH 16 × N 1024, BH 4 × N 4096). Each kernel is first
/// checked against its CPU reference on a couple of shapes, then timed on all of them. --quick shrinks everything.
/// </summary>
internal static class Suites
{
    public static void Run(Harness h, bool quick)
    {
        Gemm(h, quick);
        Attention(h, quick);
        LayerNorm(h, quick);
        Softmax(h, quick);
        ConvSuite.Run(h, quick);
    }

    private static string S(params int[] dims) => "[" + string.Join(",", dims) + "]";

    private static void Gemm(Harness h, bool quick)
    {
        Console.WriteLine("GEMM (v1: shared-memory tiles, 4x4 register blocks)");
        var k = new GemmKernels(h.Accelerator);
        // (name, M, N, K, transA, transB): QKV projection x[3200,192]·Wᵀ, its weight gradient dyᵀ·x, a square GEMM.
        var shapes = quick
            ? new[] { ("gemm_nt", 100, 48, 24, false, true), ("gemm_tn", 48, 24, 100, true, false), ("gemm_nn", 64, 64, 64, false, false) }
            : new[] { ("gemm_nt", 3200, 576, 192, false, true), ("gemm_tn", 576, 192, 3200, true, false), ("gemm_nn", 1024, 1024, 1024, false, false) };
        var check = new List<(string, int, int, int, bool, bool)> { ("gemm_nn", 65, 33, 17, false, false), ("gemm_tt", 100, 65, 33, true, true) };
        check.AddRange(shapes.Take(2));
        foreach (var (name, m, n, kk, ta, tb) in check)
        {
            var a = Harness.Random((long)m * kk, 1);
            var b = Harness.Random((long)kk * n, 2);
            var da = h.Upload(a);
            var db = h.Upload(b);
            var dc = h.NaNs((long)m * n);
            k.Gemm(h.Stream, dc.View, 0, da.View, 0, ta, db.View, 0, tb, 1, m, n, kk, 1f, 0f);
            var expected = GemmReference.RunDouble(ReadOnlySpan<float>.Empty, n, a, ta ? m : kk, ta, b, tb ? kk : n, tb, m, n, kk, 1f, 0f);
            h.ReportCheck(name, S(m, n, kk), Harness.Compare(h.Download(dc), expected, 1e-5 * kk + 1e-5, 1e-4));
            h.ReleaseBuffers();
        }
        foreach (var (name, m, n, kk, ta, tb) in shapes)
        {
            var da = h.Upload(Harness.Random((long)m * kk, 3));
            var db = h.Upload(Harness.Random((long)kk * n, 4));
            var dc = h.NaNs((long)m * n);
            h.Time(name, S(m, n, kk), () => k.Gemm(h.Stream, dc.View, 0, da.View, 0, ta, db.View, 0, tb, 1, m, n, kk, 1f, 0f),
                2.0 * m * n * kk, "GFLOP/s");
            h.ReleaseBuffers();
        }
    }

    private static void Attention(Harness h, bool quick)
    {
        Console.WriteLine("Attention (v1: warp per owned row, 32-row tiles in shared memory, online softmax; backward: Di, dK/dV, dQ kernels)");
        using var k = new AttentionKernels(h.Accelerator);
        var shapes = quick
            ? new[] { ("model", 1, 50, 64), ("vit", 1, 65, 64) }
            : new[] { ("model", 192, 50, 64), ("vit", 384, 197, 64), ("long", 16, 1024, 64), ("long", 4, 4096, 64) };
        // Checked: an odd shape, the model shape and (on a GPU) ViT; the long shapes are only timed.
        var checks = quick ? new[] { ("odd", 2, 33, 17), ("model", 4, 50, 64) } : new[] { ("odd", 3, 33, 17), shapes[0], shapes[1] };
        foreach (var (tag, bh, n, d) in checks)
        {
            float scale = 1f / MathF.Sqrt(d);
            var q = Harness.Random((long)bh * n * d, 5, -2f, 2f);
            var kk = Harness.Random((long)bh * n * d, 6, -2f, 2f);
            var v = Harness.Random((long)bh * n * d, 7);
            var dO = Harness.Random((long)bh * n * d, 8);
            var oRef = new float[q.Length];
            var lseRef = new float[bh * n];
            AttentionReference.Forward(oRef, lseRef, q, kk, v, bh, n, n, d, scale);
            var dq = h.Upload(q); var dk = h.Upload(kk); var dv = h.Upload(v); var ddo = h.Upload(dO);
            var o = h.NaNs(q.Length); var lse = h.NaNs(bh * n);
            k.Forward(h.Stream, o.View, lse.View, dq.View, dk.View, dv.View, bh, n, n, d, scale);
            var oK = h.Download(o);
            var lseK = h.Download(lse);
            var fo = Harness.Compare(oK, oRef, 1e-5, 1e-4);
            var fl = Harness.Compare(lseK, lseRef, 1e-5, 1e-5);
            h.ReportCheck($"attention_fwd_{tag}", S(bh, n, d), (fo.Pass && fl.Pass, Math.Max(fo.MaxErr, fl.MaxErr)));
            var dqRef = new float[q.Length]; var dkRef = new float[q.Length]; var dvRef = new float[q.Length];
            AttentionReference.Backward(dqRef, dkRef, dvRef, q, kk, v, oK, dO, lseK, bh, n, n, d, scale);
            var gq = h.NaNs(q.Length); var gk = h.NaNs(q.Length); var gv = h.NaNs(q.Length);
            k.Backward(h.Stream, gq.View, gk.View, gv.View, dq.View, dk.View, dv.View, o.View, ddo.View, lse.View, bh, n, n, d, scale);
            var c1 = Harness.Compare(h.Download(gq), dqRef, 1e-4, 1e-3);
            var c2 = Harness.Compare(h.Download(gk), dkRef, 1e-4, 1e-3);
            var c3 = Harness.Compare(h.Download(gv), dvRef, 1e-4, 1e-3);
            h.ReportCheck($"attention_bwd_{tag}", S(bh, n, d), (c1.Pass && c2.Pass && c3.Pass, Math.Max(c1.MaxErr, Math.Max(c2.MaxErr, c3.MaxErr))));
            h.ReleaseBuffers();
        }
        foreach (var (tag, bh, n, d) in shapes)
        {
            float scale = 1f / MathF.Sqrt(d);
            long len = (long)bh * n * d;
            var dq = h.Upload(Harness.Random(len, 9)); var dk = h.Upload(Harness.Random(len, 10)); var dv = h.Upload(Harness.Random(len, 11));
            var ddo = h.Upload(Harness.Random(len, 12));
            var o = h.NaNs(len); var lse = h.NaNs((long)bh * n);
            var gq = h.NaNs(len); var gk = h.NaNs(len); var gv = h.NaNs(len);
            double mm = 2.0 * bh * n * n * d; // one N×N×D matrix product
            h.Time($"attention_fwd_{tag}", S(bh, n, d), () => k.Forward(h.Stream, o.View, lse.View, dq.View, dk.View, dv.View, bh, n, n, d, scale),
                2 * mm, "GFLOP/s");
            // Backward counted as 5 products (QKᵀ recomputed, dP, dV, dQ, dK); the kernels recompute QKᵀ and dP twice.
            h.Time($"attention_bwd_{tag}", S(bh, n, d), () => k.Backward(h.Stream, gq.View, gk.View, gv.View, dq.View, dk.View, dv.View,
                o.View, ddo.View, lse.View, bh, n, n, d, scale), 5 * mm, "GFLOP/s");
            h.ReleaseBuffers();
        }
    }

    private static void LayerNorm(Harness h, bool quick)
    {
        Console.WriteLine("LayerNorm (v1: warp per row; dgamma/dbeta by 64-row partial sums + ordered reduction)");
        using var k = new LayerNormKernels(h.Accelerator);
        var shapes = quick ? new[] { ("model", 16, 192), ("vit", 8, 768) } : new[] { ("model", 3200, 192), ("vit", 32 * 197, 768) };
        foreach (var (tag, rows, c) in shapes)
        {
            long n = (long)rows * c;
            var x = Harness.Random(n, 13, -2f, 3f);
            var gamma = Harness.Random(c, 14, 0.5f, 1.5f);
            var beta = Harness.Random(c, 15);
            var dy = Harness.Random(n, 16);
            var dX = h.Upload(x); var dG = h.Upload(gamma); var dB = h.Upload(beta); var dDy = h.Upload(dy);
            var y = h.NaNs(n); var mean = h.NaNs(rows); var rstd = h.NaNs(rows);
            var dx = h.NaNs(n); var dg = h.NaNs(c); var db = h.NaNs(c);
            k.Forward(h.Stream, y.View, mean.View, rstd.View, dX.View, dG.View, dB.View, rows, c, 1e-5f);
            var yRef = new float[n]; var mRef = new float[rows]; var rRef = new float[rows];
            LayerNormReference.Forward<float>(yRef, mRef, rRef, x, gamma, beta, rows, c, 1e-5);
            h.ReportCheck($"layernorm_fwd_{tag}", S(rows, c), Harness.Compare(h.Download(y), yRef, 1e-4, 1e-4));
            var meanK = h.Download(mean); var rstdK = h.Download(rstd);
            k.Backward(h.Stream, dx.View, dg.View, db.View, dDy.View, dX.View, mean.View, rstd.View, dG.View, rows, c);
            var dxRef = new float[n]; var dgRef = new float[c]; var dbRef = new float[c];
            LayerNormReference.Backward<float>(dxRef, dgRef, dbRef, dy, x, meanK, rstdK, gamma, rows, c);
            var c1 = Harness.Compare(h.Download(dx), dxRef, 1e-4, 1e-3);
            var c2 = Harness.Compare(h.Download(dg), dgRef, 1e-3, 1e-3);
            var c3 = Harness.Compare(h.Download(db), dbRef, 1e-3, 1e-3);
            h.ReportCheck($"layernorm_bwd_{tag}", S(rows, c), (c1.Pass && c2.Pass && c3.Pass, Math.Max(c1.MaxErr, Math.Max(c2.MaxErr, c3.MaxErr))));
            // Bytes: forward reads x, writes y; backward reads dy, x, writes dx (minimum traffic; the dgamma pass re-reads dy, x).
            h.Time($"layernorm_fwd_{tag}", S(rows, c), () => k.Forward(h.Stream, y.View, mean.View, rstd.View, dX.View, dG.View, dB.View, rows, c, 1e-5f),
                8.0 * n, "GB/s");
            h.Time($"layernorm_bwd_{tag}", S(rows, c), () => k.Backward(h.Stream, dx.View, dg.View, db.View, dDy.View, dX.View, mean.View, rstd.View,
                dG.View, rows, c), 12.0 * n, "GB/s");
            h.ReleaseBuffers();
        }
    }

    private static void Softmax(Harness h, bool quick)
    {
        Console.WriteLine("Softmax (v1: warp per row, online max/sum)");
        var k = new SoftmaxKernels(h.Accelerator);
        var shapes = quick ? new[] { ("model", 16, 50) } : new[] { ("model", 9600, 50), ("vit", 384 * 197, 197) };
        foreach (var (tag, rows, cols) in shapes)
        {
            long n = (long)rows * cols;
            var x = Harness.Random(n, 17, -4f, 4f);
            var dy = Harness.Random(n, 18);
            var dX = h.Upload(x); var dDy = h.Upload(dy);
            var y = h.NaNs(n); var dx = h.NaNs(n);
            foreach (bool log in new[] { false, true })
            {
                string name = log ? "logsoftmax" : "softmax";
                if (log) k.LogForward(h.Stream, y.View, dX.View, rows, cols); else k.Forward(h.Stream, y.View, dX.View, rows, cols);
                var yK = h.Download(y);
                var yRef = new float[n];
                if (log) SoftmaxReference.LogForward<float>(yRef, x, rows, cols); else SoftmaxReference.Forward<float>(yRef, x, rows, cols);
                h.ReportCheck($"{name}_fwd_{tag}", S(rows, cols), Harness.Compare(yK, yRef, 1e-5, 1e-4));
                if (log) k.LogBackward(h.Stream, dx.View, y.View, dDy.View, rows, cols); else k.Backward(h.Stream, dx.View, y.View, dDy.View, rows, cols);
                var dxRef = new float[n];
                if (log) SoftmaxReference.LogBackward<float>(dxRef, yK, dy, rows, cols); else SoftmaxReference.Backward<float>(dxRef, yK, dy, rows, cols);
                h.ReportCheck($"{name}_bwd_{tag}", S(rows, cols), Harness.Compare(h.Download(dx), dxRef, 1e-5, 1e-4));
                if (log)
                {
                    h.Time($"{name}_fwd_{tag}", S(rows, cols), () => k.LogForward(h.Stream, y.View, dX.View, rows, cols), 8.0 * n, "GB/s");
                    h.Time($"{name}_bwd_{tag}", S(rows, cols), () => k.LogBackward(h.Stream, dx.View, y.View, dDy.View, rows, cols), 12.0 * n, "GB/s");
                }
                else
                {
                    h.Time($"{name}_fwd_{tag}", S(rows, cols), () => k.Forward(h.Stream, y.View, dX.View, rows, cols), 8.0 * n, "GB/s");
                    h.Time($"{name}_bwd_{tag}", S(rows, cols), () => k.Backward(h.Stream, dx.View, y.View, dDy.View, rows, cols), 12.0 * n, "GB/s");
                }
            }
            h.ReleaseBuffers();
        }
    }
}
