using MicroExpr.Tensors;

namespace MicroExpr.Cli.Explain;

/// <summary>A named matrix of one step (rows × columns, row-major, double).</summary>
internal sealed record TraceMatrix(string Name, int Rows, int Cols, double[] Values, string[]? RowLabels = null, string[]? ColLabels = null)
{
    public double this[int r, int c] => Values[r * Cols + c];
}

/// <summary>One step of the trace: what is computed, the formula, where the real kernel does it, and its numbers.</summary>
internal sealed record TraceStep(string Title, string Formula, string Where, IReadOnlyList<TraceMatrix> Matrices, string? Note = null);

/// <summary>Where the engine's kernels perform a step: a file of the repository and a function in it.</summary>
internal sealed record KernelSite(string File, string Function)
{
    public override string ToString() => $"{File}: {Function}";

    /// <summary>"file: f (role), g (role); file2: h (role)": sites grouped by file, in the order given.</summary>
    public static string Describe(params (KernelSite Site, string Role)[] sites) =>
        string.Join("; ", sites.GroupBy(s => s.Site.File).Select(g =>
            $"{g.Key}: {string.Join(", ", g.Select(s => $"{s.Site.Function}{(s.Role.Length > 0 ? $" ({s.Role})" : "")}"))}"));
}

/// <summary>
/// Scaled dot-product attention of one head, step by step, on numbers small enough to read (Q, K, V [N, D]):
/// first the naive way (S = QKᵀ/√D [N, N], P = softmax by rows, O = P·V), then as the fused kernel does it — keys in
/// tiles, an online softmax with a running row max m and row sum ℓ, the partial output rescaled by exp(m_old − m_new)
/// at each tile, O = O_acc / ℓ and the saved log-sum-exp lse = m + log ℓ — and, for the backward, dO → D = rowsum(dO ∘
/// O), P recomputed from lse, per key tile dV += Pᵀ·dO, dP = dO·Vᵀ, dS = P ∘ (dP − D), dQ += s·dS·K, dK = s·dSᵀ·Q.
/// Everything is computed here in double; <see cref="Outputs"/> are compared by the caller with the real kernel's
/// float output. The kernel keeps m in the log2 domain (scores pre-multiplied by s·log2 e, one exp2 per score); the
/// trace shows the natural-log form, which is the same arithmetic up to that constant.
/// </summary>
internal sealed class AttentionTrace
{
    /// <summary>The key tile of the CPU kernel (AttentionSimd's KT): the trace's default.</summary>
    public const int KernelTile = 64;

    /// <summary>The real code behind each step. A test checks that every file exists and names its function.</summary>
    public static class Sites
    {
        public static readonly KernelSite Reference = new("kernels/MicroExpr.Kernels/Attention/Attention.Reference.cs", "AttentionReference.Forward");
        public static readonly KernelSite ReferenceBackward = new("kernels/MicroExpr.Kernels/Attention/Attention.Reference.cs", "AttentionReference.Backward");
        public static readonly KernelSite Scores = new("kernels/MicroExpr.Kernels/Attention/Attention.Simd.cs", "AttentionSimd.MulPackedT");
        public static readonly KernelSite TileLoop = new("kernels/MicroExpr.Kernels/Attention/Attention.Simd.cs", "AttentionSimd.ForwardItem");
        public static readonly KernelSite OnlineSoftmax = new("kernels/MicroExpr.Kernels/Attention/Attention.Simd.cs", "AttentionSimd.ExpSum");
        public static readonly KernelSite Accumulate = new("kernels/MicroExpr.Kernels/Attention/Attention.Simd.cs", "AttentionSimd.AccumRows");
        public static readonly KernelSite Finish = new("kernels/MicroExpr.Kernels/Attention/Attention.Simd.cs", "AttentionSimd.ScaleCopy");
        public static readonly KernelSite GpuForward = new("kernels/MicroExpr.Kernels/Attention/Attention.Ilgpu.cs", "AttentionKernels.ForwardKernel");
        public static readonly KernelSite BackwardHead = new("kernels/MicroExpr.Kernels/Attention/Attention.Simd.cs", "AttentionSimd.BackwardHead");
        public static readonly KernelSite ProbAndDs = new("kernels/MicroExpr.Kernels/Attention/Attention.Simd.cs", "AttentionSimd.ProbAndDs");
        public static readonly KernelSite AccumT = new("kernels/MicroExpr.Kernels/Attention/Attention.Simd.cs", "AttentionSimd.AccumT");
        public static readonly KernelSite GpuRowDot = new("kernels/MicroExpr.Kernels/Attention/Attention.Ilgpu.cs", "AttentionKernels.RowDotKernel");
        public static readonly KernelSite GpuBackwardKv = new("kernels/MicroExpr.Kernels/Attention/Attention.Ilgpu.cs", "AttentionKernels.BackwardKvKernel");
        public static readonly KernelSite GpuBackwardQ = new("kernels/MicroExpr.Kernels/Attention/Attention.Ilgpu.cs", "AttentionKernels.BackwardQKernel");

