using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MicroExpr.Kernels;

/// <summary>
/// Fused multi-head attention on the CPU (flash-attention style), SIMD.
/// <para>
/// Shapes: q [BH, N_q, D]; k, v [BH, N_k, D]; o, dO, dq [BH, N_q, D]; dk, dv [BH, N_k, D]; lse [BH, N_q] (contiguous).
/// Each of q, k, v, o is read or written through its <see cref="AttentionOperandLayout"/> (dq, dk, dv use the q, k, v
/// layouts, dO the o layout): row r of head h starts at Offset + (h / Heads)·BatchStride + (h % Heads)·HeadStride +
/// r·RowStride and its D floats are contiguous, so q, k, v can be read straight out of a fused QKV projection
/// [B, N, 3, H, D] and o written as [B, N, H, D]. Every kernel works on row pointers with a per-operand row stride;
/// only the packing (Kᵀ, Vᵀ panels, zero-padded rows) and the prefetcher see the strides. Per head, with s = scale:
/// S = s·Q·Kᵀ [N_q, N_k], P = softmax_rows(S), O = P·V, lse_i = log Σ_j exp(S_ij) (natural log).
/// Backward (given dO, the saved O and lse): P = exp(s·Q·Kᵀ − lse) is recomputed, Di = Σ_d dO_id·O_id,
/// dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P∘(dP − Di), dQ = s·dS·K, dK = s·dSᵀ·Q. dq, dk, dv are overwritten.
/// </para>
/// <para>
/// Tiling. Keys are walked in tiles of KT = 64 (the last tile is what is left, padded with zeros to a multiple of 16
/// lanes); the key tile of Kᵀ (and, in the backward, Vᵀ) is packed once into a [D, KT] panel so that a score tile
/// is a broadcast-FMA micro-kernel: 5 query rows × 4 vectors of keys in 20 accumulator registers, one FMA per
/// (row, key vector, d); full 16×16 blocks of the panel are transposed in registers (AVX-512 two-source permutes).
/// Why: per d the kernel does 4 vector loads and 5 broadcasts for 20 FMAs, so it is FMA-bound, and each packed
/// panel is reused by every query row of the work item. Five rows rather than six: N = 50 then splits into whole
/// micro-blocks (six wasted 8 % on padding rows), at no cost in register blocking. The 5 × KT score tile lives in a
/// per-thread buffer; it is never larger than that, so the N×N score matrix is never formed; memory is linear in N.
/// Forward: for each key tile and each 5-row query micro-block, S is turned into P with an online softmax — a
/// running row max m and row sum l (kept in the log2 domain, S·s·log2 e, so one exp2 per score): the
/// accumulator row O is rescaled by 2^(m_old − m_new) and P·V_tile is added by a 5 rows × 4 D-vectors
/// micro-kernel. O and lse are written once at the end (O / l, lse = (m + log2 l)·ln 2).
/// Work items are (head, query chunk) pairs: whole heads when BH gives every thread enough items (the packed K
/// panel is then reused by all N_q rows), smaller chunks otherwise. Workers take runs of consecutive items and
/// prefetch (to L2) the next item's inputs while computing the current one: at BH = 192 the inputs no longer stay in
/// cache from one head to the next.
/// Backward: per head (dK and dV of a head sum over all its query rows, so partitioning by head is race-free and
/// deterministic): key tile outer (Kᵀ, Vᵀ packed, dK/dV tile accumulators [KT, D] zeroed), query blocks of 100 rows
/// inner. For each 5-row micro-block, S and dP come from the same packed micro-kernel, P and dS are stored in
/// [100, KT] tile buffers; then dV_tile += Pᵀ·dO_block and dK_tile += dSᵀ·Q_block (4 keys × 4 D-vectors micro-kernel,
/// reduction over the block's rows) and dQ_rows += dS·K_tile (the P·V kernel). The scale is applied on the way out.
/// </para>
/// <para>
/// SIMD: Vector512 when accelerated, else Vector256, else Vector128 (runtime dispatch through the toolkit's
/// <see cref="ISimd{TV}"/> structs, which the JIT specialises). Any D ≥ 1 works: when D is not a multiple of 16, the operands that are read as
/// D-vectors are copied into per-thread zero-padded [N, D16] buffers and the last, partial columns are written out
/// with scalar tails; partial key vectors are masked in the softmax reductions. Scratch is per-thread native memory
/// (<see cref="ThreadScratch"/>), grown on demand and reused, and work items are split by <see cref="WorkSplit"/>, so
/// the kernels do not allocate after the first call on a thread; threads ≤ 1 runs inline on the caller's thread.
/// </para>
/// </summary>
public static unsafe class AttentionSimd
{
    const int Mr = 5;      // query rows per micro-block
    const int KT = 64;     // keys per tile
    const int Pad = 16;    // lane padding for key tiles and D
    const int QBwd = 100;   // query rows per backward block (multiple of Mr)
    const float Log2E = 1.4426950408889634f;
    const float Ln2 = 0.6931471805599453f;

    /// <summary>Contiguous operands: q, o [BH, Nq, D]; k, v [BH, Nk, D].</summary>
    public static void Forward(float* o, float* lse, float* q, float* k, float* v, int bh, int nq, int nk, int d,
        float scale, int threads) =>
        Forward(o, lse, q, k, v, bh, nq, nk, d, scale, AttentionLayout.Contiguous(nq, nk, d), threads);

    /// <summary>Operands at their layouts' offsets from the given base pointers; lse contiguous [BH, Nq].</summary>
    public static void Forward(float* o, float* lse, float* q, float* k, float* v, int bh, int nq, int nk, int d,
        float scale, in AttentionLayout layout, int threads)
    {
        Validate(bh, nq, nk, d, layout);
        int chunk = ChooseChunk(bh, nq, threads);
        int chunksPerHead = (nq + chunk - 1) / chunk;
        var a = new Args
        {
            O = o, Lse = lse, Q = q, K = k, V = v, Nq = nq, Nk = nk, D = d, Scale = scale, Chunk = chunk,
            ChunksPerHead = chunksPerHead, L = layout,
        };
        long items = (long)bh * chunksPerHead;
        a.Total = items;
        if (threads <= 1 || items == 1)
        {
            for (long it = 0; it < items; it++) ForwardDispatch(ref a, it);
            return;
        }
        Run(items, threads, a, &ForwardDispatch);
    }

