using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace MicroExpr.Kernels;

/// <summary>Scalars of one AdamW step; C1 = 1/(1 − β1^t), C2 = 1/(1 − β2^t) are computed on the host.</summary>
public struct AdamWArgs
{
    public int N;
    public float Lr, Beta1, Beta2, Eps, WeightDecay, C1, C2;
}

/// <summary>
/// AdamW (decoupled weight decay), one thread per parameter element, in place on p, m, v:
/// m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²; p −= lr·(m·C1 / (√(v·C2) + ε) + wd·p).
/// The same expression order as the SIMD CPU backend, so both round alike.
/// </summary>
public sealed class OptimizerKernels
{
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamWArgs> adamW;

    public OptimizerKernels(Accelerator accelerator, int groupSize = KernelGrid.DefaultGroupSize)
    {
        Accelerator = accelerator;
        GroupSize = KernelGrid.Resolve(accelerator, groupSize);
        MaxGroups = KernelGrid.MaxGroups(accelerator);
        adamW = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamWArgs>(AdamWKernel);
    }

    public Accelerator Accelerator { get; }
    public int GroupSize { get; }

    /// <summary>Groups per launch at most; the kernels loop grid-stride over the rest.</summary>
    public int MaxGroups { get; }

    /// <summary>One step over n elements of p [n] with gradient g [n] and moments m, v [n] (step t ≥ 1).</summary>
    public void AdamW(AcceleratorStream stream, ArrayView<float> p, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v, int n, float lr,
        float beta1, float beta2, float eps, float weightDecay, int step)
    {
        if (n <= 0) return;
        var a = new AdamWArgs
        {
            N = n, Lr = lr, Beta1 = beta1, Beta2 = beta2, Eps = eps, WeightDecay = weightDecay,
            C1 = 1f / (1f - MathF.Pow(beta1, step)), C2 = 1f / (1f - MathF.Pow(beta2, step)),
        };
        adamW(stream, KernelGrid.For(n, GroupSize, MaxGroups), p, g, m, v, a);
    }

    internal static void AdamWKernel(ArrayView<float> p, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v, AdamWArgs a)
    {
        int gridStride = KernelGrid.Stride;
        for (int i = Grid.GlobalIndex.X; i < a.N; i += gridStride)
        {
            float gi = g[i];
            float mi = a.Beta1 * m[i] + (1f - a.Beta1) * gi;
            float vi = a.Beta2 * v[i] + (1f - a.Beta2) * gi * gi;
            m[i] = mi;
            v[i] = vi;
            float pi = p[i];
            p[i] = pi - a.Lr * (mi * a.C1 / (XMath.Sqrt(vi * a.C2) + a.Eps) + a.WeightDecay * pi);
        }
    }
}
