using ILGPU;
using ILGPU.Runtime;

namespace MicroExpr.Kernels;

/// <summary>
/// Fused multi-head attention on an ILGPU accelerator, memory linear in N (no Nq×Nk buffer).
/// Per head b of BH: S = scale·Q·Kᵀ [Nq, Nk], P = softmax(S) by rows, O = P·V [Nq, D], lse_i = log Σ_j exp(S_ij).
/// Backward: Di = Σ_d dO∘O [Nq], dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P∘(dP − Di), dQ = scale·dS·K, dK = scale·dSᵀ·Q.
/// q, o, dO, dq [BH, Nq, D]; k, v, dk, dv [BH, Nk, D]; lse [BH, Nq]; D ≤ 128, Nk ≥ 1. lse is contiguous; q, k, v, o are
/// read or written through their <see cref="AttentionOperandLayout"/> (dq, dk, dv through the q, k, v strides, dO through o's):
/// row r of head h starts at Offset + (h / Heads)·BatchStride + (h % Heads)·HeadStride + r·RowStride, its D floats
/// contiguous. Contiguous row-major is <see cref="AttentionLayout.Contiguous"/>; a fused QKV projection
/// [B, N, 3, H, D] read in place (and o written as [B, N, H, D]) is the same kernels with other strides. Each kernel
/// resolves its head's base once; a row costs one multiply-add more than contiguous.
/// <para>Layout shared by all kernels: one warp owns one row (a query row, or a key row in the dK/dV kernel); lane l holds
/// that row's accumulator columns l, l+32, l+64, l+96 in a <see cref="Vec4"/>; the other side is streamed through shared
/// memory in tiles of 32 rows (one row per lane, padded stride D+1 so the 32 lanes' dot products hit 32 banks);
/// scores and probabilities are exchanged through the warp's own 32-float slice of shared memory behind a warp barrier
/// (one barrier per tile, where a shuffle per key would be 32).</para>
/// <para>Versions:</para>
/// <list type="bullet">
/// <item>v1 <see cref="ForwardKernel"/>: group = (query tile of W rows, head b); loops over key tiles of 32: lane j
/// scores key j, the warp's row max over the tile from shared memory, online softmax (running max m, sum l, rescale of O by exp(m_old − m_new)), O += P·V_tile.
/// O and lse written once at the end.</item>
/// <item>v1 backward = <see cref="RowDotKernel"/> (Di, warp per query row, into scratch [BH·Nq]) then
/// <see cref="BackwardKvKernel"/>: group = (key tile of W rows, b); loops over query tiles of 32 (Q, dO tiles staged),
/// recomputes P_ij = exp(scale·q_i·k_j − lse_i) and dS, accumulates dV_j, dK_j in registers; and
/// <see cref="BackwardQKernel"/>: group = (query tile of W rows, b); loops over key tiles of 32 (K, V staged),
/// accumulates dQ_i. Each output is written by exactly one warp: race-free, no atomics, deterministic.
/// P is recomputed twice (once per backward kernel): 2× the forward's exp work, in exchange for no N×N memory.</item>
/// </list>
/// </summary>
public sealed class AttentionKernels : IDisposable
{
    /// <summary>Largest supported head dimension D (4 accumulator columns per lane).</summary>
    public const int MaxD = 128;

    /// <summary>Rows per streamed tile (one per lane).</summary>
    public const int Tile = 32;

    /// <summary>Most warps (owned rows) per group; fixes the static shared-memory size.</summary>
    public const int MaxWarps = 8;

    private const int Stride = MaxD + 1;

    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, AttentionArgs> _forward;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs> _rowDot;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs> _backwardKv;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs> _backwardQ;
    private readonly Scratch _scratch;

    /// <summary>Default: 4 warps (128 threads) per group, i.e. 4 owned rows per group.</summary>
    public AttentionKernels(Accelerator accelerator) : this(accelerator, 4) { }

