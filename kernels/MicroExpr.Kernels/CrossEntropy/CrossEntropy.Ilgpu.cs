using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace MicroExpr.Kernels;

/// <summary>
/// Scalars of the cross-entropy kernels: N samples, C classes, label smoothing ε, 1/Σ_i w_{y_i} and Σ_c w_c.
/// </summary>
public struct CrossEntropyArgs
{
    public int N, C;
    public float Smoothing, InvNorm, WeightSum;
}

/// <summary>
/// Fused cross-entropy over logits x [N, C] with integer targets y [N] and class weights w [C] (all 1 for
/// none), PyTorch semantics: q_ic = (1−ε)·[c = y_i] + ε/C, ℓ_i = Σ_c q_ic·w_c·(lse_i − x_ic),
/// L = Σ_i ℓ_i / Σ_i w_{y_i}.
/// <list type="bullet">
/// <item>Forward v1: one thread per row (C is small: a handful of classes) writes lse[N] and ℓ[N]; then one
///   group sums ℓ with a shared-memory tree into loss[0] (deterministic).</item>
/// <item>Backward: dx_ic = dL·(W_i·p_ic − q_ic·w_c)/Σw_y with p = exp(x − lse) and W_i = Σ_c q_ic·w_c
///   = ε/C·Σw + (1−ε)·w_{y_i}; one thread per element; dL is read from device memory (no host round trip).</item>
/// </list>
/// </summary>
public sealed class LossKernels
{
    private const int MaxGroup = 1024;

    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, CrossEntropyArgs> rows;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, CrossEntropyArgs> total;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, CrossEntropyArgs> backward;

    public LossKernels(Accelerator accelerator, int groupSize = KernelGrid.DefaultGroupSize)
    {
        Accelerator = accelerator;
        GroupSize = KernelGrid.Resolve(accelerator, groupSize);
        MaxGroups = KernelGrid.MaxGroups(accelerator);
        rows = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, CrossEntropyArgs>(CrossEntropyRowsKernel);
        total = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, CrossEntropyArgs>(CrossEntropyTotalKernel);
        backward = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, CrossEntropyArgs>(CrossEntropyBackwardKernel);
    }

    public Accelerator Accelerator { get; }
    public int GroupSize { get; }

    /// <summary>Groups per launch at most; the kernels loop grid-stride over the rest.</summary>
    public int MaxGroups { get; }

    /// <summary>The scalars for targets y and weights w (null: all 1), computed on the host where they live.</summary>
    public static CrossEntropyArgs Args(int n, int c, ReadOnlySpan<int> targets, ReadOnlySpan<float> weights, float smoothing)
    {
        double norm = 0, wsum = 0;
        for (int i = 0; i < n; i++) norm += weights.IsEmpty ? 1 : weights[targets[i]];
        for (int j = 0; j < c; j++) wsum += weights.IsEmpty ? 1 : weights[j];
        return new CrossEntropyArgs { N = n, C = c, Smoothing = smoothing, InvNorm = (float)(1 / norm), WeightSum = (float)wsum };
    }

    /// <summary>loss[1] = L; rowLoss[N] = ℓ_i and lse[N] are kept for backward.</summary>
    public void Forward(AcceleratorStream stream, ArrayView<float> loss, ArrayView<float> rowLoss, ArrayView<float> lse, ArrayView<float> logits,
        ArrayView<int> targets, ArrayView<float> weights, CrossEntropyArgs a)
    {
        if (a.N == 0) return;
        rows(stream, KernelGrid.For(a.N, GroupSize, MaxGroups), rowLoss, lse, logits, targets, weights, a);
        total(stream, new KernelConfig(1, GroupSize), loss, rowLoss, a);
    }

    /// <summary>dlogits [N, C] = dL·∂L/∂x (overwritten); dLoss[0] is the incoming gradient of L.</summary>
    public void Backward(AcceleratorStream stream, ArrayView<float> dlogits, ArrayView<float> dLoss, ArrayView<float> logits, ArrayView<float> lse,
        ArrayView<int> targets, ArrayView<float> weights, CrossEntropyArgs a)
    {
        int n = a.N * a.C;
        if (n > 0) backward(stream, KernelGrid.For(n, GroupSize, MaxGroups), dlogits, dLoss, logits, lse, targets, weights, a);
    }

    internal static void CrossEntropyRowsKernel(ArrayView<float> rowLoss, ArrayView<float> lse, ArrayView<float> x, ArrayView<int> y,
        ArrayView<float> w, CrossEntropyArgs a)
    {
        int gridStride = KernelGrid.Stride;
        for (int i = Grid.GlobalIndex.X; i < a.N; i += gridStride)
        {
            int row = i * a.C;
            float max = x[row];
            for (int j = 1; j < a.C; j++) max = XMath.Max(max, x[row + j]);
            float sum = 0f;
            for (int j = 0; j < a.C; j++) sum += XMath.Exp(x[row + j] - max);
            float l = max + XMath.Log(sum);
            int t = y[i];
            float eps = a.Smoothing / a.C;
            float acc = (1f - a.Smoothing) * w[t] * (l - x[row + t]);
            for (int j = 0; j < a.C; j++) acc += eps * w[j] * (l - x[row + j]);
            lse[i] = l;
            rowLoss[i] = acc;
        }
    }

    internal static void CrossEntropyTotalKernel(ArrayView<float> loss, ArrayView<float> rowLoss, CrossEntropyArgs a)
    {
        var shared = SharedMemory.Allocate<float>(MaxGroup);
        int t = Group.IdxX, g = Group.DimX;
        float sum = 0f;
        for (int i = t; i < a.N; i += g) sum += rowLoss[i];
        shared[t] = sum;
        Group.Barrier();
        for (int s = g / 2; s > 0; s /= 2)
        {
            if (t < s) shared[t] += shared[t + s];
            Group.Barrier();
        }
        if (t == 0) loss[0] = shared[0] * a.InvNorm;
    }

    internal static void CrossEntropyBackwardKernel(ArrayView<float> dx, ArrayView<float> dLoss, ArrayView<float> x, ArrayView<float> lse,
        ArrayView<int> y, ArrayView<float> w, CrossEntropyArgs a)
    {
        int gridStride = KernelGrid.Stride;
        for (int e = Grid.GlobalIndex.X; e < a.N * a.C; e += gridStride)
        {
            int i = e / a.C, j = e % a.C;
            int t = y[i];
            float eps = a.Smoothing / a.C;
            float wy = w[t];
            float rowWeight = eps * a.WeightSum + (1f - a.Smoothing) * wy;
            float q = eps * w[j] + (j == t ? (1f - a.Smoothing) * wy : 0f);
            float p = XMath.Exp(x[e] - lse[i]);
            dx[e] = dLoss[0] * a.InvNorm * (rowWeight * p - q);
        }
    }
}