        public static IEnumerable<KernelSite> All =>
            [Reference, ReferenceBackward, Scores, TileLoop, OnlineSoftmax, Accumulate, Finish, GpuForward, BackwardHead, ProbAndDs, AccumT, GpuRowDot, GpuBackwardKv, GpuBackwardQ];
    }

    public int N { get; }
    public int D { get; }
    public int Tile { get; }
    public double Scale { get; }
    public double[] Q { get; }
    public double[] K { get; }
    public double[] V { get; }
    public double[]? DOut { get; }
    public List<TraceStep> Steps { get; } = [];

    /// <summary>The naive forward's output [N, D] and lse [N], and the fused trace's.</summary>
    public double[] NaiveO { get; private set; } = [];
    public double[] NaiveLse { get; private set; } = [];
    public double[] FusedO { get; private set; } = [];
    public double[] FusedLse { get; private set; } = [];
    /// <summary>Backward results (fused trace; null without --backward), and the naive ones.</summary>
    public double[]? DQ { get; private set; }
    public double[]? DK { get; private set; }
    public double[]? DV { get; private set; }
    public double[]? NaiveDQ { get; private set; }
    public double[]? NaiveDK { get; private set; }
    public double[]? NaiveDV { get; private set; }

    /// <summary>Seeded inputs rounded to one decimal, so that every printed number can be checked by hand.</summary>
    public static AttentionTrace Create(int n, int d, int tile, int seed, bool backward)
    {
        var rng = new Rng((ulong)seed);
        double[] R(int count) => Enumerable.Range(0, count).Select(_ => Math.Round(rng.NextNormal(), 1)).ToArray();
        var q = R(n * d);
        var k = R(n * d);
        var v = R(n * d);
        var dO = backward ? R(n * d) : null;
        return new AttentionTrace(n, d, tile, q, k, v, dO);
    }

    public AttentionTrace(int n, int d, int tile, double[] q, double[] k, double[] v, double[]? dOut)
    {
        if (n < 1 || d < 1 || tile < 1) throw new ArgumentOutOfRangeException(nameof(n), "n, d and tile must be ≥ 1");
        N = n;
        D = d;
        Tile = tile;
        Scale = 1 / Math.Sqrt(d);
        Q = q;
        K = k;
        V = v;
        DOut = dOut;
        Forward();
        if (dOut != null) Backward();
    }

    private string[] RowNames(string p, int from = 0, int count = -1) =>
        Enumerable.Range(from, count < 0 ? N : count).Select(i => $"{p}{i}").ToArray();

    private string[] DimNames() => Enumerable.Range(0, D).Select(c => $"d{c}").ToArray();

    private TraceMatrix Rows(string name, double[] values, int rows, int cols, string rowPrefix, string[]? colLabels = null, int rowFrom = 0) =>
        new(name, rows, cols, values, RowNames(rowPrefix, rowFrom, rows), colLabels ?? DimNames());

