using ILGPU;
using ILGPU.Runtime;

namespace MicroExpr.Kernels;

/// <summary>
/// Fused LayerNorm over the last axis of x [rows, C] on an ILGPU accelerator.
/// Forward: mean_r = Σx/C, rstd_r = 1/√(Σ(x − mean_r)²/C + eps), y = (x − mean_r)·rstd_r·gamma + beta; mean, rstd [rows].
/// Backward (x̂ = (x − mean)·rstd, g = dy·gamma): dx = rstd·(g − mean_C(g) − x̂·mean_C(g·x̂)) [rows, C],
/// dgamma = Σ_rows dy·x̂, dbeta = Σ_rows dy [C]; all overwritten.
/// <para>Versions:</para>
/// <list type="bullet">
/// <item>v1 <see cref="ForwardKernel"/>: one warp per row, W rows per group; lanes stride over C; two-pass statistics
/// (mean, then Σ(x − mean)², re-reading the row, which is in cache), butterfly-shuffle sums; no barrier.</item>
/// <item>v1 <see cref="BackwardDxKernel"/>: one warp per row; the two row sums Σg and Σg·x̂ by shuffles, then dx.</item>
/// <item>v1 <see cref="ParamPartialKernel"/> + <see cref="ParamReduceKernel"/>: dgamma/dbeta without float atomics and
/// deterministically: a [⌈C/T⌉, ⌈rows/64⌉] grid where thread c of a group sums dy·x̂ and dy over one chunk of 64 rows
/// (coalesced across c) into a scratch [2, chunks, C]; then one thread per channel adds the chunks in order.</item>
/// </list>
/// One instance owns its scratch buffer: use it from one stream at a time, and dispose it with the accelerator.
/// </summary>
public sealed class LayerNormKernels : IDisposable
{
    /// <summary>Rows per partial sum of dgamma/dbeta.</summary>
    public const int RowsPerChunk = 64;

    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, ArrayView<float>, LayerNormArgs> _forward;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, ArrayView<float>, LayerNormArgs> _backwardDx;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, LayerNormArgs> _paramPartial;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, LayerNormArgs> _paramReduce;
    private readonly Scratch _scratch;

    /// <summary>Default: 4 warps (128 threads) per group.</summary>
    public LayerNormKernels(Accelerator accelerator) : this(accelerator, 4) { }

    public LayerNormKernels(Accelerator accelerator, int warpsPerGroup)
    {
        KernelChecks.GroupSize(accelerator, warpsPerGroup * KernelChecks.WarpSize, "LayerNorm");
        Accelerator = accelerator;
        WarpsPerGroup = warpsPerGroup;
        _forward = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, LayerNormArgs>(ForwardKernel);
        _backwardDx = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, LayerNormArgs>(BackwardDxKernel);
        _paramPartial = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            LayerNormArgs>(ParamPartialKernel);
        _paramReduce = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, LayerNormArgs>(ParamReduceKernel);
        _scratch = new Scratch(accelerator);
    }

    public Accelerator Accelerator { get; }

    /// <summary>Rows per group in the row kernels (one warp each); the channel kernels use the same thread count.</summary>
    public int WarpsPerGroup { get; }

    private int Threads => WarpsPerGroup * KernelChecks.WarpSize;

    public void Forward(AcceleratorStream stream, ArrayView<float> y, ArrayView<float> mean, ArrayView<float> rstd, ArrayView<float> x,
        ArrayView<float> gamma, ArrayView<float> beta, int rows, int c, float eps)
    {
        if (!CheckDims(rows, c)) return;
        long n = (long)rows * c;
        KernelChecks.Length(y, n, nameof(y), "LayerNorm");
        KernelChecks.Length(x, n, nameof(x), "LayerNorm");
        KernelChecks.Length(mean, rows, nameof(mean), "LayerNorm");
        KernelChecks.Length(rstd, rows, nameof(rstd), "LayerNorm");
        KernelChecks.Length(gamma, c, nameof(gamma), "LayerNorm");
        KernelChecks.Length(beta, c, nameof(beta), "LayerNorm");
        _forward(stream, RowConfig(rows), y, mean, rstd, x, gamma, beta, new LayerNormArgs { Rows = rows, C = c, Eps = eps });
    }

    /// <summary>dx, dgamma, dbeta overwritten.</summary>
    public void Backward(AcceleratorStream stream, ArrayView<float> dx, ArrayView<float> dgamma, ArrayView<float> dbeta, ArrayView<float> dy,
        ArrayView<float> x, ArrayView<float> mean, ArrayView<float> rstd, ArrayView<float> gamma, int rows, int c)
    {
        if (rows < 0 || c < 0) throw new ArgumentOutOfRangeException(nameof(rows), "LayerNorm: negative dimension");
        if (c == 0) return;
        KernelChecks.Length(dgamma, c, nameof(dgamma), "LayerNorm");
        KernelChecks.Length(dbeta, c, nameof(dbeta), "LayerNorm");
        long n = (long)rows * c;
        KernelChecks.Length(dx, n, nameof(dx), "LayerNorm");
        KernelChecks.Length(dy, n, nameof(dy), "LayerNorm");
        KernelChecks.Length(x, n, nameof(x), "LayerNorm");
        KernelChecks.Length(mean, rows, nameof(mean), "LayerNorm");
        KernelChecks.Length(rstd, rows, nameof(rstd), "LayerNorm");
        KernelChecks.Length(gamma, c, nameof(gamma), "LayerNorm");
        int chunks = (rows + RowsPerChunk - 1) / RowsPerChunk;
        var args = new LayerNormArgs { Rows = rows, C = c, Chunks = chunks };
        int channelGroups = (c + Threads - 1) / Threads;
        var partial = _scratch.Get(2L * chunks * c);
        if (rows > 0)
        {
            _backwardDx(stream, RowConfig(rows), dx, dy, x, mean, rstd, gamma, args);
            _paramPartial(stream, new KernelConfig(new Index2D(channelGroups, chunks), new Index2D(Threads, 1)), partial, dy, x, mean, rstd, args);
        }
        _paramReduce(stream, new KernelConfig(channelGroups, Threads), dgamma, dbeta, partial, args);
    }

