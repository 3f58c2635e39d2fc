using MicroExpr.Tensors.Cpu;

namespace MicroExpr.Cli.Explain;

/// <summary>The engine's real fused attention (the SIMD CPU kernel, one thread) on a trace's inputs, in float.</summary>
internal sealed unsafe record AttentionKernelRun(float[] O, float[] Lse, float[]? DQ, float[]? DK, float[]? DV)
{
    public static AttentionKernelRun Of(AttentionTrace t)
    {
        int n = t.N, d = t.D;
        float[] F(double[] a) => a.Select(x => (float)x).ToArray();
        float[] q = F(t.Q), k = F(t.K), v = F(t.V);
        var o = new float[n * d];
        var lse = new float[n];
        Array.Fill(o, float.NaN);
        Array.Fill(lse, float.NaN);
        fixed (float* po = o, pl = lse, pq = q, pk = k, pv = v)
            AttentionSimd.Forward(po, pl, pq, pk, pv, 1, n, n, d, (float)t.Scale, threads: 1);
        if (t.DOut == null) return new AttentionKernelRun(o, lse, null, null, null);
        var dO = F(t.DOut);
        var dq = new float[n * d];
        var dk = new float[n * d];
        var dv = new float[n * d];
        Array.Fill(dq, float.NaN);
        Array.Fill(dk, float.NaN);
        Array.Fill(dv, float.NaN);
        fixed (float* pdq = dq, pdk = dk, pdv = dv, po = o, pdo = dO, pl = lse, pq = q, pk = k, pv = v)
            AttentionSimd.Backward(pdq, pdk, pdv, pq, pk, pv, po, pdo, pl, 1, n, n, d, (float)t.Scale, threads: 1);
        return new AttentionKernelRun(o, lse, dq, dk, dv);
    }

    /// <summary>max over elements of |a − b| / max(1, |b|): the relative difference, absolute near zero.</summary>
    public static double Difference(float[] kernel, double[] trace) =>
        kernel.Zip(trace, (x, y) => Math.Abs(x - y) / Math.Max(1, Math.Abs(y))).DefaultIfEmpty(0).Max();
}
