using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace MicroExpr.Kernels;

/// <summary>
/// One LSTM cell step (PyTorch gate order i, f, g, o), B batch, H hidden:
/// gates [B, 4H] are the pre-activations x·W_ihᵀ + h·W_hhᵀ + b (two GEMMs, outside this kernel);
/// i = σ(a_i), f = σ(a_f), g = tanh(a_g), o = σ(a_o); c = f·c_prev + i·g; h = o·tanh(c).
/// <list type="bullet">
/// <item>Forward: one thread per (b, h) reads its four gates and c_prev, writes h [B, H] and c [B, H].</item>
/// <item>Backward: given dh, dc [B, H] (dc: from the next step, zeros at the last), recomputes the activations
///   from gates and c, and writes dgates [B, 4H] and dc_prev [B, H]:
///   dc_t = dc + dh·o·(1 − tanh²c); da_o = dh·tanh c·o(1−o); da_i = dc_t·g·i(1−i); da_f = dc_t·c_prev·f(1−f);
///   da_g = dc_t·i·(1−g²); dc_prev = dc_t·f.</item>
/// </list>
/// </summary>
public sealed class LstmKernels
{
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int> forward;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int> backward;

    public LstmKernels(Accelerator accelerator, int groupSize = KernelGrid.DefaultGroupSize)
    {
        Accelerator = accelerator;
        GroupSize = KernelGrid.Resolve(accelerator, groupSize);
        MaxGroups = KernelGrid.MaxGroups(accelerator);
        forward = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(CellForwardKernel);
        backward = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(CellBackwardKernel);
    }

    public Accelerator Accelerator { get; }
    public int GroupSize { get; }

    /// <summary>Groups per launch at most; the kernels loop grid-stride over the rest.</summary>
    public int MaxGroups { get; }

    /// <summary>h, c [B, H] from gates [B, 4H] and cPrev [B, H].</summary>
    public void CellForward(AcceleratorStream stream, ArrayView<float> h, ArrayView<float> c, ArrayView<float> gates, ArrayView<float> cPrev,
        int batch, int hidden)
    {
        int n = batch * hidden;
        if (n > 0) forward(stream, KernelGrid.For(n, GroupSize, MaxGroups), h, c, gates, cPrev, batch, hidden);
    }

    /// <summary>dgates [B, 4H] and dcPrev [B, H] (overwritten) from dh, dc [B, H], gates, cPrev and the forward's c.</summary>
    public void CellBackward(AcceleratorStream stream, ArrayView<float> dgates, ArrayView<float> dcPrev, ArrayView<float> dh, ArrayView<float> dc,
        ArrayView<float> gates, ArrayView<float> cPrev, ArrayView<float> c, int batch, int hidden)
    {
        int n = batch * hidden;
        if (n > 0) backward(stream, KernelGrid.For(n, GroupSize, MaxGroups), dgates, dcPrev, dh, dc, gates, cPrev, c, batch, hidden);
    }

    /// <summary>Element e = b·H + j of the cell: its gate pre-activations' index g0 (gate k at g0 + k·H) and the activated
    /// gates i = σ, f = σ, g = tanh, o = σ.</summary>
    private static int Gates(ArrayView<float> gates, int e, int hidden, out float i, out float f, out float g, out float o)
    {
        int b = e / hidden, j = e % hidden;
        int g0 = b * 4 * hidden + j;
        i = ElementwiseKernels.Sigmoid(gates[g0]);
        f = ElementwiseKernels.Sigmoid(gates[g0 + hidden]);
        g = XMath.Tanh(gates[g0 + 2 * hidden]);
        o = ElementwiseKernels.Sigmoid(gates[g0 + 3 * hidden]);
        return g0;
    }

    internal static void CellForwardKernel(ArrayView<float> h, ArrayView<float> c, ArrayView<float> gates, ArrayView<float> cPrev, int batch,
        int hidden)
    {
        int gridStride = KernelGrid.Stride;
        for (int e = Grid.GlobalIndex.X; e < batch * hidden; e += gridStride)
        {
            int g0 = Gates(gates, e, hidden, out float i, out float f, out float g, out float o);
            float ct = f * cPrev[e] + i * g;
            c[e] = ct;
            h[e] = o * XMath.Tanh(ct);
        }
    }

    internal static void CellBackwardKernel(ArrayView<float> dgates, ArrayView<float> dcPrev, ArrayView<float> dh, ArrayView<float> dc,
        ArrayView<float> gates, ArrayView<float> cPrev, ArrayView<float> c, int batch, int hidden)
    {
        int gridStride = KernelGrid.Stride;
        for (int e = Grid.GlobalIndex.X; e < batch * hidden; e += gridStride)
        {
            int g0 = Gates(gates, e, hidden, out float i, out float f, out float g, out float o);
            float tc = XMath.Tanh(c[e]);
            float gh = dh[e];
            float dct = dc[e] + gh * o * (1f - tc * tc);
            dgates[g0] = dct * g * i * (1f - i);
            dgates[g0 + hidden] = dct * cPrev[e] * f * (1f - f);
            dgates[g0 + 2 * hidden] = dct * i * (1f - g * g);
            dgates[g0 + 3 * hidden] = gh * tc * o * (1f - o);
            dcPrev[e] = dct * f;
        }
    }
}