    public AttentionKernels(Accelerator accelerator, int warpsPerGroup)
    {
        if (warpsPerGroup < 1 || warpsPerGroup > MaxWarps)
            throw new ArgumentOutOfRangeException(nameof(warpsPerGroup), $"attention: 1..{MaxWarps} warps per group");
        KernelChecks.GroupSize(accelerator, warpsPerGroup * KernelChecks.WarpSize, "attention");
        Accelerator = accelerator;
        WarpsPerGroup = warpsPerGroup;
        _forward = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            AttentionArgs>(ForwardKernel);
        _rowDot = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs>(RowDotKernel);
        _backwardKv = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs>(BackwardKvKernel);
        _backwardQ = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, AttentionArgs>(BackwardQKernel);
        _scratch = new Scratch(accelerator);
    }

    public Accelerator Accelerator { get; }

    /// <summary>Rows owned per group (one warp each).</summary>
    public int WarpsPerGroup { get; }

    /// <summary>q [BH,Nq,D], k/v [BH,Nk,D] → o [BH,Nq,D], lse [BH,Nq]; all contiguous.</summary>
    public void Forward(AcceleratorStream stream, ArrayView<float> o, ArrayView<float> lse, ArrayView<float> q, ArrayView<float> k,
        ArrayView<float> v, int bh, int nq, int nk, int d, float scale) =>
        Forward(stream, o, lse, q, k, v, bh, nq, nk, d, scale, AttentionLayout.Contiguous(nq, nk, d));

    /// <summary>q [BH,Nq,D], k/v [BH,Nk,D] → o [BH,Nq,D] (each through its strides), lse [BH,Nq] (contiguous).</summary>
    public void Forward(AcceleratorStream stream, ArrayView<float> o, ArrayView<float> lse, ArrayView<float> q, ArrayView<float> k,
        ArrayView<float> v, int bh, int nq, int nk, int d, float scale, in AttentionLayout strides)
    {
        var args = Check(bh, nq, nk, d, scale, strides);
        KernelChecks.Length(o, strides.O.Reach(bh, nq, d), nameof(o), "attention");
        KernelChecks.Length(lse, (long)bh * nq, nameof(lse), "attention");
        KernelChecks.Length(q, strides.Q.Reach(bh, nq, d), nameof(q), "attention");
        KernelChecks.Length(k, strides.K.Reach(bh, nk, d), nameof(k), "attention");
        KernelChecks.Length(v, strides.V.Reach(bh, nk, d), nameof(v), "attention");
        if (bh == 0 || nq == 0) return;
        _forward(stream, Config(nq, bh), o, lse, q, k, v, args);
    }

    /// <summary>dq, dk, dv overwritten; all operands contiguous.</summary>
    public void Backward(AcceleratorStream stream, ArrayView<float> dq, ArrayView<float> dk, ArrayView<float> dv, ArrayView<float> q,
        ArrayView<float> k, ArrayView<float> v, ArrayView<float> o, ArrayView<float> dO, ArrayView<float> lse, int bh, int nq, int nk,
        int d, float scale) =>
        Backward(stream, dq, dk, dv, q, k, v, o, dO, lse, bh, nq, nk, d, scale, AttentionLayout.Contiguous(nq, nk, d));

    /// <summary>
    /// dq, dk, dv overwritten in the q, k, v strides (only the elements the strides reach are written); dO read through
    /// o's strides.
    /// </summary>
    public void Backward(AcceleratorStream stream, ArrayView<float> dq, ArrayView<float> dk, ArrayView<float> dv, ArrayView<float> q,
        ArrayView<float> k, ArrayView<float> v, ArrayView<float> o, ArrayView<float> dO, ArrayView<float> lse, int bh, int nq, int nk,
        int d, float scale, in AttentionLayout strides)
    {
        var args = Check(bh, nq, nk, d, scale, strides);
        long qn = strides.Q.Reach(bh, nq, d), kn = strides.K.Reach(bh, nk, d), vn = strides.V.Reach(bh, nk, d), on = strides.O.Reach(bh, nq, d);
        KernelChecks.Length(dq, qn, nameof(dq), "attention backward");
        KernelChecks.Length(dk, kn, nameof(dk), "attention backward");
        KernelChecks.Length(dv, vn, nameof(dv), "attention backward");
        KernelChecks.Length(q, qn, nameof(q), "attention backward");
        KernelChecks.Length(k, kn, nameof(k), "attention backward");
        KernelChecks.Length(v, vn, nameof(v), "attention backward");
        KernelChecks.Length(o, on, nameof(o), "attention backward");
        KernelChecks.Length(dO, on, nameof(dO), "attention backward");
        KernelChecks.Length(lse, (long)bh * nq, nameof(lse), "attention backward");
        if (bh == 0) return;
        var di = _scratch.Get((long)bh * nq);
        if (nq > 0)
        {
            int rows = bh * nq;
            _rowDot(stream, new KernelConfig((rows + WarpsPerGroup - 1) / WarpsPerGroup, WarpsPerGroup * KernelChecks.WarpSize), di, o, dO, args);
            _backwardQ(stream, Config(nq, bh), dq, q, k, v, dO, lse, di, args);
        }
        _backwardKv(stream, Config(nk, bh), dk, dv, q, k, v, dO, lse, di, args);
    }

