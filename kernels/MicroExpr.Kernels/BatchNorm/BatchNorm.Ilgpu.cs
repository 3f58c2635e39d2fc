using ILGPU;
using ILGPU.Runtime;

namespace MicroExpr.Kernels;

/// <summary>
/// BatchNorm on an ILGPU accelerator (math and shapes in <see cref="BatchNormReference"/>), x [N, C, S].
/// <list type="bullet">
/// <item><see cref="StatsKernel"/>: one group per channel (grid-stride over channels); thread t sums x − K and (x − K)²
/// over elements t, t + G, … of the channel's M = N·S (K = its first element), then a shared-memory tree adds the G
/// partials in a fixed order: deterministic, no atomics. Writes mean, var (biased).</item>
/// <item><see cref="ApplyKernel"/>: element-wise, grid-stride: y = (x − mean_c)·rstd_c·γ_c + β_c.</item>
/// <item><see cref="ParamGradKernel"/>: one group per channel as the statistics: dβ = Σ dy, dγ = Σ dy·x̂, fixed-order
/// tree.</item>
/// <item><see cref="BackwardDxKernel"/>: element-wise dx from dy, x and the per-channel sums.</item>
/// </list>
/// γ and β are optional: a launch passes <c>HasGamma</c>/<c>HasBeta</c> = 0 and any view for them.
/// </summary>
public sealed class BatchNormIlgpu
{
    private const int MaxGroup = 1024;

    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormArgs> stats;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, ArrayView<float>, BatchNormArgs> apply;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, ArrayView<float>, BatchNormArgs> paramGrad;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormArgs> backwardDx;

    public BatchNormIlgpu(Accelerator accelerator, int groupSize)
    {
        GroupSize = KernelGrid.Resolve(accelerator, groupSize);
        MaxGroups = KernelGrid.MaxGroups(accelerator);
        stats = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormArgs>(StatsKernel);
        apply = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, BatchNormArgs>(ApplyKernel);
        paramGrad = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, BatchNormArgs>(ParamGradKernel);
        backwardDx = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormArgs>(BackwardDxKernel);
    }

    public int GroupSize { get; }
    public int MaxGroups { get; }

    private static BatchNormArgs Args(int n, int c, int s, float eps, bool hasGamma, bool hasBeta, bool training) =>
        new() { N = n, C = c, S = s, Eps = eps, HasGamma = hasGamma ? 1 : 0, HasBeta = hasBeta ? 1 : 0, Training = training ? 1 : 0 };

    private KernelConfig PerChannel(int c) => new(Math.Max(1, Math.Min(c, MaxGroups * 8)), GroupSize);

    /// <summary>Training forward: mean, var [C] and y [N, C, S]; gamma/beta null for none.</summary>
    public void TrainForward(AcceleratorStream stream, ArrayView<float> y, ArrayView<float> mean, ArrayView<float> var, ArrayView<float> x,
        ArrayView<float>? gamma, ArrayView<float>? beta, int n, int c, int s, float eps)
    {
        if (n * c * s == 0) return;
        stats(stream, PerChannel(c), mean, var, x, Args(n, c, s, eps, false, false, true));
        Apply(stream, y, x, mean, var, gamma, beta, n, c, s, eps);
    }

    /// <summary>y = (x − mean)·rstd·γ + β with the given statistics.</summary>
    public void Apply(AcceleratorStream stream, ArrayView<float> y, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> var,
        ArrayView<float>? gamma, ArrayView<float>? beta, int n, int c, int s, float eps)
    {
        int total = n * c * s;
        if (total == 0) return;
        apply(stream, KernelGrid.For(total, GroupSize, MaxGroups), y, x, mean, var, gamma ?? mean, beta ?? mean,
            Args(n, c, s, eps, gamma.HasValue, beta.HasValue, true));
    }


    /// <summary>
    /// Group tree sum of two values per thread (g a power of two): s1[0], s2[0] hold the group's sums of a and b when it
    /// returns; every thread of the group must call it (it has barriers).
    /// </summary>
    private static void SumPairInGroup(ArrayView<float> s1, ArrayView<float> s2, int t, int g, float a, float b)
    {
        s1[t] = a;
        s2[t] = b;
        Group.Barrier();
        for (int h = g / 2; h > 0; h /= 2)
        {
            if (t < h)
            {
                s1[t] += s1[t + h];
                s2[t] += s2[t + h];
            }
            Group.Barrier();
        }
    }
    /// <summary>dx [N, C, S], dγ, dβ [C], overwritten.</summary>
    public void Backward(AcceleratorStream stream, ArrayView<float> dx, ArrayView<float> dgamma, ArrayView<float> dbeta, ArrayView<float> dy,
        ArrayView<float> x, ArrayView<float> mean, ArrayView<float> var, ArrayView<float>? gamma, int n, int c, int s, float eps, bool training)
    {
        int total = n * c * s;
        if (total == 0) return;
        var a = Args(n, c, s, eps, gamma.HasValue, false, training);
        paramGrad(stream, PerChannel(c), dgamma, dbeta, dy, x, mean, var, a);
        backwardDx(stream, KernelGrid.For(total, GroupSize, MaxGroups), dx, dy, x, mean, var, gamma ?? mean, dgamma, dbeta, a);
    }

