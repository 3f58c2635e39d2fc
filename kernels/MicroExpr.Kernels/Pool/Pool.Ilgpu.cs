using ILGPU;
using ILGPU.Runtime;

namespace MicroExpr.Kernels;

/// <summary>
/// Pooling on an ILGPU accelerator (math in <see cref="PoolReference"/>, windows in <see cref="PoolGeometry"/>), all
/// grid-stride and deterministic without atomics:
/// <list type="bullet">
/// <item>max and average forward: one thread per output element, looping over its window;</item>
/// <item>max and average backward: one thread per input element, gathering from the outputs whose windows cover it
/// (<see cref="PoolGeometry.Covering"/>): max adds dy where the output's index is this element, average adds
/// dy/divisor; no two threads write one element, and each sums in a fixed order;</item>
/// <item>unpool (scatter by index, where indices may repeat): one thread per plane, in index order; its backward
/// (gather): one thread per element.</item>
/// </list>
/// </summary>
public sealed class PoolIlgpu
{
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, PoolGeometry> maxPool;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<int>, PoolGeometry> maxPoolBackward;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, PoolGeometry> avgPool;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, PoolGeometry> avgPoolBackward;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int> scatter;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int> gather;

    public PoolIlgpu(Accelerator accelerator, int groupSize)
    {
        GroupSize = KernelGrid.Resolve(accelerator, groupSize);
        MaxGroups = KernelGrid.MaxGroups(accelerator);
        maxPool = accelerator.LoadKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, PoolGeometry>(MaxPoolKernel);
        maxPoolBackward = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<int>, PoolGeometry>(MaxPoolBackwardKernel);
        avgPool = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, PoolGeometry>(AvgPoolKernel);
        avgPoolBackward = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, PoolGeometry>(AvgPoolBackwardKernel);
        scatter = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int>(ScatterKernel);
        gather = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int>(GatherKernel);
    }

    public int GroupSize { get; }
    public int MaxGroups { get; }

    private KernelConfig For(long n) => KernelGrid.For((int)Math.Min(n, int.MaxValue), GroupSize, MaxGroups);

    public void MaxPool(AcceleratorStream stream, ArrayView<float> y, ArrayView<int> idx, ArrayView<float> x, in PoolGeometry g)
    {
        if ((long)g.Planes * g.OutPlane > 0) maxPool(stream, For((long)g.Planes * g.OutPlane), y, idx, x, g);
    }

    /// <summary>dx [P, D, H, W] overwritten from dy and idx [P, Do, Ho, Wo].</summary>
    public void MaxPoolBackward(AcceleratorStream stream, ArrayView<float> dx, ArrayView<float> dy, ArrayView<int> idx, in PoolGeometry g)
    {
        if ((long)g.Planes * g.InPlane > 0) maxPoolBackward(stream, For((long)g.Planes * g.InPlane), dx, dy, idx, g);
    }

    public void AvgPool(AcceleratorStream stream, ArrayView<float> y, ArrayView<float> x, in PoolGeometry g)
    {
        if ((long)g.Planes * g.OutPlane > 0) avgPool(stream, For((long)g.Planes * g.OutPlane), y, x, g);
    }

    /// <summary>dx overwritten.</summary>
    public void AvgPoolBackward(AcceleratorStream stream, ArrayView<float> dx, ArrayView<float> dy, in PoolGeometry g)
    {
        if ((long)g.Planes * g.InPlane > 0) avgPoolBackward(stream, For((long)g.Planes * g.InPlane), dx, dy, g);
    }

    /// <summary>y [P, n] = 0 then y[p, idx[p, j]] = x[p, j], x, idx [P, m].</summary>
    public void Scatter(AcceleratorStream stream, ArrayView<float> y, ArrayView<float> x, ArrayView<int> idx, int planes, int m, int n)
    {
        if (planes > 0 && n > 0) scatter(stream, For(planes), y, x, idx, planes, m, n);
    }

    /// <summary>dx[p, j] = dy[p, idx[p, j]], dx, idx [P, m], dy [P, n].</summary>
    public void Gather(AcceleratorStream stream, ArrayView<float> dx, ArrayView<float> dy, ArrayView<int> idx, int planes, int m, int n)
    {
        if ((long)planes * m > 0) gather(stream, For((long)planes * m), dx, dy, idx, planes, m, n);
    }