    /// <summary>Contiguous operands: q, o, dO, dq [BH, Nq, D]; k, v, dk, dv [BH, Nk, D].</summary>
    public static void Backward(float* dq, float* dk, float* dv, float* q, float* k, float* v, float* o, float* dO,
        float* lse, int bh, int nq, int nk, int d, float scale, int threads) =>
        Backward(dq, dk, dv, q, k, v, o, dO, lse, bh, nq, nk, d, scale, AttentionLayout.Contiguous(nq, nk, d), threads);

    /// <summary>dq, dk, dv in the q, k, v layouts and dO in the o layout (each from its own base pointer).</summary>
    public static void Backward(float* dq, float* dk, float* dv, float* q, float* k, float* v, float* o, float* dO,
        float* lse, int bh, int nq, int nk, int d, float scale, in AttentionLayout layout, int threads)
    {
        Validate(bh, nq, nk, d, layout);
        var a = new Args
        {
            DQ = dq, DK = dk, DV = dv, Q = q, K = k, V = v, O = o, DO = dO, Lse = lse,
            Nq = nq, Nk = nk, D = d, Scale = scale, Total = bh, L = layout,
        };
        if (threads <= 1 || bh == 1)
        {
            for (long h = 0; h < bh; h++) BackwardDispatch(ref a, h);
            return;
        }
        Run(bh, threads, a, &BackwardDispatch);
    }

    static void Validate(int bh, int nq, int nk, int d, in AttentionLayout layout)
    {
        if (bh < 1 || nq < 1 || nk < 1 || d < 1)
            throw new ArgumentOutOfRangeException(nameof(bh), "attention: BH, Nq, Nk, D must be ≥ 1");
        layout.Validate(bh);
    }

    /// <summary>Query rows per forward work item: a whole head if that already gives ≥ 4 items per thread, else smaller.</summary>
    static int ChooseChunk(int bh, int nq, int threads)
    {
        int chunk = RoundUp(nq, Mr);
        const int cap = 32 * Mr;
        if (chunk > cap) chunk = cap;
        if (threads > 1)
            while (chunk > 4 * Mr && (long)bh * ((nq + chunk - 1) / chunk) < 4L * threads)
                chunk = RoundUp(chunk / 2, Mr);
        return chunk;
    }

    static int RoundUp(int x, int m) => (x + m - 1) / m * m;

    struct Args
    {
        public float* O, Lse, Q, K, V, DQ, DK, DV, DO;
        public int Nq, Nk, D, Chunk, ChunksPerHead;
        public long Total; // work items: BH·chunks (forward) or BH (backward)
        public float Scale;
        public AttentionLayout L; // q, k, v, o (and dq, dk, dv, dO) layouts
    }

    // ---------------------------------------------------------------- threading

    /// <summary>Work items [start, end) of a part, in order (so the next item, whose inputs are prefetched, is usually the same thread's).</summary>
    struct ItemWork : IPartWork
    {
        public Args A;
        public delegate*<ref Args, long, void> Body;

        public void Run(int part, long start, long end)
        {
            for (long it = start; it < end; it++) Body(ref A, it);
        }
    }

    /// <summary>About eight parts per worker (runs of consecutive items), taken dynamically: a descheduled worker is ridden out.</summary>
    static void Run(long items, int threads, Args a, delegate*<ref Args, long, void> body)
    {
        int workers = (int)Math.Min(threads, items);
        long block = Math.Max(1, items / (8L * workers));
        var work = new ItemWork { A = a, Body = body };
        WorkSplit.Run(ref work, items, (int)((items + block - 1) / block), workers);
    }

    /// <summary>
    /// Software prefetch (to L2) of the next work item's inputs, spread over the current item's micro-blocks so the
    /// next head does not start from DRAM: with BH·N·D large the inputs do not stay in cache between heads.
    /// A region is a run of rows (D floats each, at a row stride): only the cache lines that hold the rows' D floats
    /// are fetched, not the whole span (a strided q of a packed QKV tensor sits between k, v and the other heads);
    /// rows that follow each other without a gap are fetched as one run.
    /// </summary>
    struct Prefetcher
    {
        const int MaxRegions = 5;
        fixed long _start[MaxRegions];    // first byte of the first row
        fixed long _rows[MaxRegions];
        fixed long _rowBytes[MaxRegions];
        fixed long _strideBytes[MaxRegions];
        int _count, _region;
        long _row, _off;

        /// <summary>Adds rows × rowFloats floats at a row stride of strideFloats (at most five regions).</summary>
        public void Add(float* p, int rows, int rowFloats, int strideFloats)
        {
            if (_count == MaxRegions) throw new InvalidOperationException("attention prefetcher: more than five regions");
            if (strideFloats == rowFloats)
            {
                rowFloats *= rows; // gapless: one run
                rows = 1;
            }
            _start[_count] = (long)p;
            _rows[_count] = rows;
            _rowBytes[_count] = (long)rowFloats * sizeof(float);
            _strideBytes[_count] = (long)strideFloats * sizeof(float);
            _count++;
        }

        /// <summary>Cache lines the regions cover (an upper bound: one partial line more per row).</summary>
        public long Lines
        {
            get
            {
                long n = 0;
                for (int i = 0; i < _count; i++) n += _rows[i] * ((_rowBytes[i] + 63) / 64 + 1);
                return n;
            }
        }

        public void Start() { _region = 0; _row = 0; _off = 0; }

        /// <summary>Issues up to count prefetches, continuing where the last call stopped.</summary>
        public void Step(long count)
        {
            if (!Sse.IsSupported) return;
            while (count > 0 && _region < _count)
            {
                if (_row >= _rows[_region]) { _region++; _row = 0; _off = 0; continue; }
                long rowStart = _start[_region] + _row * _strideBytes[_region];
                long line = (rowStart & ~63L) + _off;
                if (line >= rowStart + _rowBytes[_region]) { _row++; _off = 0; continue; }
                Sse.Prefetch1((void*)line);
                _off += 64;
                count--;
            }
        }
    }

