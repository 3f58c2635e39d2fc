namespace MicroExpr.Kernels;

/// <summary>
/// Attention v2, online softmax (Milakov and Gimelshein 2018; the idea of flash attention), scalar float. Per query row
/// i, the keys are walked once, in tiles of <see cref="Tile"/>: the tile's scores s_j = scale·q_i·k_j go into a tile-sized
/// buffer, the running max becomes m' = max(m, max_j s_j), the running sum ℓ and the partial output row o (D floats) are
/// rescaled by exp(m − m') — what they summed was relative to the old max — and the tile is added: ℓ += Σ_j exp(s_j − m'),
/// o += Σ_j exp(s_j − m')·v_j. At the end O_i = o / ℓ and lse_i = m + ln ℓ. The result equals softmax(S)·V exactly in
/// real arithmetic (every term ends up scaled by exp(s_j − m_final)/ℓ_final).
/// q, o [BH, Nq, D]; k, v [BH, Nk, D]; lse [BH, Nq]; contiguous; heads split over threads.
/// <para>What it changes against v1 (<see cref="AttentionNaive"/>): one pass over K and V instead of five over an N×N
/// matrix; memory per row is a tile of scores plus one output row, so it is linear in N. What it does not change: it is
/// still scalar, one query row at a time, so every key row is re-read from cache for each query. v3
/// (<see cref="AttentionSimd"/>) keeps this loop and adds SIMD micro-kernels over 5 query rows × a packed Kᵀ panel, and
/// v4 (<see cref="AttentionKernels"/>) maps it to warps and shared memory.</para>
/// <para>Chosen: Tile = 64 keys, as the SIMD kernel's KT, so the trace of <c>explain attention</c> and the tile loop here
/// line up. Rejected: rescaling per key (tile of 1), the textbook form of the online softmax, which pays one exp for the
/// rescale per key instead of per tile.</para>
/// </summary>
public static unsafe class AttentionOnline
{
    /// <summary>Keys per tile.</summary>
    public const int Tile = 64;

    /// <summary>Contiguous q, o [BH, Nq, D], k, v [BH, Nk, D] → o, lse [BH, Nq]; heads split over up to <paramref name="threads"/> threads.</summary>
    public static void Forward(float* o, float* lse, float* q, float* k, float* v, int bh, int nq, int nk, int d, float scale, int threads)
    {
        AttentionNaive.Check(bh, nq, nk, d);
        nint po = (nint)o, pl = (nint)lse, pq = (nint)q, pk = (nint)k, pv = (nint)v;
        CpuThreads.For(bh, bh, (start, end) =>
        {
            var acc = new float[d];
            var tile = new float[Tile];
            for (int b = start; b < end; b++)
                for (int i = 0; i < nq; i++)
                    Row((float*)po, (float*)pl, (float*)pq, (float*)pk, (float*)pv, acc, tile, b, i, nq, nk, d, scale);
        }, threads);
    }

    private static void Row(float* o, float* lse, float* q, float* k, float* v, float[] acc, float[] tile, int b, int i,
        int nq, int nk, int d, float scale)
    {
        float* qi = q + ((long)b * nq + i) * d, kb = k + (long)b * nk * d, vb = v + (long)b * nk * d;
        float m = float.NegativeInfinity, l = 0;
        Array.Clear(acc);
        for (int j0 = 0; j0 < nk; j0 += Tile)
        {
            int kt = Math.Min(Tile, nk - j0);
            // The tile's scores and their max.
            float tileMax = float.NegativeInfinity;
            for (int j = 0; j < kt; j++)
            {
                float* kj = kb + (long)(j0 + j) * d;
                float s = 0;
                for (int c = 0; c < d; c++) s += qi[c] * kj[c];
                tile[j] = s * scale;
                tileMax = MathF.Max(tileMax, tile[j]);
            }
            // Rescale what was summed against the old max to the new one (exp(−∞) = 0 on the first tile).
            float mNew = MathF.Max(m, tileMax);
            float alpha = MathF.Exp(m - mNew);
            l *= alpha;
            for (int c = 0; c < d; c++) acc[c] *= alpha;
            // Add the tile: ℓ += Σ p_j, o += Σ p_j·v_j with p_j = exp(s_j − m').
            for (int j = 0; j < kt; j++)
            {
                float p = MathF.Exp(tile[j] - mNew);
                l += p;
                float* vj = vb + (long)(j0 + j) * d;
                for (int c = 0; c < d; c++) acc[c] += p * vj[c];
            }
            m = mNew;
        }
        float* oi = o + ((long)b * nq + i) * d;
        float inv = 1f / l;
        for (int c = 0; c < d; c++) oi[c] = acc[c] * inv;
        lse[(long)b * nq + i] = m + MathF.Log(l);
    }
}
