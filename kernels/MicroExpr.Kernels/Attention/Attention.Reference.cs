using System.Numerics;

namespace MicroExpr.Kernels;

/// <summary>
/// Literal multi-head attention, the oracle for <see cref="AttentionSimd"/>. Per head b of BH:
/// S = scale·Q·Kᵀ [Nq, Nk], P = softmax(S) by rows, O = P·V [Nq, D], lse_i = log Σ_j exp(S_ij).
/// Backward: dV = Pᵀ·dO, dP = dO·Vᵀ, Di = Σ_d dO_id·O_id, dS = P∘(dP − Di), dQ = scale·dS·K, dK = scale·dSᵀ·Q.
/// Backward recomputes the plain softmax from Q and K (lse is only shape-checked) so the oracle does not depend on it.
/// Materialises the full score matrix of one head in double; scalar loops, double accumulation, no threads, no SIMD.
/// q [BH, Nq, D], k and v [BH, Nk, D], o and dO [BH, Nq, D], lse [BH, Nq]: contiguous row-major, or each of q, k, v, o
/// through its <see cref="AttentionOperandLayout"/> (element (h, r, c) at layout.RowStart(h, r) + c; dq, dk, dv in
/// the q, k, v layouts, dO in the o layout; lse always contiguous). Elements a layout does not reach are neither read
/// nor written.
/// </summary>
public static class AttentionReference
{
    public static void Forward(Span<float> o, Span<float> lse, ReadOnlySpan<float> q, ReadOnlySpan<float> k,
        ReadOnlySpan<float> v, int bh, int nq, int nk, int d, float scale)
    {
        CheckExact(o.Length, lse.Length, q.Length, k.Length, v.Length, bh, nq, nk, d);
        Forward(o, lse, q, k, v, bh, nq, nk, d, scale, AttentionLayout.Contiguous(nq, nk, d));
    }

    public static void Forward(Span<float> o, Span<float> lse, ReadOnlySpan<float> q, ReadOnlySpan<float> k,
        ReadOnlySpan<float> v, int bh, int nq, int nk, int d, float scale, in AttentionLayout layout) =>
        Forward<float>(o, lse, q, k, v, bh, nq, nk, d, scale, layout);

    /// <summary>In double (finite-difference gradient checks of the tape op): the same loops, contiguous operands.</summary>
    public static void Forward(Span<double> o, Span<double> lse, ReadOnlySpan<double> q, ReadOnlySpan<double> k,
        ReadOnlySpan<double> v, int bh, int nq, int nk, int d, double scale)
    {
        CheckExact(o.Length, lse.Length, q.Length, k.Length, v.Length, bh, nq, nk, d);
        Forward<double>(o, lse, q, k, v, bh, nq, nk, d, scale, AttentionLayout.Contiguous(nq, nk, d));
    }

