namespace MicroExpr.Tensors.Cpu;

/// <summary>
/// Literal multi-head attention, the oracle for <see cref="AttentionSimd"/>. Per head b of BH:
/// S = scale·Q·Kᵀ [Nq, Nk], P = softmax(S) by rows, O = P·V [Nq, D], lse_i = log Σ_j exp(S_ij).
/// Backward: dV = Pᵀ·dO, dP = dO·Vᵀ, Di = Σ_d dO_id·O_id, dS = P∘(dP − Di), dQ = scale·dS·K, dK = scale·dSᵀ·Q.
/// Backward recomputes the plain softmax from Q and K (lse is only shape-checked) so the oracle does not depend on it.
/// Materialises the full score matrix of one head in double; scalar loops, double accumulation, no threads, no SIMD.
/// q [BH, Nq, D], k and v [BH, Nk, D], o and dO [BH, Nq, D], lse [BH, Nq], all contiguous row-major.
/// </summary>
public static class AttentionReference
{
    public static void Forward(Span<float> o, Span<float> lse, ReadOnlySpan<float> q, ReadOnlySpan<float> k,
        ReadOnlySpan<float> v, int bh, int nq, int nk, int d, float scale)
    {
        CheckShapes(o.Length, lse.Length, q.Length, k.Length, v.Length, bh, nq, nk, d);
        var p = new double[nq * nk];
        var rowLse = new double[nq];
        for (int b = 0; b < bh; b++)
        {
            int qo = b * nq * d, ko = b * nk * d;
            Probabilities(p, rowLse, q.Slice(qo, nq * d), k.Slice(ko, nk * d), nq, nk, d, scale);
            for (int i = 0; i < nq; i++)
            {
                lse[b * nq + i] = (float)rowLse[i];
                for (int c = 0; c < d; c++)
                {
                    double acc = 0;
                    for (int j = 0; j < nk; j++) acc += p[i * nk + j] * v[ko + j * d + c];
                    o[qo + i * d + c] = (float)acc;
                }
            }
        }
    }

    public static void Backward(Span<float> dq, Span<float> dk, Span<float> dv, ReadOnlySpan<float> q,
        ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> o, ReadOnlySpan<float> dO,
        ReadOnlySpan<float> lse, int bh, int nq, int nk, int d, float scale)
    {
        CheckShapes(o.Length, lse.Length, q.Length, k.Length, v.Length, bh, nq, nk, d);
        if (dq.Length != bh * nq * d || dO.Length != bh * nq * d || dk.Length != bh * nk * d || dv.Length != bh * nk * d)
            throw new ArgumentException("attention backward: gradient buffer sizes do not match BH, Nq, Nk, D");
        var p = new double[nq * nk];
        var ds = new double[nq * nk];
        var rowLse = new double[nq];
        for (int b = 0; b < bh; b++)
        {
            int qo = b * nq * d, ko = b * nk * d;
            // Plain softmax recomputed from the scores: the reference does not trust the saved lse.
            Probabilities(p, rowLse, q.Slice(qo, nq * d), k.Slice(ko, nk * d), nq, nk, d, scale);
            for (int i = 0; i < nq; i++)
            {
                double di = 0;
                for (int c = 0; c < d; c++) di += (double)dO[qo + i * d + c] * o[qo + i * d + c];
                for (int j = 0; j < nk; j++)
                {
                    double dp = 0;
                    for (int c = 0; c < d; c++) dp += (double)dO[qo + i * d + c] * v[ko + j * d + c];
                    ds[i * nk + j] = p[i * nk + j] * (dp - di);
                }
            }
            for (int i = 0; i < nq; i++)
                for (int c = 0; c < d; c++)
                {
                    double acc = 0;
                    for (int j = 0; j < nk; j++) acc += ds[i * nk + j] * k[ko + j * d + c];
                    dq[qo + i * d + c] = (float)(scale * acc);
                }
            for (int j = 0; j < nk; j++)
                for (int c = 0; c < d; c++)
                {
                    double accK = 0, accV = 0;
                    for (int i = 0; i < nq; i++)
                    {
                        accK += ds[i * nk + j] * q[qo + i * d + c];
                        accV += p[i * nk + j] * dO[qo + i * d + c];
                    }
                    dk[ko + j * d + c] = (float)(scale * accK);
                    dv[ko + j * d + c] = (float)accV;
                }
        }
    }

    /// <summary>Softmax of scale·Q·Kᵀ for one head into p [nq, nk] (double), with each row's log-sum-exp.</summary>
    static void Probabilities(double[] p, double[] lse, ReadOnlySpan<float> q, ReadOnlySpan<float> k, int nq, int nk,
        int d, float scale)
    {
        for (int i = 0; i < nq; i++)
        {
            double max = double.NegativeInfinity;
            for (int j = 0; j < nk; j++)
            {
                double s = 0;
                for (int c = 0; c < d; c++) s += (double)q[i * d + c] * k[j * d + c];
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

    static void CheckShapes(int o, int lse, int q, int k, int v, int bh, int nq, int nk, int d)
    {
        if (bh < 1 || nq < 1 || nk < 1 || d < 1) throw new ArgumentOutOfRangeException(nameof(bh), "attention: BH, Nq, Nk, D must be ≥ 1");
        if (o != bh * nq * d || q != bh * nq * d || lse != bh * nq || k != bh * nk * d || v != bh * nk * d)
            throw new ArgumentException("attention: buffer sizes do not match BH, Nq, Nk, D");
    }
}