    public void Dispose() => _scratch.Dispose();

    private static AttentionArgs Check(int bh, int nq, int nk, int d, float scale, in AttentionLayout strides)
    {
        if (bh < 0 || nq < 0) throw new ArgumentOutOfRangeException(nameof(bh), "attention: negative dimension");
        if (nk < 1) throw new ArgumentOutOfRangeException(nameof(nk), "attention: needs at least one key (Nk ≥ 1)");
        if (d < 1 || d > MaxD) throw new ArgumentOutOfRangeException(nameof(d), $"attention: head dimension D = {d}; the kernels support 1..{MaxD}");
        strides.Q.Validate(bh, "q");
        strides.K.Validate(bh, "k");
        strides.V.Validate(bh, "v");
        strides.O.Validate(bh, "o");
        return new AttentionArgs { BH = bh, Nq = nq, Nk = nk, D = d, Scale = scale, Q = strides.Q, K = strides.K, V = strides.V, O = strides.O };
    }

    private KernelConfig Config(int ownedRows, int bh) =>
        new(new Index2D((ownedRows + WarpsPerGroup - 1) / WarpsPerGroup, bh), new Index2D(WarpsPerGroup * KernelChecks.WarpSize, 1));

    /// <summary>Dot product of a row in shared memory (stride 1) with row <paramref name="tileRow"/> of a padded tile.</summary>
    private static float Dot(ArrayView<float> row, int rowStart, ArrayView<float> tile, int tileRow, int d)
    {
        float s = 0f;
        int t = tileRow * Stride;
        for (int c = 0; c < d; c++) s += row[rowStart + c] * tile[t + c];
        return s;
    }

    /// <summary>
    /// Loads rows [r0, r0 + 32) of a head's [rows, D] matrix (row r at <paramref name="headBase"/> + r·<paramref name="rowStride"/>)
    /// into a padded tile; missing rows are zero.
    /// </summary>
    private static void LoadTile(ArrayView<float> tile, ArrayView<float> src, long headBase, int rowStride, int r0, int rows, int d)
    {
        for (int e = Group.IdxX; e < Tile * d; e += Group.DimX)
        {
            int r = e / d, c = e - r * d;
            tile[r * Stride + c] = r0 + r < rows ? src[headBase + (long)(r0 + r) * rowStride + c] : 0f;
        }
    }

    /// <summary>
    /// The backward kernels' staging of warp <paramref name="w"/>'s own row pair: D floats at <paramref name="aRow"/> of
    /// <paramref name="a"/>, times <paramref name="s"/>, into aS and D floats at <paramref name="bRow"/> of
    /// <paramref name="b"/> into bS, each in the warp's slice [w·MaxD, w·MaxD + D) of a shared [W][MaxD] buffer, lanes
    /// striding over the columns (one loop for both); zeros when the warp owns no row (it still joins the group's
    /// barriers). dK/dV: (k pre-scaled, v); dQ: (q pre-scaled, dO). The forward stages its one row (q) inline.
    /// </summary>
    private static void StageOwnRows(ArrayView<float> aS, ArrayView<float> a, long aRow, ArrayView<float> bS, ArrayView<float> b,
        long bRow, float s, bool own, int w, int lane, int d)
    {
        for (int c = lane; c < d; c += Warp.WarpSize)
        {
            aS[w * MaxD + c] = own ? a[aRow + c] * s : 0f;
            bS[w * MaxD + c] = own ? b[bRow + c] : 0f;
        }
    }

