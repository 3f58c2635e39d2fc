namespace MicroExpr.Kernels;

/// <summary>
/// Attention v1, naive: the formula as written, in float. Per head b of BH (heads split over threads, one head per task):
/// S = scale·Q·Kᵀ is materialised as a whole [Nq, Nk] matrix, then each row gets its max (pass 2), exp and sum (pass 3)
/// and is divided by the sum (pass 4) to give P, and O = P·V reads P back (pass 5); lse_i = m_i + ln ℓ_i.
/// q, o [BH, Nq, D]; k, v [BH, Nk, D]; lse [BH, Nq]; all contiguous. Scalar loops, float accumulators (as a first
/// kernel would be; the double version is <see cref="AttentionReference"/>, the oracle).
/// <para>Why it is the first version of <c>bench attention --version all</c>: it is the baseline every idea of the later
/// versions is measured against. Its cost is the N×N score matrix: 4·Nq·Nk bytes per head written and read back five
/// times — at ViT's N = 197 that is 155 KB per head, larger than L1, and at N = 4096 64 MB, larger than any cache — so it
/// is memory-bound where v2 (<see cref="AttentionOnline"/>) streams the scores through a few registers.</para>
/// <para>Chosen: the scores buffer is allocated per head on the managed heap (the naive way; the SIMD kernels reuse
/// per-thread native scratch). Rejected: a single [BH, Nq, Nk] buffer for all heads, which is what a framework does
/// with unfused ops and would not fit memory at long N.</para>
/// </summary>
public static unsafe class AttentionNaive
{
    /// <summary>Contiguous q, o [BH, Nq, D], k, v [BH, Nk, D] → o, lse [BH, Nq]; heads split over up to <paramref name="threads"/> threads.</summary>
    public static void Forward(float* o, float* lse, float* q, float* k, float* v, int bh, int nq, int nk, int d, float scale, int threads)
    {
        Check(bh, nq, nk, d);
        nint po = (nint)o, pl = (nint)lse, pq = (nint)q, pk = (nint)k, pv = (nint)v;
        CpuThreads.For(bh, bh, (start, end) =>
        {
            for (int b = start; b < end; b++) Head((float*)po, (float*)pl, (float*)pq, (float*)pk, (float*)pv, b, nq, nk, d, scale);
        }, threads);
    }

    private static void Head(float* o, float* lse, float* q, float* k, float* v, int b, int nq, int nk, int d, float scale)
    {
        var s = new float[(long)nq * nk];                     // the N×N matrix this version is about
        float* qb = q + (long)b * nq * d, kb = k + (long)b * nk * d, vb = v + (long)b * nk * d, ob = o + (long)b * nq * d;
        // Pass 1: S = scale·Q·Kᵀ.
        for (int i = 0; i < nq; i++)
            for (int j = 0; j < nk; j++)
            {
                float acc = 0;
                for (int c = 0; c < d; c++) acc += qb[(long)i * d + c] * kb[(long)j * d + c];
                s[(long)i * nk + j] = acc * scale;
            }
        for (int i = 0; i < nq; i++)
        {
            long row = (long)i * nk;
            // Pass 2: the row max (subtracted so that exp never overflows).
            float m = float.NegativeInfinity;
            for (int j = 0; j < nk; j++) m = MathF.Max(m, s[row + j]);
            // Pass 3: exponentials and their sum.
            float sum = 0;
            for (int j = 0; j < nk; j++)
            {
                float e = MathF.Exp(s[row + j] - m);
                s[row + j] = e;
                sum += e;
            }
            // Pass 4: P = exp(S − m) / ℓ.
            for (int j = 0; j < nk; j++) s[row + j] /= sum;
            lse[(long)b * nq + i] = m + MathF.Log(sum);
        }
        // Pass 5: O = P·V.
        for (int i = 0; i < nq; i++)
            for (int c = 0; c < d; c++)
            {
                float acc = 0;
                for (int j = 0; j < nk; j++) acc += s[(long)i * nk + j] * vb[(long)j * d + c];
                ob[(long)i * d + c] = acc;
            }
    }

    internal static void Check(int bh, int nq, int nk, int d)
    {
        if (bh < 1 || nq < 1 || nk < 1 || d < 1) throw new ArgumentOutOfRangeException(nameof(bh), $"attention: BH, Nq, Nk, D must be ≥ 1 (got {bh}, {nq}, {nk}, {d})");
    }
}