    private static void Forward<T>(Span<T> o, Span<T> lse, ReadOnlySpan<T> q, ReadOnlySpan<T> k,
        ReadOnlySpan<T> v, int bh, int nq, int nk, int d, double scale, in AttentionLayout layout) where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckReach(layout, o.Length, lse.Length, q.Length, k.Length, v.Length, bh, nq, nk, d);
        var p = new double[nq * nk];
        var rowLse = new double[nq];
        for (int b = 0; b < bh; b++)
        {
            Probabilities(p, rowLse, q, layout.Q, k, layout.K, b, nq, nk, d, scale);
            for (int i = 0; i < nq; i++)
            {
                lse[b * nq + i] = T.CreateTruncating(rowLse[i]);
                long oi = layout.O.RowStart(b, i);
                for (int c = 0; c < d; c++)
                {
                    double acc = 0;
                    for (int j = 0; j < nk; j++) acc += p[i * nk + j] * D(v[(int)(layout.V.RowStart(b, j) + c)]);
                    o[(int)(oi + c)] = T.CreateTruncating(acc);
                }
            }
        }
    }

    public static void Backward(Span<float> dq, Span<float> dk, Span<float> dv, ReadOnlySpan<float> q,
        ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> o, ReadOnlySpan<float> dO,
        ReadOnlySpan<float> lse, int bh, int nq, int nk, int d, float scale)
    {
        CheckExact(o.Length, lse.Length, q.Length, k.Length, v.Length, bh, nq, nk, d);
        if (dq.Length != bh * nq * d || dO.Length != bh * nq * d || dk.Length != bh * nk * d || dv.Length != bh * nk * d)
            throw new ArgumentException("attention backward: gradient buffer sizes do not match BH, Nq, Nk, D");
        Backward(dq, dk, dv, q, k, v, o, dO, lse, bh, nq, nk, d, scale, AttentionLayout.Contiguous(nq, nk, d));
    }

    public static void Backward(Span<float> dq, Span<float> dk, Span<float> dv, ReadOnlySpan<float> q,
        ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> o, ReadOnlySpan<float> dO,
        ReadOnlySpan<float> lse, int bh, int nq, int nk, int d, float scale, in AttentionLayout layout) =>
        Backward<float>(dq, dk, dv, q, k, v, o, dO, lse, bh, nq, nk, d, scale, layout);

    private static void Backward<T>(Span<T> dq, Span<T> dk, Span<T> dv, ReadOnlySpan<T> q,
        ReadOnlySpan<T> k, ReadOnlySpan<T> v, ReadOnlySpan<T> o, ReadOnlySpan<T> dO,
        ReadOnlySpan<T> lse, int bh, int nq, int nk, int d, double scale, in AttentionLayout layout) where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckReach(layout, o.Length, lse.Length, q.Length, k.Length, v.Length, bh, nq, nk, d);
        if (dq.Length < layout.Q.Reach(bh, nq, d) || dO.Length < layout.O.Reach(bh, nq, d) ||
            dk.Length < layout.K.Reach(bh, nk, d) || dv.Length < layout.V.Reach(bh, nk, d))
            throw new ArgumentException("attention backward: a gradient buffer is shorter than its layout reaches");
        var lq = layout.Q;
        var lk = layout.K;
        var lv = layout.V;
        var lo = layout.O;
        var p = new double[nq * nk];
        var ds = new double[nq * nk];
        var rowLse = new double[nq];
        for (int b = 0; b < bh; b++)
        {
            // Plain softmax recomputed from the scores: the reference does not trust the saved lse.
            Probabilities(p, rowLse, q, lq, k, lk, b, nq, nk, d, scale);
            for (int i = 0; i < nq; i++)
            {
                long oi = lo.RowStart(b, i);
                double di = 0;
                for (int c = 0; c < d; c++) di += D(dO[(int)(oi + c)]) * D(o[(int)(oi + c)]);
                for (int j = 0; j < nk; j++)
                {
                    long vj = lv.RowStart(b, j);
                    double dp = 0;
                    for (int c = 0; c < d; c++) dp += D(dO[(int)(oi + c)]) * D(v[(int)(vj + c)]);
                    ds[i * nk + j] = p[i * nk + j] * (dp - di);
                }
            }
            for (int i = 0; i < nq; i++)
                for (int c = 0; c < d; c++)
                {
                    double acc = 0;
                    for (int j = 0; j < nk; j++) acc += ds[i * nk + j] * D(k[(int)(lk.RowStart(b, j) + c)]);
                    dq[(int)(lq.RowStart(b, i) + c)] = T.CreateTruncating(scale * acc);
                }
            for (int j = 0; j < nk; j++)
                for (int c = 0; c < d; c++)
                {
                    double accK = 0, accV = 0;
                    for (int i = 0; i < nq; i++)
                    {
                        accK += ds[i * nk + j] * D(q[(int)(lq.RowStart(b, i) + c)]);
                        accV += p[i * nk + j] * D(dO[(int)(lo.RowStart(b, i) + c)]);
                    }
                    dk[(int)(lk.RowStart(b, j) + c)] = T.CreateTruncating(scale * accK);
                    dv[(int)(lv.RowStart(b, j) + c)] = T.CreateTruncating(accV);
                }
        }
    }

    /// <summary>Softmax of scale·Q·Kᵀ for head b into p [nq, nk] (double), with each row's log-sum-exp.</summary>
    static void Probabilities<T>(double[] p, double[] lse, ReadOnlySpan<T> q, AttentionOperandLayout lq,
        ReadOnlySpan<T> k, AttentionOperandLayout lk, int b, int nq, int nk, int d, double scale) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < nq; i++)
        {
            long qi = lq.RowStart(b, i);
            double max = double.NegativeInfinity;
            for (int j = 0; j < nk; j++)
            {
                long kj = lk.RowStart(b, j);
                double s = 0;
                for (int c = 0; c < d; c++) s += D(q[(int)(qi + c)]) * D(k[(int)(kj + c)]);
                s *= scale;
                p[i * nk + j] = s;
                if (s > max) max = s;
            }
            double sum = 0;
            for (int j = 0; j < nk; j++) sum += Math.Exp(p[i * nk + j] - max);
            for (int j = 0; j < nk; j++) p[i * nk + j] = Math.Exp(p[i * nk + j] - max) / sum;
            lse[i] = max + Math.Log(sum);
        }
    }

    static double D<T>(T x) where T : unmanaged, IFloatingPointIeee754<T> => double.CreateTruncating(x);

    static void CheckExact(int o, int lse, int q, int k, int v, int bh, int nq, int nk, int d)
    {
        if (bh < 1 || nq < 1 || nk < 1 || d < 1) throw new ArgumentOutOfRangeException(nameof(bh), "attention: BH, Nq, Nk, D must be ≥ 1");
        if (o != bh * nq * d || q != bh * nq * d || lse != bh * nq || k != bh * nk * d || v != bh * nk * d)
            throw new ArgumentException("attention: buffer sizes do not match BH, Nq, Nk, D");
    }

    static void CheckReach(in AttentionLayout layout, int o, int lse, int q, int k, int v, int bh, int nq, int nk, int d)
    {
        if (bh < 1 || nq < 1 || nk < 1 || d < 1) throw new ArgumentOutOfRangeException(nameof(bh), "attention: BH, Nq, Nk, D must be ≥ 1");
        layout.Validate(bh);
        if (o < layout.O.Reach(bh, nq, d) || q < layout.Q.Reach(bh, nq, d) || lse < bh * nq ||
            k < layout.K.Reach(bh, nk, d) || v < layout.V.Reach(bh, nk, d))
            throw new ArgumentException("attention: a buffer is shorter than its layout reaches for BH, Nq, Nk, D");
    }
}