    // ---------------------------------------------------------------- scratch

    /// <summary>Attention's per-thread scratch: slots Attention0.. of the toolkit's <see cref="ThreadScratch"/>.</summary>
    readonly struct Scratch
    {
        public float* Get(int slot, long count) => ThreadScratch.Get(ScratchSlot.Attention0 + slot, count);
    }

    static Scratch LocalScratch => default;

    // ---------------------------------------------------------------- dispatch

    static void ForwardDispatch(ref Args a, long item)
    {
        if (Vector512.IsHardwareAccelerated) ForwardItem<Simd512, Vector512<float>>(ref a, item);
        else if (Vector256.IsHardwareAccelerated) ForwardItem<Simd256, Vector256<float>>(ref a, item);
        else ForwardItem<Simd128, Vector128<float>>(ref a, item);
    }

    static void BackwardDispatch(ref Args a, long head)
    {
        if (Vector512.IsHardwareAccelerated) BackwardHead<Simd512, Vector512<float>>(ref a, head);
        else if (Vector256.IsHardwareAccelerated) BackwardHead<Simd256, Vector256<float>>(ref a, head);
        else BackwardHead<Simd128, Vector128<float>>(ref a, head);
    }

    // ---------------------------------------------------------------- forward

    static void ForwardItem<TS, TV>(ref Args a, long item) where TS : struct, ISimd<TV> where TV : struct
    {
        int nq = a.Nq, nk = a.Nk, d = a.D;
        long h = item / a.ChunksPerHead;
        int q0 = (int)(item % a.ChunksPerHead) * a.Chunk;
        int qc = Math.Min(a.Chunk, nq - q0);
        int qcPad = RoundUp(qc, Mr);
        int dp = RoundUp(d, Pad);
        ref readonly var lay = ref a.L;
        int hi = (int)h;
        // Row pointers of this item; each operand has its own row stride (ldq, ldk, ldv, ldo).
        float* q = a.Q + lay.Q.RowStart(hi, q0);
        float* k = a.K + lay.K.RowStart(hi, 0);
        float* v = a.V + lay.V.RowStart(hi, 0);
        int ldq = lay.Q.RowStride, ldk = lay.K.RowStride, ldv = lay.V.RowStride, ldo = lay.O.RowStride;
        float c = a.Scale * Log2E;

        var s = LocalScratch;
        float* oacc = s.Get(0, (long)qcPad * dp);
        float* m = s.Get(1, qcPad);
        float* l = s.Get(2, qcPad);
        float* kt = s.Get(3, (long)d * KT);
        float* st = s.Get(4, Mr * KT);
        float* alpha = s.Get(5, Mr);
        if (d != dp)
        {
            float* vp = s.Get(6, (long)nk * dp);
            PadRows(vp, v, ldv, nk, d, dp);
            v = vp;
            ldv = dp;
        }
        new Span<float>(oacc, qcPad * dp).Clear();
        new Span<float>(m, qcPad).Fill(float.NegativeInfinity);
        new Span<float>(l, qcPad).Clear();
        float** rows = stackalloc float*[Mr];
        var pf = new Prefetcher();
        long next = item + 1;
        if (next < a.Total)
        {
            int nh = (int)(next / a.ChunksPerHead);
            int nq0 = (int)(next % a.ChunksPerHead) * a.Chunk;
            pf.Add(a.Q + lay.Q.RowStart(nh, nq0), Math.Min(a.Chunk, nq - nq0), d, lay.Q.RowStride);
            if (nh != h)
            {
                pf.Add(a.K + lay.K.RowStart(nh, 0), nk, d, lay.K.RowStride);
                pf.Add(a.V + lay.V.RowStart(nh, 0), nk, d, lay.V.RowStride);
            }
        }
        pf.Start();
        long perBlock = pf.Lines / ((long)((nk + KT - 1) / KT) * ((qc + Mr - 1) / Mr)) + 1;

        for (int j0 = 0; j0 < nk; j0 += KT)
        {
            int kn = Math.Min(KT, nk - j0);
            int knp = RoundUp(kn, Pad);
            PackT(kt, knp, k + (long)j0 * ldk, ldk, kn, d);
            for (int r0 = 0; r0 < qc; r0 += Mr)
            {
                for (int i = 0; i < Mr; i++) rows[i] = q + (long)Math.Min(r0 + i, qc - 1) * ldq;
                pf.Step(perBlock);
                MulPackedT<TS, TV>(st, knp, rows, d, kt, knp / TS.Count);
                for (int i = 0; i < Mr; i++)
                {
                    float* srow = st + i * knp;
                    float mOld = m[r0 + i];
                    float mNew = Math.Max(mOld, ScaleMax<TS, TV>(srow, kn, c));
                    float sum = ExpSum<TS, TV>(srow, kn, mNew);
                    float al = float.Exp2(mOld - mNew);
                    alpha[i] = al;
                    l[r0 + i] = l[r0 + i] * al + sum;
                    m[r0 + i] = mNew;
                }
                AccumRows<TS, TV>(oacc + (long)r0 * dp, dp, alpha, st, knp, kn, v + (long)j0 * ldv, ldv, dp / TS.Count);
            }
        }

        float* o = a.O + lay.O.RowStart(hi, q0);
        float* lse = a.Lse + h * nq + q0;
        for (int i = 0; i < qc; i++)
        {
            float inv = 1f / l[i];
            ScaleCopy<TS, TV>(o + (long)i * ldo, oacc + (long)i * dp, d, inv);
            lse[i] = (m[i] + MathF.Log2(l[i])) * Ln2;
        }
    }

    // ---------------------------------------------------------------- backward