    // --- device code ----------------------------------------------------------------------------
    internal static void MaxPoolKernel(ArrayView<float> y, ArrayView<int> idx, ArrayView<float> x, PoolGeometry g)
    {
        int total = g.Planes * g.OutPlane, stride = KernelGrid.Stride, inPlane = g.InPlane;
        for (int o = Grid.GlobalIndex.X; o < total; o += stride)
        {
            int ow = o % g.Wo, r = o / g.Wo, oh = r % g.Ho;
            r /= g.Ho;
            int od = r % g.Do, p = r / g.Do;
            int d0 = od * g.Sd - g.Pd, h0 = oh * g.Sh - g.Ph, w0 = ow * g.Sw - g.Pw;
            int d1 = Math.Min(d0 + g.Kd, g.D), h1 = Math.Min(h0 + g.Kh, g.H), w1 = Math.Min(w0 + g.Kw, g.W);
            d0 = Math.Max(d0, 0);
            h0 = Math.Max(h0, 0);
            w0 = Math.Max(w0, 0);
            int arg = (d0 * g.H + h0) * g.W + w0;
            float best = x[p * inPlane + arg];
            for (int d = d0; d < d1; d++)
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++)
                    {
                        int i = (d * g.H + h) * g.W + w;
                        float v = x[p * inPlane + i];
                        if (v > best || float.IsNaN(v))
                        {
                            best = v;
                            arg = i;
                        }
                    }
            y[o] = best;
            idx[o] = arg;
        }
    }

    internal static void MaxPoolBackwardKernel(ArrayView<float> dx, ArrayView<float> dy, ArrayView<int> idx, PoolGeometry g)
    {
        int inPlane = g.InPlane, outPlane = g.OutPlane, total = g.Planes * inPlane, stride = KernelGrid.Stride;
        for (int e = Grid.GlobalIndex.X; e < total; e += stride)
        {
            int i = e % inPlane, p = e / inPlane;
            int w = i % g.W, h = i / g.W % g.H, d = i / (g.W * g.H);
            int dlo = CoverLo(d, g.Kd, g.Sd, g.Pd), dhi = CoverHi(d, g.Do, g.Sd, g.Pd);
            int hlo = CoverLo(h, g.Kh, g.Sh, g.Ph), hhi = CoverHi(h, g.Ho, g.Sh, g.Ph);
            int wlo = CoverLo(w, g.Kw, g.Sw, g.Pw), whi = CoverHi(w, g.Wo, g.Sw, g.Pw);
            float sum = 0f;
            for (int od = dlo; od <= dhi; od++)
                for (int oh = hlo; oh <= hhi; oh++)
                    for (int ow = wlo; ow <= whi; ow++)
                    {
                        int o = p * outPlane + (od * g.Ho + oh) * g.Wo + ow;
                        if (idx[o] == i) sum += dy[o];
                    }
            dx[e] = sum;
        }
    }

    internal static void AvgPoolKernel(ArrayView<float> y, ArrayView<float> x, PoolGeometry g)
    {
        int total = g.Planes * g.OutPlane, stride = KernelGrid.Stride, inPlane = g.InPlane;
        for (int o = Grid.GlobalIndex.X; o < total; o += stride)
        {
            int ow = o % g.Wo, r = o / g.Wo, oh = r % g.Ho;
            r /= g.Ho;
            int od = r % g.Do, p = r / g.Do;
            int d0 = Start(od, g.D, g.Do, g.Sd, g.Pd, g.Adaptive), d1 = End(od, g.D, g.Do, g.Kd, g.Sd, g.Pd, g.Adaptive);
            int h0 = Start(oh, g.H, g.Ho, g.Sh, g.Ph, g.Adaptive), h1 = End(oh, g.H, g.Ho, g.Kh, g.Sh, g.Ph, g.Adaptive);
            int w0 = Start(ow, g.W, g.Wo, g.Sw, g.Pw, g.Adaptive), w1 = End(ow, g.W, g.Wo, g.Kw, g.Sw, g.Pw, g.Adaptive);
            float sum = 0f;
            for (int d = Math.Max(d0, 0); d < Math.Min(d1, g.D); d++)
                for (int h = Math.Max(h0, 0); h < Math.Min(h1, g.H); h++)
                    for (int w = Math.Max(w0, 0); w < Math.Min(w1, g.W); w++)
                        sum += x[p * inPlane + (d * g.H + h) * g.W + w];
            y[o] = sum / Divisor(d0, d1, h0, h1, w0, w1, g);
        }
    }

    internal static void AvgPoolBackwardKernel(ArrayView<float> dx, ArrayView<float> dy, PoolGeometry g)
    {
        int inPlane = g.InPlane, outPlane = g.OutPlane, total = g.Planes * inPlane, stride = KernelGrid.Stride;
        for (int e = Grid.GlobalIndex.X; e < total; e += stride)
        {
            int i = e % inPlane, p = e / inPlane;
            int w = i % g.W, h = i / g.W % g.H, d = i / (g.W * g.H);
            int dlo, dhi, hlo, hhi, wlo, whi;
            if (g.Adaptive != 0)
            {
                dlo = d * g.Do / g.D; dhi = Math.Min(((d + 1) * g.Do - 1) / g.D, g.Do - 1);
                hlo = h * g.Ho / g.H; hhi = Math.Min(((h + 1) * g.Ho - 1) / g.H, g.Ho - 1);
                wlo = w * g.Wo / g.W; whi = Math.Min(((w + 1) * g.Wo - 1) / g.W, g.Wo - 1);
            }
            else
            {
                dlo = CoverLo(d, g.Kd, g.Sd, g.Pd); dhi = CoverHi(d, g.Do, g.Sd, g.Pd);
                hlo = CoverLo(h, g.Kh, g.Sh, g.Ph); hhi = CoverHi(h, g.Ho, g.Sh, g.Ph);
                wlo = CoverLo(w, g.Kw, g.Sw, g.Pw); whi = CoverHi(w, g.Wo, g.Sw, g.Pw);
            }
            float sum = 0f;
            for (int od = dlo; od <= dhi; od++)
            {
                int d0 = Start(od, g.D, g.Do, g.Sd, g.Pd, g.Adaptive), d1 = End(od, g.D, g.Do, g.Kd, g.Sd, g.Pd, g.Adaptive);
                if (d < d0 || d >= d1) continue;
                for (int oh = hlo; oh <= hhi; oh++)
                {
                    int h0 = Start(oh, g.H, g.Ho, g.Sh, g.Ph, g.Adaptive), h1 = End(oh, g.H, g.Ho, g.Kh, g.Sh, g.Ph, g.Adaptive);
                    if (h < h0 || h >= h1) continue;
                    for (int ow = wlo; ow <= whi; ow++)
                    {
                        int w0 = Start(ow, g.W, g.Wo, g.Sw, g.Pw, g.Adaptive), w1 = End(ow, g.W, g.Wo, g.Kw, g.Sw, g.Pw, g.Adaptive);
                        if (w < w0 || w >= w1) continue;
                        sum += dy[p * outPlane + (od * g.Ho + oh) * g.Wo + ow] / Divisor(d0, d1, h0, h1, w0, w1, g);
                    }
                }
            }
            dx[e] = sum;
        }
    }

    internal static void ScatterKernel(ArrayView<float> y, ArrayView<float> x, ArrayView<int> idx, int planes, int m, int n)
    {
        int stride = KernelGrid.Stride;
        for (int p = Grid.GlobalIndex.X; p < planes; p += stride)
        {
            for (int j = 0; j < n; j++) y[p * n + j] = 0f;
            for (int j = 0; j < m; j++) y[p * n + idx[p * m + j]] = x[p * m + j];
        }
    }

    internal static void GatherKernel(ArrayView<float> dx, ArrayView<float> dy, ArrayView<int> idx, int planes, int m, int n)
    {
        int total = planes * m, stride = KernelGrid.Stride;
        for (int e = Grid.GlobalIndex.X; e < total; e += stride) dx[e] = dy[e / m * n + idx[e]];
    }

    // Window bounds along one axis, unclipped (start may be negative, end past the input: the padded window).
    private static int Start(int o, int input, int output, int s, int p, int adaptive) =>
        adaptive != 0 ? o * input / output : o * s - p;

    private static int End(int o, int input, int output, int k, int s, int p, int adaptive) =>
        adaptive != 0 ? ((o + 1) * input + output - 1) / output : Math.Min(o * s - p + k, input + p);

    private static float Divisor(int d0, int d1, int h0, int h1, int w0, int w1, PoolGeometry g)
    {
        if (g.CountIncludePad != 0 && g.Adaptive == 0) return (d1 - d0) * (h1 - h0) * (w1 - w0);
        return (Math.Min(d1, g.D) - Math.Max(d0, 0)) * (Math.Min(h1, g.H) - Math.Max(h0, 0)) * (Math.Min(w1, g.W) - Math.Max(w0, 0));
    }

    private static int CoverLo(int i, int k, int s, int p)
    {
        int a = i + p - k + 1;
        return a <= 0 ? 0 : (a + s - 1) / s;
    }

    private static int CoverHi(int i, int output, int s, int p) => Math.Min((i + p) / s, output - 1);
}