    /// <summary>This lane's four columns (lane, lane+32, lane+64, lane+96) of tile row r; columns ≥ D read padding and are never stored.</summary>
    private static Vec4 TileColumns(ArrayView<float> tile, int r, int lane) =>
        new(tile[r * Stride + lane], tile[r * Stride + lane + 32], tile[r * Stride + lane + 64], tile[r * Stride + lane + 96]);

    /// <summary>Stores this lane's columns of a D-wide row (scaled by <paramref name="s"/>).</summary>
    private static void StoreRow(ArrayView<float> dst, long rowOffset, int lane, int d, Vec4 acc, float s)
    {
        if (lane < d) dst[rowOffset + lane] = acc.X * s;
        if (lane + 32 < d) dst[rowOffset + lane + 32] = acc.Y * s;
        if (lane + 64 < d) dst[rowOffset + lane + 64] = acc.Z * s;
        if (lane + 96 < d) dst[rowOffset + lane + 96] = acc.W * s;
    }

    /// <summary>
    /// v1 forward. Group (tile, b), warp w owns query i = tile·W + w. Shared: qS [W][D] (owned rows, pre-scaled by scale),
    /// kS, vS [32][D+1] (current key tile). Rows i ≥ Nq compute on zeros (they must still join the barriers) and store nothing.
    /// q, k, v, o rows are addressed through p.Q, p.K, p.V, p.O (head base resolved once per group); lse [BH, Nq].
    /// </summary>
    internal static void ForwardKernel(ArrayView<float> o, ArrayView<float> lse, ArrayView<float> q, ArrayView<float> k,
        ArrayView<float> v, AttentionArgs p)
    {
        var qS = SharedMemory.Allocate<float>(MaxWarps * MaxD);
        var kS = SharedMemory.Allocate<float>(Tile * Stride);
        var vS = SharedMemory.Allocate<float>(Tile * Stride);
        var sS = SharedMemory.Allocate<float>(MaxWarps * Tile);
        var pS = SharedMemory.Allocate<float>(MaxWarps * Tile);
        int w = Warp.WarpIdx, lane = Warp.LaneIdx, d = p.D;
        int b = Grid.IdxY, i = Grid.IdxX * (Group.DimX / Warp.WarpSize) + w;
        bool own = i < p.Nq;
        long qRow = p.Q.RowStart(b, i), kBase = p.K.RowStart(b, 0), vBase = p.V.RowStart(b, 0);
        for (int c = lane; c < d; c += Warp.WarpSize) qS[w * MaxD + c] = own ? q[qRow + c] * p.Scale : 0f;

        float m = float.NegativeInfinity, l = 0f;
        Vec4 acc = Vec4.Zero;
        for (int k0 = 0; k0 < p.Nk; k0 += Tile)
        {
            int nt = Math.Min(Tile, p.Nk - k0);
            Group.Barrier(); // the previous tile is consumed (first pass: qS is written)
            LoadTile(kS, k, kBase, p.K.RowStride, k0, p.Nk, d);
            LoadTile(vS, v, vBase, p.V.RowStride, k0, p.Nk, d);
            Group.Barrier();
            // Lane j scores key k0 + j; the warp exchanges scores and probabilities through its own 32-float slices of
            // shared memory (two warp barriers per tile instead of a shuffle per key).
            sS[w * Tile + lane] = lane < nt ? Dot(qS, w * MaxD, kS, lane, d) : float.NegativeInfinity;
            Warp.Barrier();
            float mNew = m;
            for (int j = 0; j < nt; j++) mNew = MathF.Max(mNew, sS[w * Tile + j]);
            float correction = FastMath.Exp(m - mNew); // m = −∞ on the first tile → 0
            pS[w * Tile + lane] = lane < nt ? FastMath.Exp(sS[w * Tile + lane] - mNew) : 0f;
            Warp.Barrier();
            float rowSum = 0f;
            acc = Vec4.Scale(acc, correction);
            for (int j = 0; j < nt; j++)
            {
                float pj = pS[w * Tile + j];
                rowSum += pj;
                acc = Vec4.Fma(acc, pj, TileColumns(vS, j, lane));
            }
            l = l * correction + rowSum;
            m = mNew;
        }
        if (own)
        {
            StoreRow(o, p.O.RowStart(b, i), lane, d, acc, 1f / l);
            if (lane == 0) lse[(long)b * p.Nq + i] = m + FastMath.Log(l);
        }
    }