    static void BackwardHead<TS, TV>(ref Args a, long h) where TS : struct, ISimd<TV> where TV : struct
    {
        int nq = a.Nq, nk = a.Nk, d = a.D;
        int dp = RoundUp(d, Pad);
        int nqPad = RoundUp(nq, Mr);
        float c = a.Scale * Log2E;
        ref readonly var lay = ref a.L;
        int hi = (int)h;
        // Row pointers of this head and their row strides: q and dq share the q layout, k/dk the k layout, v/dv the
        // v layout, o and dO the o layout.
        int ldq = lay.Q.RowStride, ldk = lay.K.RowStride, ldv = lay.V.RowStride, ldo = lay.O.RowStride;
        float* q = a.Q + lay.Q.RowStart(hi, 0), dO = a.DO + lay.O.RowStart(hi, 0), o = a.O + lay.O.RowStart(hi, 0);
        float* k = a.K + lay.K.RowStart(hi, 0), v = a.V + lay.V.RowStart(hi, 0);
        float* lse = a.Lse + h * nq;

        var s = LocalScratch;
        float* dqAcc = s.Get(0, (long)nqPad * dp);
        float* di = s.Get(1, nqPad);
        float* lse2 = s.Get(2, nqPad);
        float* kt = s.Get(3, (long)d * KT);
        float* vt = s.Get(4, (long)d * KT);
        float* dkT = s.Get(5, (long)KT * dp);
        float* dvT = s.Get(6, (long)KT * dp);
        int qbMax = Math.Min(QBwd, nqPad);
        float* pb = s.Get(7, (long)qbMax * KT);
        float* dsb = s.Get(8, (long)qbMax * KT);

        for (int i = 0; i < nq; i++)
        {
            di[i] = Dot<TS, TV>(dO + (long)i * ldo, o + (long)i * ldo, d);
            lse2[i] = lse[i] * Log2E;
        }
        // Operands read as D-vectors (K for dQ, Q for dK, dO for dV): in place when D is a multiple of 16, else copied
        // into zero-padded [N, D16] rows. Each keeps its own row stride.
        float* qv = q, kv = k, dov = dO;
        int ldqv = ldq, ldkv = ldk, lddov = ldo;
        if (d != dp)
        {
            qv = s.Get(9, (long)nq * dp); PadRows(qv, q, ldq, nq, d, dp);
            kv = s.Get(10, (long)nk * dp); PadRows(kv, k, ldk, nk, d, dp);
            dov = s.Get(11, (long)nq * dp); PadRows(dov, dO, ldo, nq, d, dp);
            ldqv = ldkv = lddov = dp;
        }
        new Span<float>(dqAcc, nqPad * dp).Clear();
        var pf = new Prefetcher();
        if (h + 1 < a.Total)
        {
            int nh = hi + 1;
            pf.Add(a.Q + lay.Q.RowStart(nh, 0), nq, d, ldq);
            pf.Add(a.K + lay.K.RowStart(nh, 0), nk, d, ldk);
            pf.Add(a.V + lay.V.RowStart(nh, 0), nk, d, ldv);
            pf.Add(a.O + lay.O.RowStart(nh, 0), nq, d, ldo);
            pf.Add(a.DO + lay.O.RowStart(nh, 0), nq, d, ldo);
        }
        pf.Start();
        long perBlock = pf.Lines / ((long)((nk + KT - 1) / KT) * ((nq + Mr - 1) / Mr)) + 1;
        float** rq = stackalloc float*[Mr];
        float** rdo = stackalloc float*[Mr];
        int nvD = dp / TS.Count;

        for (int j0 = 0; j0 < nk; j0 += KT)
        {
            int kn = Math.Min(KT, nk - j0);
            int knp = RoundUp(kn, Pad);
            int nvK = knp / TS.Count;
            PackT(kt, knp, k + (long)j0 * ldk, ldk, kn, d);
            PackT(vt, knp, v + (long)j0 * ldv, ldv, kn, d);
            new Span<float>(dkT, knp * dp).Clear();
            new Span<float>(dvT, knp * dp).Clear();
            for (int b0 = 0; b0 < nq; b0 += QBwd)
            {
                int bn = Math.Min(QBwd, nq - b0);
                for (int r0 = 0; r0 < bn; r0 += Mr)
                {
                    for (int i = 0; i < Mr; i++)
                    {
                        int r = Math.Min(b0 + r0 + i, nq - 1);
                        rq[i] = q + (long)r * ldq;
                        rdo[i] = dO + (long)r * ldo;
                    }
                    float* pr = pb + (long)r0 * knp, dr = dsb + (long)r0 * knp;
                    pf.Step(perBlock);
                    MulPackedT<TS, TV>(pr, knp, rq, d, kt, nvK);
                    MulPackedT<TS, TV>(dr, knp, rdo, d, vt, nvK);
                    for (int i = 0; i < Mr; i++)
                    {
                        int r = Math.Min(b0 + r0 + i, nq - 1);
                        ProbAndDs<TS, TV>(pr + i * knp, dr + i * knp, knp, c, lse2[r], di[r]);
                    }
                }
                // dV_tile += Pᵀ·dO_block, dK_tile += dSᵀ·Q_block (unscaled)
                AccumT<TS, TV>(dvT, dp, pb, knp, bn, knp, dov + (long)b0 * lddov, lddov, nvD);
                AccumT<TS, TV>(dkT, dp, dsb, knp, bn, knp, qv + (long)b0 * ldqv, ldqv, nvD);
                // dQ_rows += dS·K_tile (unscaled)
                for (int r0 = 0; r0 < bn; r0 += Mr)
                    AccumRows<TS, TV>(dqAcc + (long)(b0 + r0) * dp, dp, null, dsb + (long)r0 * knp, knp, kn, kv + (long)j0 * ldkv, ldkv, nvD);
            }
            float* dkOut = a.DK + lay.K.RowStart(hi, j0), dvOut = a.DV + lay.V.RowStart(hi, j0);
            for (int j = 0; j < kn; j++)
            {
                ScaleCopy<TS, TV>(dkOut + (long)j * ldk, dkT + (long)j * dp, d, a.Scale);
                ScaleCopy<TS, TV>(dvOut + (long)j * ldv, dvT + (long)j * dp, d, 1f);
            }
        }
        float* dqOut = a.DQ + lay.Q.RowStart(hi, 0);
        for (int i = 0; i < nq; i++) ScaleCopy<TS, TV>(dqOut + (long)i * ldq, dqAcc + (long)i * dp, d, a.Scale);
    }