    private void Forward()
    {
        int n = N, d = D;
        Steps.Add(new TraceStep("Inputs", "Q, K, V ∈ ℝ^{N×D}; one head; scale s = 1/√D = " + Scale.ToString("F4", Fmt.Inv),
            "the caller: Tensor.Attention / Tensor.SelfAttention (src/MicroExpr.Tensors/Ops/Fused.cs)",
            [Rows("Q", Q, n, d, "q"), Rows("K", K, n, d, "k"), Rows("V", V, n, d, "v")]));

        // ---- naive: the N×N matrix
        var s = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double acc = 0;
                for (int c = 0; c < d; c++) acc += Q[i * d + c] * K[j * d + c];
                s[i * n + j] = acc * Scale;
            }
        var cols = RowNames("k");
        Steps.Add(new TraceStep("Naive 1: scores", "S = s·Q·Kᵀ  (N×N: every query against every key)", Sites.Reference.ToString(),
            [Rows("S", s, n, n, "q", cols)], "This N×N matrix is what the fused kernel never stores: at N = 1024 tokens and 12 heads it is 48 MiB per image and layer, in float32."));
        var p = new double[n * n];
        var rowMax = new double[n];
        var rowSum = new double[n];
        NaiveLse = new double[n];
        for (int i = 0; i < n; i++)
        {
            rowMax[i] = double.NegativeInfinity;
            for (int j = 0; j < n; j++) rowMax[i] = Math.Max(rowMax[i], s[i * n + j]);
            for (int j = 0; j < n; j++) rowSum[i] += Math.Exp(s[i * n + j] - rowMax[i]);
            for (int j = 0; j < n; j++) p[i * n + j] = Math.Exp(s[i * n + j] - rowMax[i]) / rowSum[i];
            NaiveLse[i] = rowMax[i] + Math.Log(rowSum[i]);
        }
        Steps.Add(new TraceStep("Naive 2: softmax by rows", "P_ij = exp(S_ij − max_j S_ij) / Σ_j exp(S_ij − max_j S_ij)", Sites.Reference.ToString(),
            [Rows("P", p, n, n, "q", cols), Rows("row max, row sum", Interleave(rowMax, rowSum), n, 2, "q", ["max", "sum"])]));
        NaiveO = MatMul(p, V, n, n, d);
        Steps.Add(new TraceStep("Naive 3: output", "O = P·V;  lse_i = max_j S_ij + log Σ_j exp(S_ij − max)", Sites.Reference.ToString(),
            [Rows("O (naive)", NaiveO, n, d, "q"), Rows("lse (naive)", NaiveLse, n, 1, "q", ["lse"])]));