    /// <summary>
    /// Backward pre-pass: Di = Σ_d dO_id·O_id for every row of [BH·Nq, D] (o and dO through p.O) into contiguous
    /// di [BH·Nq]; warp per row.
    /// </summary>
    internal static void RowDotKernel(ArrayView<float> di, ArrayView<float> o, ArrayView<float> dO, AttentionArgs p)
    {
        int row = Grid.IdxX * (Group.DimX / Warp.WarpSize) + Warp.WarpIdx;
        if (row >= p.BH * p.Nq) return;
        int b = row / p.Nq;
        long start = p.O.RowStart(b, row - b * p.Nq);
        float s = 0f;
        for (int c = Warp.LaneIdx; c < p.D; c += Warp.WarpSize) s += dO[start + c] * o[start + c];
        s = WarpReduce.Sum(s);
        if (Warp.LaneIdx == 0) di[row] = s;
    }

    /// <summary>
    /// v1 backward, dK and dV. Group (tile, b), warp w owns key j = tile·W + w (k_j, v_j in shared kS, vS [W][D]); loops
    /// over query tiles of 32 (qT, dOT [32][D+1], lse and Di [32]): lane i computes P_ij = exp(scale·q_i·k_j − lse_i),
    /// dS_ij = P_ij·(dO_i·v_j − Di); then dV_j += Σ_i P_ij·dO_i and dK_j += Σ_i dS_ij·q_i (column-split over lanes).
    /// k and dk rows through p.K, v and dv through p.V, q through p.Q, dO through p.O; lse and di [BH, Nq].
    /// </summary>
    internal static void BackwardKvKernel(ArrayView<float> dk, ArrayView<float> dv, ArrayView<float> q, ArrayView<float> k,
        ArrayView<float> v, ArrayView<float> dO, ArrayView<float> lse, ArrayView<float> di, AttentionArgs p)
    {
        var kS = SharedMemory.Allocate<float>(MaxWarps * MaxD);
        var vS = SharedMemory.Allocate<float>(MaxWarps * MaxD);
        var qT = SharedMemory.Allocate<float>(Tile * Stride);
        var dOT = SharedMemory.Allocate<float>(Tile * Stride);
        var lseT = SharedMemory.Allocate<float>(Tile);
        var diT = SharedMemory.Allocate<float>(Tile);
        var pS = SharedMemory.Allocate<float>(MaxWarps * Tile);
        var dsS = SharedMemory.Allocate<float>(MaxWarps * Tile);
        int w = Warp.WarpIdx, lane = Warp.LaneIdx, d = p.D;
        int b = Grid.IdxY, j = Grid.IdxX * (Group.DimX / Warp.WarpSize) + w;
        bool own = j < p.Nk;
        long kRow = p.K.RowStart(b, j), vRow = p.V.RowStart(b, j), qBase = p.Q.RowStart(b, 0), dOBase = p.O.RowStart(b, 0);
        StageOwnRows(kS, k, kRow, vS, v, vRow, p.Scale, own, w, lane, d);

        Vec4 dK = Vec4.Zero, dV = Vec4.Zero;
        for (int q0 = 0; q0 < p.Nq; q0 += Tile)
        {
            int nt = Math.Min(Tile, p.Nq - q0);
            Group.Barrier();
            LoadTile(qT, q, qBase, p.Q.RowStride, q0, p.Nq, d);
            LoadTile(dOT, dO, dOBase, p.O.RowStride, q0, p.Nq, d);
            for (int e = Group.IdxX; e < Tile; e += Group.DimX)
            {
                bool ok = q0 + e < p.Nq;
                lseT[e] = ok ? lse[(long)b * p.Nq + q0 + e] : 0f;
                diT[e] = ok ? di[(long)b * p.Nq + q0 + e] : 0f;
            }
            Group.Barrier();
            float pij = 0f, ds = 0f;
            if (lane < nt)
            {
                pij = FastMath.Exp(Dot(kS, w * MaxD, qT, lane, d) - lseT[lane]);
                ds = pij * (Dot(vS, w * MaxD, dOT, lane, d) - diT[lane]);
            }
            pS[w * Tile + lane] = pij;
            dsS[w * Tile + lane] = ds;
            Warp.Barrier();
            for (int r = 0; r < nt; r++)
            {
                dV = Vec4.Fma(dV, pS[w * Tile + r], TileColumns(dOT, r, lane));
                dK = Vec4.Fma(dK, dsS[w * Tile + r], TileColumns(qT, r, lane));
            }
        }
        if (own)
        {
            StoreRow(dv, vRow, lane, d, dV, 1f);
            StoreRow(dk, kRow, lane, d, dK, p.Scale);
        }
    }