    // --- device code ----------------------------------------------------------------------------
    internal static void StatsKernel(ArrayView<float> mean, ArrayView<float> var, ArrayView<float> x, BatchNormArgs a)
    {
        var s1 = SharedMemory.Allocate<float>(MaxGroup);
        var s2 = SharedMemory.Allocate<float>(MaxGroup);
        int t = Group.IdxX, g = Group.DimX, groups = Grid.DimX;
        int m = a.N * a.S;
        for (int ch = Grid.IdxX; ch < a.C; ch += groups)
        {
            float k = x[ch * a.S];
            float sum = 0f, sq = 0f;
            for (int e = t; e < m; e += g)
            {
                int b = e / a.S, i = e - b * a.S;
                float d = x[(b * a.C + ch) * a.S + i] - k;
                sum += d;
                sq += d * d;
            }
            SumPairInGroup(s1, s2, t, g, sum, sq);
            if (t == 0)
            {
                float d = s1[0] / m;
                mean[ch] = k + d;
                var[ch] = MathF.Max(0f, s2[0] / m - d * d);
            }
            Group.Barrier();
        }
    }

    internal static void ApplyKernel(ArrayView<float> y, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> var, ArrayView<float> gamma,
        ArrayView<float> beta, BatchNormArgs a)
    {
        int total = a.N * a.C * a.S, stride = KernelGrid.Stride;
        for (int e = Grid.GlobalIndex.X; e < total; e += stride)
        {
            int ch = e / a.S % a.C;
            float r = (1f / MathF.Sqrt(var[ch] + a.Eps)) * (a.HasGamma != 0 ? gamma[ch] : 1f);
            y[e] = (x[e] - mean[ch]) * r + (a.HasBeta != 0 ? beta[ch] : 0f);
        }
    }

    internal static void ParamGradKernel(ArrayView<float> dgamma, ArrayView<float> dbeta, ArrayView<float> dy, ArrayView<float> x,
        ArrayView<float> mean, ArrayView<float> var, BatchNormArgs a)
    {
        var s1 = SharedMemory.Allocate<float>(MaxGroup);
        var s2 = SharedMemory.Allocate<float>(MaxGroup);
        int t = Group.IdxX, g = Group.DimX, groups = Grid.DimX;
        int m = a.N * a.S;
        for (int ch = Grid.IdxX; ch < a.C; ch += groups)
        {
            float mu = mean[ch];
            float sum = 0f, dot = 0f;
            for (int e = t; e < m; e += g)
            {
                int b = e / a.S, i = e - b * a.S;
                int idx = (b * a.C + ch) * a.S + i;
                sum += dy[idx];
                dot += dy[idx] * (x[idx] - mu);
            }
            SumPairInGroup(s1, s2, t, g, sum, dot);
            if (t == 0)
            {
                dbeta[ch] = s1[0];
                dgamma[ch] = s2[0] * (1f / MathF.Sqrt(var[ch] + a.Eps));
            }
            Group.Barrier();
        }
    }

    internal static void BackwardDxKernel(ArrayView<float> dx, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> var,
        ArrayView<float> gamma, ArrayView<float> dgamma, ArrayView<float> dbeta, BatchNormArgs a)
    {
        int total = a.N * a.C * a.S, stride = KernelGrid.Stride;
        float m = (float)a.N * a.S;
        for (int e = Grid.GlobalIndex.X; e < total; e += stride)
        {
            int ch = e / a.S % a.C;
            float rstd = (1f / MathF.Sqrt(var[ch] + a.Eps));
            float gr = rstd * (a.HasGamma != 0 ? gamma[ch] : 1f);
            if (a.Training != 0)
            {
                float xh = (x[e] - mean[ch]) * rstd;
                dx[e] = gr * (dy[e] - dbeta[ch] / m - xh * dgamma[ch] / m);
            }
            else dx[e] = gr * dy[e];
        }
    }
}

/// <summary>Dimensions of a BatchNorm launch: x [N, C, S]; flags as 0/1 ints.</summary>
internal struct BatchNormArgs
{
    public int N, C, S, HasGamma, HasBeta, Training;
    public float Eps;
}