    // ---------------------------------------------------------------- packing and row helpers

    /// <summary>
    /// dst [d, ldt] = srcᵀ for src [n, d] with row stride lds (n ≤ ldt); columns n..ldt-1 zeroed. Full 16×16 blocks go
    /// through an AVX-512 register transpose (4 stages of two-source permutes), the rest element by element.
    /// </summary>
    static void PackT(float* dst, int ldt, float* src, int lds, int n, int d)
    {
        if (n < ldt)
            for (int c = 0; c < d; c++)
                new Span<float>(dst + (long)c * ldt + n, ldt - n).Clear();
        int jFull = 0, cFull = 0;
        if (Avx512F.IsSupported && n >= 16 && d >= 16)
        {
            jFull = n & ~15;
            cFull = d & ~15;
            for (int j = 0; j < jFull; j += 16)
                for (int c = 0; c < cFull; c += 16)
                    Transpose16(dst + (long)c * ldt + j, ldt, src + (long)j * lds + c, lds);
        }
        // Rows j ≥ jFull (all columns) and, for rows below jFull, the columns c ≥ cFull.
        for (int j = 0; j < n; j++)
        {
            float* s = src + (long)j * lds;
            float* t = dst + j;
            for (int c = j < jFull ? cFull : 0; c < d; c++) t[(long)c * ldt] = s[c];
        }
    }

    static readonly Vector512<int> TLo8 = Control(8, false), THi8 = Control(8, true), TLo4 = Control(4, false),
        THi4 = Control(4, true), TLo2 = Control(2, false), THi2 = Control(2, true), TLo1 = Control(1, false), THi1 = Control(1, true);