        // ---- fused: tiles of keys, online softmax
        var m = Enumerable.Repeat(double.NegativeInfinity, n).ToArray();
        var l = new double[n];
        var acc0 = new double[n * d];
        int t = 0;
        for (int j0 = 0; j0 < n; j0 += Tile, t++)
        {
            int kn = Math.Min(Tile, n - j0);
            var st = new double[n * kn];
            for (int i = 0; i < n; i++)
                for (int j = 0; j < kn; j++) st[i * kn + j] = s[i * n + j0 + j];
            var mOld = (double[])m.Clone();
            var alpha = new double[n];
            var pt = new double[n * kn];
            for (int i = 0; i < n; i++)
            {
                double tileMax = double.NegativeInfinity;
                for (int j = 0; j < kn; j++) tileMax = Math.Max(tileMax, st[i * kn + j]);
                double mNew = Math.Max(mOld[i], tileMax);
                alpha[i] = double.IsNegativeInfinity(mOld[i]) ? 0 : Math.Exp(mOld[i] - mNew);
                double sum = 0;
                for (int j = 0; j < kn; j++) sum += pt[i * kn + j] = Math.Exp(st[i * kn + j] - mNew);
                l[i] = l[i] * alpha[i] + sum;
                m[i] = mNew;
                for (int c = 0; c < d; c++)
                {
                    double a = acc0[i * d + c] * alpha[i];
                    for (int j = 0; j < kn; j++) a += pt[i * kn + j] * V[(j0 + j) * d + c];
                    acc0[i * d + c] = a;
                }
            }
            var tileCols = RowNames("k", j0, kn);
            Steps.Add(new TraceStep($"Fused, key tile {t}: keys {j0}..{j0 + kn - 1}",
                "S_tile = s·Q·K_tileᵀ;  m_new = max(m_old, max_j S_tile);  α = exp(m_old − m_new);  ℓ = α·ℓ + Σ_j exp(S_tile − m_new);  " +
                "O_acc = α·O_acc + exp(S_tile − m_new)·V_tile",
                KernelSite.Describe((Sites.TileLoop, "tile loop, m and ℓ"), (Sites.Scores, "scores"), (Sites.OnlineSoftmax, "exp and row sums"),
                    (Sites.Accumulate, "rescale O_acc, add P·V"), (Sites.GpuForward, "GPU")),
                [Rows("S_tile", st, n, kn, "q", tileCols), Rows("exp(S_tile − m_new)", pt, n, kn, "q", tileCols),
                 Rows("m_old → m_new, α, ℓ", Interleave(mOld, m, alpha, l), n, 4, "q", ["m_old", "m_new", "α", "ℓ"]),
                 Rows("O_acc (unnormalised)", (double[])acc0.Clone(), n, d, "q")],
                t == 0 ? "m starts at −∞ and ℓ at 0, so the first tile's α is 0: nothing to rescale yet." :
                    "α < 1 wherever this tile raised a row's max: the partial output and sum so far are rescaled to the new max."));
        }
        FusedO = new double[n * d];
        FusedLse = new double[n];
        for (int i = 0; i < n; i++)
        {
            for (int c = 0; c < d; c++) FusedO[i * d + c] = acc0[i * d + c] / l[i];
            FusedLse[i] = m[i] + Math.Log(l[i]);
        }
        double diff = MaxAbsDiff(FusedO, NaiveO);
        Steps.Add(new TraceStep("Fused: finish", "O = O_acc / ℓ;  lse = m + log ℓ  (saved for the backward)", KernelSite.Describe((Sites.Finish, "O"), (Sites.TileLoop, "lse")),
            [Rows("O (fused)", FusedO, n, d, "q"), Rows("lse (fused)", FusedLse, n, 1, "q", ["lse"])],
            $"max |O_fused − O_naive| = {diff:E2}: the same numbers, without the N×N matrix."));
    }

    private void Backward()
    {
        int n = N, d = D;
        var dO = DOut!;
        var di = new double[n];
        for (int i = 0; i < n; i++)
            for (int c = 0; c < d; c++) di[i] += dO[i * d + c] * FusedO[i * d + c];
        Steps.Add(new TraceStep("Backward 1: Dᵢ", "D_i = Σ_d dO_id·O_id  (= Σ_j P_ij·dP_ij, so the softmax's backward needs no N×N sum)",
            KernelSite.Describe((Sites.BackwardHead, ""), (Sites.GpuRowDot, "GPU")), [Rows("dO", dO, n, d, "q"), Rows("D", di, n, 1, "q", ["D"])]));

        DQ = new double[n * d];
        DK = new double[n * d];
        DV = new double[n * d];
        int t = 0;
        for (int j0 = 0; j0 < n; j0 += Tile, t++)
        {
            int kn = Math.Min(Tile, n - j0);
            var pt = new double[n * kn];
            var dp = new double[n * kn];
            var ds = new double[n * kn];
            for (int i = 0; i < n; i++)
                for (int j = 0; j < kn; j++)
                {
                    double sc = 0, dpv = 0;
                    for (int c = 0; c < d; c++)
                    {
                        sc += Q[i * d + c] * K[(j0 + j) * d + c];
                        dpv += dO[i * d + c] * V[(j0 + j) * d + c];
                    }
                    pt[i * kn + j] = Math.Exp(sc * Scale - FusedLse[i]);
                    dp[i * kn + j] = dpv;
                    ds[i * kn + j] = pt[i * kn + j] * (dpv - di[i]);
                }
            for (int j = 0; j < kn; j++)
                for (int c = 0; c < d; c++)
                {
                    double dv = 0, dk = 0;
                    for (int i = 0; i < n; i++)
                    {
                        dv += pt[i * kn + j] * dO[i * d + c];
                        dk += ds[i * kn + j] * Q[i * d + c];
                    }
                    DV[(j0 + j) * d + c] = dv;
                    DK[(j0 + j) * d + c] = dk * Scale;
                }
            for (int i = 0; i < n; i++)
                for (int c = 0; c < d; c++)
                {
                    double a = 0;
                    for (int j = 0; j < kn; j++) a += ds[i * kn + j] * K[(j0 + j) * d + c];
                    DQ[i * d + c] += a * Scale;
                }
            var tileCols = RowNames("k", j0, kn);
            Steps.Add(new TraceStep($"Backward, key tile {t}: keys {j0}..{j0 + kn - 1}",
                "P_tile = exp(s·Q·K_tileᵀ − lse)  (recomputed, not stored);  dP = dO·V_tileᵀ;  dS = P ∘ (dP − D);  " +
                "dV_tile = Pᵀ·dO;  dK_tile = s·dSᵀ·Q;  dQ += s·dS·K_tile",
                KernelSite.Describe((Sites.BackwardHead, "tile loop"), (Sites.ProbAndDs, "P and dS"), (Sites.AccumT, "dV, dK"), (Sites.Accumulate, "dQ"),
                    (Sites.GpuBackwardKv, "GPU dK, dV"), (Sites.GpuBackwardQ, "GPU dQ")),
                [Rows("P_tile (from lse)", pt, n, kn, "q", tileCols), Rows("dP_tile", dp, n, kn, "q", tileCols), Rows("dS_tile", ds, n, kn, "q", tileCols),
                 Rows("dV_tile", DV[(j0 * d)..((j0 + kn) * d)], kn, d, "k", rowFrom: j0), Rows("dK_tile", DK[(j0 * d)..((j0 + kn) * d)], kn, d, "k", rowFrom: j0),
                 Rows("dQ so far", (double[])DQ.Clone(), n, d, "q")]));
        }

        // Naive backward for the comparison: the full P from the naive forward.
        var pFull = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double sc = 0;
                for (int c = 0; c < d; c++) sc += Q[i * d + c] * K[j * d + c];
                pFull[i * n + j] = Math.Exp(sc * Scale - NaiveLse[i]);
            }
        NaiveDV = MatMul(Transpose(pFull, n, n), dO, n, n, d);
        var dpFull = MatMul(dO, Transpose(V, n, d), n, d, n);
        var dsFull = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            double rowDot = 0;
            for (int j = 0; j < n; j++) rowDot += pFull[i * n + j] * dpFull[i * n + j];
            for (int j = 0; j < n; j++) dsFull[i * n + j] = pFull[i * n + j] * (dpFull[i * n + j] - rowDot);
        }
        NaiveDQ = MatMul(dsFull, K, n, n, d).Select(x => x * Scale).ToArray();
        NaiveDK = MatMul(Transpose(dsFull, n, n), Q, n, n, d).Select(x => x * Scale).ToArray();
        double diff = new[] { MaxAbsDiff(DQ, NaiveDQ), MaxAbsDiff(DK, NaiveDK), MaxAbsDiff(DV, NaiveDV) }.Max();
        Steps.Add(new TraceStep("Backward: result", "dQ, dK, dV", Sites.ReferenceBackward.ToString(),
            [Rows("dQ", DQ, n, d, "q"), Rows("dK", DK, n, d, "k"), Rows("dV", DV, n, d, "v")],
            $"max difference from the naive backward (full P, D_i = Σ_j P_ij·dP_ij): {diff:E2}."));
    }

    internal static double MaxAbsDiff(double[] a, double[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).DefaultIfEmpty(0).Max();

    private static double[] Interleave(params double[][] columns)
    {
        int rows = columns[0].Length, cols = columns.Length;
        var r = new double[rows * cols];
        for (int i = 0; i < rows; i++)
            for (int c = 0; c < cols; c++) r[i * cols + c] = columns[c][i];
        return r;
    }

    private static double[] MatMul(double[] a, double[] b, int m, int k, int n)
    {
        var c = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double acc = 0;
                for (int x = 0; x < k; x++) acc += a[i * k + x] * b[x * n + j];
                c[i * n + j] = acc;
            }
        return c;
    }

    private static double[] Transpose(double[] a, int rows, int cols)
    {
        var t = new double[rows * cols];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
        return t;
    }
}

internal static class Fmt
{
    public static readonly System.Globalization.CultureInfo Inv = System.Globalization.CultureInfo.InvariantCulture;
}