    public void Dispose() => _scratch.Dispose();

    private static bool CheckDims(int rows, int c)
    {
        if (rows < 0 || c < 0) throw new ArgumentOutOfRangeException(nameof(rows), "LayerNorm: negative dimension");
        return rows > 0 && c > 0;
    }

    private KernelConfig RowConfig(int rows) => new((rows + WarpsPerGroup - 1) / WarpsPerGroup, Threads);

    /// <summary>v1 forward: warp per row of x [rows, C] → y [rows, C], mean and rstd [rows].</summary>
    internal static void ForwardKernel(ArrayView<float> y, ArrayView<float> mean, ArrayView<float> rstd, ArrayView<float> x,
        ArrayView<float> gamma, ArrayView<float> beta, LayerNormArgs p)
    {
        int row = Grid.IdxX * (Group.DimX / Warp.WarpSize) + Warp.WarpIdx;
        if (row >= p.Rows) return;
        int lane = Warp.LaneIdx;
        long start = (long)row * p.C;
        float s = 0f;
        for (int i = lane; i < p.C; i += Warp.WarpSize) s += x[start + i];
        float mu = WarpReduce.Sum(s) / p.C;
        float q = 0f;
        for (int i = lane; i < p.C; i += Warp.WarpSize)
        {
            float d = x[start + i] - mu;
            q += d * d;
        }
        float rs = 1f / MathF.Sqrt(WarpReduce.Sum(q) / p.C + p.Eps);
        for (int i = lane; i < p.C; i += Warp.WarpSize) y[start + i] = (x[start + i] - mu) * rs * gamma[i] + beta[i];
        if (lane == 0)
        {
            mean[row] = mu;
            rstd[row] = rs;
        }
    }

    /// <summary>v1 backward, dx: warp per row; dx = rstd·(g − Σg/C − x̂·Σ(g·x̂)/C) with g = dy·gamma.</summary>
    internal static void BackwardDxKernel(ArrayView<float> dx, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mean,
        ArrayView<float> rstd, ArrayView<float> gamma, LayerNormArgs p)
    {
        int row = Grid.IdxX * (Group.DimX / Warp.WarpSize) + Warp.WarpIdx;
        if (row >= p.Rows) return;
        int lane = Warp.LaneIdx;
        long start = (long)row * p.C;
        float mu = mean[row], rs = rstd[row];
        float sg = 0f, sgx = 0f;
        for (int i = lane; i < p.C; i += Warp.WarpSize)
        {
            float g = dy[start + i] * gamma[i];
            sg += g;
            sgx += g * (x[start + i] - mu) * rs;
        }
        float meanG = WarpReduce.Sum(sg) / p.C, meanGx = WarpReduce.Sum(sgx) / p.C;
        for (int i = lane; i < p.C; i += Warp.WarpSize)
        {
            float xh = (x[start + i] - mu) * rs;
            dx[start + i] = rs * (dy[start + i] * gamma[i] - meanG - xh * meanGx);
        }
    }

    /// <summary>
    /// v1 dgamma/dbeta, stage 1: group (cb, chunk), thread t owns channel c = cb·T + t and sums rows
    /// [chunk·64, chunk·64 + 64) into partial[chunk·C + c] (dgamma) and partial[(chunks + chunk)·C + c] (dbeta).
    /// </summary>
    internal static void ParamPartialKernel(ArrayView<float> partial, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mean,
        ArrayView<float> rstd, LayerNormArgs p)
    {
        int c = Grid.IdxX * Group.DimX + Group.IdxX;
        int chunk = Grid.IdxY;
        if (c >= p.C) return;
        int r0 = chunk * RowsPerChunk, r1 = Math.Min(r0 + RowsPerChunk, p.Rows);
        float dg = 0f, db = 0f;
        for (int r = r0; r < r1; r++)
        {
            long idx = (long)r * p.C + c;
            float d = dy[idx];
            dg += d * (x[idx] - mean[r]) * rstd[r];
            db += d;
        }
        partial[(long)chunk * p.C + c] = dg;
        partial[((long)p.Chunks + chunk) * p.C + c] = db;
    }

    /// <summary>v1 dgamma/dbeta, stage 2: thread per channel adds the chunk partials in a fixed order (deterministic).</summary>
    internal static void ParamReduceKernel(ArrayView<float> dgamma, ArrayView<float> dbeta, ArrayView<float> partial, LayerNormArgs p)
    {
        int c = Grid.IdxX * Group.DimX + Group.IdxX;
        if (c >= p.C) return;
        float dg = 0f, db = 0f;
        for (int k = 0; k < p.Chunks; k++)
        {
            dg += partial[(long)k * p.C + c];
            db += partial[((long)p.Chunks + k) * p.C + c];
        }
        dgamma[c] = dg;
        dbeta[c] = db;
    }
}

/// <summary>LayerNorm launch arguments.</summary>
internal struct LayerNormArgs
{
    public int Rows, C, Chunks;
    public float Eps;
}