    /// <summary>vpermt2ps controls for the stage that swaps the off-diagonal b×b blocks of rows r and r+b.</summary>
    static Vector512<int> Control(int b, bool high)
    {
        var c = new int[16];
        for (int l = 0; l < 16; l++)
            c[l] = (l & b) == 0 ? (high ? l + b : l) : (high ? 16 + l : 16 + l - b);
        return Vector512.Create(c);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Stage(ref Vector512<float> x, ref Vector512<float> y, Vector512<int> lo, Vector512<int> hi)
    {
        Vector512<float> a = Avx512F.PermuteVar16x32x2(x, lo, y);
        y = Avx512F.PermuteVar16x32x2(x, hi, y);
        x = a;
    }

    /// <summary>dst[c, j] = src[j, c] for a 16×16 block (row strides ldd and lds).</summary>
    static void Transpose16(float* dst, int ldd, float* src, int lds)
    {
        Vector512<float> r0 = Vector512.Load(src), r1 = Vector512.Load(src + lds), r2 = Vector512.Load(src + 2 * lds),
            r3 = Vector512.Load(src + 3 * lds), r4 = Vector512.Load(src + 4 * lds), r5 = Vector512.Load(src + 5 * lds),
            r6 = Vector512.Load(src + 6 * lds), r7 = Vector512.Load(src + 7 * lds), r8 = Vector512.Load(src + 8 * lds),
            r9 = Vector512.Load(src + 9 * lds), r10 = Vector512.Load(src + 10 * lds), r11 = Vector512.Load(src + 11 * lds),
            r12 = Vector512.Load(src + 12 * lds), r13 = Vector512.Load(src + 13 * lds), r14 = Vector512.Load(src + 14 * lds),
            r15 = Vector512.Load(src + 15 * lds);
        Vector512<int> lo = TLo8, hi = THi8;
        Stage(ref r0, ref r8, lo, hi); Stage(ref r1, ref r9, lo, hi); Stage(ref r2, ref r10, lo, hi); Stage(ref r3, ref r11, lo, hi);
        Stage(ref r4, ref r12, lo, hi); Stage(ref r5, ref r13, lo, hi); Stage(ref r6, ref r14, lo, hi); Stage(ref r7, ref r15, lo, hi);
        lo = TLo4; hi = THi4;
        Stage(ref r0, ref r4, lo, hi); Stage(ref r1, ref r5, lo, hi); Stage(ref r2, ref r6, lo, hi); Stage(ref r3, ref r7, lo, hi);
        Stage(ref r8, ref r12, lo, hi); Stage(ref r9, ref r13, lo, hi); Stage(ref r10, ref r14, lo, hi); Stage(ref r11, ref r15, lo, hi);
        lo = TLo2; hi = THi2;
        Stage(ref r0, ref r2, lo, hi); Stage(ref r1, ref r3, lo, hi); Stage(ref r4, ref r6, lo, hi); Stage(ref r5, ref r7, lo, hi);
        Stage(ref r8, ref r10, lo, hi); Stage(ref r9, ref r11, lo, hi); Stage(ref r12, ref r14, lo, hi); Stage(ref r13, ref r15, lo, hi);
        lo = TLo1; hi = THi1;
        Stage(ref r0, ref r1, lo, hi); Stage(ref r2, ref r3, lo, hi); Stage(ref r4, ref r5, lo, hi); Stage(ref r6, ref r7, lo, hi);
        Stage(ref r8, ref r9, lo, hi); Stage(ref r10, ref r11, lo, hi); Stage(ref r12, ref r13, lo, hi); Stage(ref r14, ref r15, lo, hi);
        r0.Store(dst); r1.Store(dst + ldd); r2.Store(dst + 2 * ldd); r3.Store(dst + 3 * ldd);
        r4.Store(dst + 4 * ldd); r5.Store(dst + 5 * ldd); r6.Store(dst + 6 * ldd); r7.Store(dst + 7 * ldd);
        r8.Store(dst + 8 * ldd); r9.Store(dst + 9 * ldd); r10.Store(dst + 10 * ldd); r11.Store(dst + 11 * ldd);
        r12.Store(dst + 12 * ldd); r13.Store(dst + 13 * ldd); r14.Store(dst + 14 * ldd); r15.Store(dst + 15 * ldd);
    }

    /// <summary>dst [n, dp] = src [n, d] (row stride lds) with the columns d..dp-1 zeroed.</summary>
    static void PadRows(float* dst, float* src, int lds, int n, int d, int dp)
    {
        for (int j = 0; j < n; j++)
        {
            Buffer.MemoryCopy(src + (long)j * lds, dst + (long)j * dp, (long)d * 4, (long)d * 4);
            new Span<float>(dst + (long)j * dp + d, dp - d).Clear();
        }
    }

    /// <summary>dst[0..n) = f · src[0..n), vectors then a scalar tail.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void ScaleCopy<TS, TV>(float* dst, float* src, int n, float f) where TS : struct, ISimd<TV> where TV : struct
    {
        int w = TS.Count, i = 0;
        TV fv = TS.Splat(f);
        for (; i + w <= n; i += w) TS.Store(dst + i, TS.Mul(TS.Load(src + i), fv));
        for (; i < n; i++) dst[i] = src[i] * f;
    }

    static float Dot<TS, TV>(float* x, float* y, int n) where TS : struct, ISimd<TV> where TV : struct
    {
        int w = TS.Count, i = 0;
        TV acc = TS.Splat(0f);
        for (; i + w <= n; i += w) acc = TS.Fma(TS.Load(x + i), TS.Load(y + i), acc);
        float r = TS.HSum(acc);
        for (; i < n; i++) r += x[i] * y[i];
        return r;
    }

    /// <summary>row[0..n) *= c (in place, the whole padded row), returns the max over the first n.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float ScaleMax<TS, TV>(float* row, int n, float c) where TS : struct, ISimd<TV> where TV : struct
    {
        int w = TS.Count, j = 0;
        TV cv = TS.Splat(c);
        TV mx = TS.Splat(float.NegativeInfinity);
        for (; j + w <= n; j += w)
        {
            TV t = TS.Mul(TS.Load(row + j), cv);
            TS.Store(row + j, t);
            mx = TS.Max(mx, t);
        }
        if (j < n)
        {
            TV t = TS.Mul(TS.Load(row + j), cv);
            TS.Store(row + j, t);
            mx = TS.Max(mx, TS.KeepFirst(t, n - j, float.NegativeInfinity));
        }
        return TS.HMax(mx);
    }

    /// <summary>row[j] = 2^(row[j] − m) over the padded row; returns the sum over the first n.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float ExpSum<TS, TV>(float* row, int n, float m) where TS : struct, ISimd<TV> where TV : struct
    {
        int w = TS.Count, j = 0;
        TV mv = TS.Splat(m);
        TV sum = TS.Splat(0f);
        for (; j + w <= n; j += w)
        {
            TV p = TS.Exp2(TS.Sub(TS.Load(row + j), mv));
            TS.Store(row + j, p);
            sum = TS.Add(sum, p);
        }
        if (j < n)
        {
            TV p = TS.Exp2(TS.Sub(TS.Load(row + j), mv));
            TS.Store(row + j, p);
            sum = TS.Add(sum, TS.KeepFirst(p, n - j, 0f));
        }
        return TS.HSum(sum);
    }

    /// <summary>p = 2^(c·s − lse2) in place of s; ds = p·(dp − di) in place of dp (whole padded row).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void ProbAndDs<TS, TV>(float* s, float* dpRow, int np, float c, float lse2, float di)
        where TS : struct, ISimd<TV> where TV : struct
    {
        int w = TS.Count;
        TV cv = TS.Splat(c), lv = TS.Splat(-lse2), dv = TS.Splat(di);
        for (int j = 0; j < np; j += w)
        {
            TV p = TS.Exp2(TS.Fma(TS.Load(s + j), cv, lv));
            TS.Store(s + j, p);
            TS.Store(dpRow + j, TS.Mul(p, TS.Sub(TS.Load(dpRow + j), dv)));
        }
    }

    // ---------------------------------------------------------------- micro-kernels

    /// <summary>
    /// C[i, :] = Σ_t a_i[t]·B[t, :] for the Mr rows a_i (length kd, each its own pointer: the last real row stands in for
    /// padding rows) and the packed panel B [kd, ldb] of nv vectors per row; C has row stride ldc (the score tile).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void MulPackedT<TS, TV>(float* cOut, int ldc, float** rows, int kd, float* b, int nv)
        where TS : struct, ISimd<TV> where TV : struct =>
        MulAdd5<TS, TV, StartFromZero>(cOut, ldc, null, rows[0], rows[1], rows[2], rows[3], rows[4], kd, b, nv * TS.Count, nv);

    /// <summary>
    /// out[i, :] = alpha_i·out[i, :] + Σ_{j&lt;cnt} A[i, j]·B[j, :] for Mr rows (out row stride ldo, A row stride lda,
    /// B row stride ldb, nv vectors per row); alpha null means 1 (O += P·V with the online-softmax rescale; dQ += dS·K).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void AccumRows<TS, TV>(float* outRows, int ldo, float* alpha, float* a, int lda, int cnt, float* b, int ldb, int nv)
        where TS : struct, ISimd<TV> where TV : struct =>
        MulAdd5<TS, TV, StartFromOutput>(outRows, ldo, alpha, a, a + lda, a + 2 * lda, a + 3 * lda, a + 4 * lda, cnt, b, ldb, nv);

    /// <summary>How the register tile of <see cref="MulAdd5"/> starts: from zero (the product overwrites the output, which
    /// is not read) or from alpha·output (the product is added to it). A struct type argument, so the JIT compiles each
    /// start as its own specialisation and the test folds away.</summary>
    interface ITileStart { static abstract bool FromOutput { get; } }
    struct StartFromZero : ITileStart { public static bool FromOutput => false; }
    struct StartFromOutput : ITileStart { public static bool FromOutput => true; }

    /// <summary>
    /// The one broadcast-FMA micro-kernel of the score tile (S = Q·Kᵀ, dP = dO·Vᵀ) and of the row updates (O += P·V,
    /// dQ += dS·K): out[i, :] = start_i + Σ_{j&lt;cnt} a_i[j]·B[j, :] for the Mr = 5 rows a0..a4, with B [cnt, ldb] of nv
    /// vectors per row and out row stride ldo; start_i is 0 (<see cref="StartFromZero"/>, out not read) or
    /// alpha_i·out[i, :] (<see cref="StartFromOutput"/>, alpha null = 1). 5 rows × 4 vectors in 20 registers (4 loads,
    /// 5 broadcasts, 20 FMAs per j), then 5 × 1 for the last vectors.
    /// </summary>
    [SkipLocalsInit]
    static void MulAdd5<TS, TV, TStart>(float* outRows, int ldo, float* alpha, float* a0, float* a1, float* a2, float* a3, float* a4,
        int cnt, float* b, int ldb, int nv)
        where TS : struct, ISimd<TV> where TV : struct where TStart : struct, ITileStart
    {
        int w = TS.Count;
        float* o0 = outRows, o1 = o0 + ldo, o2 = o1 + ldo, o3 = o2 + ldo, o4 = o3 + ldo;
        TV s0 = default, s1 = default, s2 = default, s3 = default, s4 = default;
        if (TStart.FromOutput)
        {
            if (alpha != null)
            {
                s0 = TS.Splat(alpha[0]); s1 = TS.Splat(alpha[1]); s2 = TS.Splat(alpha[2]);
                s3 = TS.Splat(alpha[3]); s4 = TS.Splat(alpha[4]);
            }
            else s0 = s1 = s2 = s3 = s4 = TS.Splat(1f);
        }
        int v = 0;
        for (; v + 4 <= nv; v += 4)
        {
            int e = v * w;
            TV c00 = default, c01 = default, c02 = default, c03 = default;
            TV c10 = default, c11 = default, c12 = default, c13 = default;
            TV c20 = default, c21 = default, c22 = default, c23 = default;
            TV c30 = default, c31 = default, c32 = default, c33 = default;
            TV c40 = default, c41 = default, c42 = default, c43 = default;
            if (TStart.FromOutput)
            {
                c00 = TS.Mul(TS.Load(o0 + e), s0); c01 = TS.Mul(TS.Load(o0 + e + w), s0); c02 = TS.Mul(TS.Load(o0 + e + 2 * w), s0); c03 = TS.Mul(TS.Load(o0 + e + 3 * w), s0);
                c10 = TS.Mul(TS.Load(o1 + e), s1); c11 = TS.Mul(TS.Load(o1 + e + w), s1); c12 = TS.Mul(TS.Load(o1 + e + 2 * w), s1); c13 = TS.Mul(TS.Load(o1 + e + 3 * w), s1);
                c20 = TS.Mul(TS.Load(o2 + e), s2); c21 = TS.Mul(TS.Load(o2 + e + w), s2); c22 = TS.Mul(TS.Load(o2 + e + 2 * w), s2); c23 = TS.Mul(TS.Load(o2 + e + 3 * w), s2);
                c30 = TS.Mul(TS.Load(o3 + e), s3); c31 = TS.Mul(TS.Load(o3 + e + w), s3); c32 = TS.Mul(TS.Load(o3 + e + 2 * w), s3); c33 = TS.Mul(TS.Load(o3 + e + 3 * w), s3);
                c40 = TS.Mul(TS.Load(o4 + e), s4); c41 = TS.Mul(TS.Load(o4 + e + w), s4); c42 = TS.Mul(TS.Load(o4 + e + 2 * w), s4); c43 = TS.Mul(TS.Load(o4 + e + 3 * w), s4);
            }
            float* bp = b + e;
            for (int j = 0; j < cnt; j++, bp += ldb)
            {
                TV b0 = TS.Load(bp), b1 = TS.Load(bp + w), b2 = TS.Load(bp + 2 * w), b3 = TS.Load(bp + 3 * w);
                TV x = TS.Splat(a0[j]);
                c00 = TS.Fma(x, b0, c00); c01 = TS.Fma(x, b1, c01); c02 = TS.Fma(x, b2, c02); c03 = TS.Fma(x, b3, c03);
                x = TS.Splat(a1[j]);
                c10 = TS.Fma(x, b0, c10); c11 = TS.Fma(x, b1, c11); c12 = TS.Fma(x, b2, c12); c13 = TS.Fma(x, b3, c13);
                x = TS.Splat(a2[j]);
                c20 = TS.Fma(x, b0, c20); c21 = TS.Fma(x, b1, c21); c22 = TS.Fma(x, b2, c22); c23 = TS.Fma(x, b3, c23);
                x = TS.Splat(a3[j]);
                c30 = TS.Fma(x, b0, c30); c31 = TS.Fma(x, b1, c31); c32 = TS.Fma(x, b2, c32); c33 = TS.Fma(x, b3, c33);
                x = TS.Splat(a4[j]);
                c40 = TS.Fma(x, b0, c40); c41 = TS.Fma(x, b1, c41); c42 = TS.Fma(x, b2, c42); c43 = TS.Fma(x, b3, c43);
            }
            TS.Store(o0 + e, c00); TS.Store(o0 + e + w, c01); TS.Store(o0 + e + 2 * w, c02); TS.Store(o0 + e + 3 * w, c03);
            TS.Store(o1 + e, c10); TS.Store(o1 + e + w, c11); TS.Store(o1 + e + 2 * w, c12); TS.Store(o1 + e + 3 * w, c13);
            TS.Store(o2 + e, c20); TS.Store(o2 + e + w, c21); TS.Store(o2 + e + 2 * w, c22); TS.Store(o2 + e + 3 * w, c23);
            TS.Store(o3 + e, c30); TS.Store(o3 + e + w, c31); TS.Store(o3 + e + 2 * w, c32); TS.Store(o3 + e + 3 * w, c33);
            TS.Store(o4 + e, c40); TS.Store(o4 + e + w, c41); TS.Store(o4 + e + 2 * w, c42); TS.Store(o4 + e + 3 * w, c43);
        }
        for (; v < nv; v++)
        {
            int e = v * w;
            TV c0 = default, c1 = default, c2 = default, c3 = default, c4 = default;
            if (TStart.FromOutput)
            {
                c0 = TS.Mul(TS.Load(o0 + e), s0); c1 = TS.Mul(TS.Load(o1 + e), s1); c2 = TS.Mul(TS.Load(o2 + e), s2);
                c3 = TS.Mul(TS.Load(o3 + e), s3); c4 = TS.Mul(TS.Load(o4 + e), s4);
            }
            float* bp = b + e;
            for (int j = 0; j < cnt; j++, bp += ldb)
            {
                TV b0 = TS.Load(bp);
                c0 = TS.Fma(TS.Splat(a0[j]), b0, c0);
                c1 = TS.Fma(TS.Splat(a1[j]), b0, c1);
                c2 = TS.Fma(TS.Splat(a2[j]), b0, c2);
                c3 = TS.Fma(TS.Splat(a3[j]), b0, c3);
                c4 = TS.Fma(TS.Splat(a4[j]), b0, c4);
            }
            TS.Store(o0 + e, c0); TS.Store(o1 + e, c1); TS.Store(o2 + e, c2);
            TS.Store(o3 + e, c3); TS.Store(o4 + e, c4);
        }
    }

    /// <summary>
    /// Out[j, :] += Σ_{r&lt;cnt} A[r, j]·B[r, :] for j &lt; ncols (a multiple of 4): the transposed-A product used for
    /// dV += Pᵀ·dO and dK += dSᵀ·Q. Out row stride ldo, A row stride lda, B row stride ldb, nv vectors per row.
    /// 4 keys × 4 vectors in registers, then 4 × 1.
    /// </summary>
    [SkipLocalsInit]
    static void AccumT<TS, TV>(float* outT, int ldo, float* a, int lda, int cnt, int ncols, float* b, int ldb, int nv)
        where TS : struct, ISimd<TV> where TV : struct
    {
        int w = TS.Count;
        for (int j = 0; j < ncols; j += 4)
        {
            float* o0 = outT + (long)j * ldo, o1 = o0 + ldo, o2 = o1 + ldo, o3 = o2 + ldo;
            int v = 0;
            for (; v + 4 <= nv; v += 4)
            {
                int e = v * w;
                TV c00 = TS.Load(o0 + e), c01 = TS.Load(o0 + e + w), c02 = TS.Load(o0 + e + 2 * w), c03 = TS.Load(o0 + e + 3 * w);
                TV c10 = TS.Load(o1 + e), c11 = TS.Load(o1 + e + w), c12 = TS.Load(o1 + e + 2 * w), c13 = TS.Load(o1 + e + 3 * w);
                TV c20 = TS.Load(o2 + e), c21 = TS.Load(o2 + e + w), c22 = TS.Load(o2 + e + 2 * w), c23 = TS.Load(o2 + e + 3 * w);
                TV c30 = TS.Load(o3 + e), c31 = TS.Load(o3 + e + w), c32 = TS.Load(o3 + e + 2 * w), c33 = TS.Load(o3 + e + 3 * w);
                float* ap = a + j;
                float* bp = b + e;
                for (int r = 0; r < cnt; r++, ap += lda, bp += ldb)
                {
                    TV b0 = TS.Load(bp), b1 = TS.Load(bp + w), b2 = TS.Load(bp + 2 * w), b3 = TS.Load(bp + 3 * w);
                    TV x = TS.Splat(ap[0]);
                    c00 = TS.Fma(x, b0, c00); c01 = TS.Fma(x, b1, c01); c02 = TS.Fma(x, b2, c02); c03 = TS.Fma(x, b3, c03);
                    x = TS.Splat(ap[1]);
                    c10 = TS.Fma(x, b0, c10); c11 = TS.Fma(x, b1, c11); c12 = TS.Fma(x, b2, c12); c13 = TS.Fma(x, b3, c13);
                    x = TS.Splat(ap[2]);
                    c20 = TS.Fma(x, b0, c20); c21 = TS.Fma(x, b1, c21); c22 = TS.Fma(x, b2, c22); c23 = TS.Fma(x, b3, c23);
                    x = TS.Splat(ap[3]);
                    c30 = TS.Fma(x, b0, c30); c31 = TS.Fma(x, b1, c31); c32 = TS.Fma(x, b2, c32); c33 = TS.Fma(x, b3, c33);
                }
                TS.Store(o0 + e, c00); TS.Store(o0 + e + w, c01); TS.Store(o0 + e + 2 * w, c02); TS.Store(o0 + e + 3 * w, c03);
                TS.Store(o1 + e, c10); TS.Store(o1 + e + w, c11); TS.Store(o1 + e + 2 * w, c12); TS.Store(o1 + e + 3 * w, c13);
                TS.Store(o2 + e, c20); TS.Store(o2 + e + w, c21); TS.Store(o2 + e + 2 * w, c22); TS.Store(o2 + e + 3 * w, c23);
                TS.Store(o3 + e, c30); TS.Store(o3 + e + w, c31); TS.Store(o3 + e + 2 * w, c32); TS.Store(o3 + e + 3 * w, c33);
            }
            for (; v < nv; v++)
            {
                int e = v * w;
                TV c0 = TS.Load(o0 + e), c1 = TS.Load(o1 + e), c2 = TS.Load(o2 + e), c3 = TS.Load(o3 + e);
                float* ap = a + j;
                float* bp = b + e;
                for (int r = 0; r < cnt; r++, ap += lda, bp += ldb)
                {
                    TV b0 = TS.Load(bp);
                    c0 = TS.Fma(TS.Splat(ap[0]), b0, c0);
                    c1 = TS.Fma(TS.Splat(ap[1]), b0, c1);
                    c2 = TS.Fma(TS.Splat(ap[2]), b0, c2);
                    c3 = TS.Fma(TS.Splat(ap[3]), b0, c3);
                }
                TS.Store(o0 + e, c0); TS.Store(o1 + e, c1); TS.Store(o2 + e, c2); TS.Store(o3 + e, c3);
            }
        }
    }
}