    /// <summary>
    /// v1 backward, dQ. Group (tile, b), warp w owns query i (q_i, dO_i in shared [W][D], lse_i and Di in registers); loops
    /// over key tiles of 32 (kT, vT [32][D+1]): lane j computes P_ij and dS_ij as above, then dQ_i += Σ_j dS_ij·k_j.
    /// q and dq rows through p.Q, dO through p.O, k through p.K, v through p.V; lse and di [BH, Nq].
    /// </summary>
    internal static void BackwardQKernel(ArrayView<float> dq, ArrayView<float> q, ArrayView<float> k, ArrayView<float> v,
        ArrayView<float> dO, ArrayView<float> lse, ArrayView<float> di, AttentionArgs p)
    {
        var qS = SharedMemory.Allocate<float>(MaxWarps * MaxD);
        var dOS = SharedMemory.Allocate<float>(MaxWarps * MaxD);
        var kT = SharedMemory.Allocate<float>(Tile * Stride);
        var vT = SharedMemory.Allocate<float>(Tile * Stride);
        var dsS = SharedMemory.Allocate<float>(MaxWarps * Tile);
        int w = Warp.WarpIdx, lane = Warp.LaneIdx, d = p.D;
        int b = Grid.IdxY, i = Grid.IdxX * (Group.DimX / Warp.WarpSize) + w;
        bool own = i < p.Nq;
        long qRow = p.Q.RowStart(b, i), dORow = p.O.RowStart(b, i), kBase = p.K.RowStart(b, 0), vBase = p.V.RowStart(b, 0);
        StageOwnRows(qS, q, qRow, dOS, dO, dORow, p.Scale, own, w, lane, d);
        float lseI = own ? lse[(long)b * p.Nq + i] : 0f, diI = own ? di[(long)b * p.Nq + i] : 0f;

        Vec4 dQ = Vec4.Zero;
        for (int k0 = 0; k0 < p.Nk; k0 += Tile)
        {
            int nt = Math.Min(Tile, p.Nk - k0);
            Group.Barrier();
            LoadTile(kT, k, kBase, p.K.RowStride, k0, p.Nk, d);
            LoadTile(vT, v, vBase, p.V.RowStride, k0, p.Nk, d);
            Group.Barrier();
            float ds = 0f;
            if (lane < nt)
            {
                float pij = FastMath.Exp(Dot(qS, w * MaxD, kT, lane, d) - lseI);
                ds = pij * (Dot(dOS, w * MaxD, vT, lane, d) - diI);
            }
            dsS[w * Tile + lane] = ds;
            Warp.Barrier();
            for (int r = 0; r < nt; r++) dQ = Vec4.Fma(dQ, dsS[w * Tile + r], TileColumns(kT, r, lane));
        }
        if (own) StoreRow(dq, qRow, lane, d, dQ, p.Scale);
    }
}

/// <summary>Attention launch arguments.</summary>
internal struct AttentionArgs
{
    public int BH, Nq, Nk, D;
    public float Scale;
    public AttentionOperandLayout Q, K, V, O;
}
