namespace MicroExpr.Kernels;

/// <summary>
/// The windows of a 3D pooling (2D is D = Do = Kd = Sd = 1, Pd = 0) over planes [P = N·C, D, H, W] → [P, Do, Ho, Wo]:
/// along each axis output o covers input [o·s − p, o·s − p + k) (clipped to the input; padding never wins a max).
/// <see cref="Adaptive"/>: adaptive average pooling instead, where o covers [⌊o·in/out⌋, ⌈(o + 1)·in/out⌉) and k, s, p
/// are unused. Plain data: the ILGPU kernels take it as an argument.
/// </summary>
public struct PoolGeometry
{
    public int Planes, D, H, W, Do, Ho, Wo, Kd, Kh, Kw, Sd, Sh, Sw, Pd, Ph, Pw;

    /// <summary>1: adaptive average windows; 0: kernel/stride/padding windows.</summary>
    public int Adaptive;

    /// <summary>Average pooling: 1 divides by the window's size with padding counted (clipped to the padded input), 0 by the
    /// number of input elements in it.</summary>
    public int CountIncludePad;

    public readonly int InPlane => D * H * W;
    public readonly int OutPlane => Do * Ho * Wo;

    /// <summary>
    /// PyTorch's output size along one axis: ⌊(in + 2p − k)/s⌋ + 1, or ⌈…⌉ + 1 in ceil mode where the last window must
    /// start inside the input or the left padding. Throws (one line) on a window that does not fit; in ceil mode, as in
    /// PyTorch, an input smaller than the kernel still gives one (clipped) window (FDP's 2×2 stride-2 average pool of a
    /// 1×1 map).
    /// </summary>
    public static int OutputSize(int input, int k, int s, int p, bool ceil, string op)
    {
        if (k < 1 || s < 1 || p < 0) throw new ArgumentException($"{op}: kernel {k}, stride {s}, padding {p}: kernel and stride must be ≥ 1, padding ≥ 0");
        if (p > k / 2) throw new ArgumentException($"{op}: padding {p} must be at most half the kernel {k}");
        int span = input + 2 * p - k;
        if (span < 0 && !(ceil && span + s - 1 >= 0)) throw new ArgumentException($"{op}: input size {input} with padding {p} is smaller than the kernel {k}");
        int o = (ceil ? (span + s - 1) / s : span / s) + 1;
        if (ceil && (o - 1) * s >= input + p) o--;
        return o;
    }

    /// <summary>Input range [start, end) of output o along an axis, clipped to the input; div = the unclipped size
    /// (count_include_pad's divisor, clipped to the padded input).</summary>
    public static void Window(int o, int input, int output, int k, int s, int p, bool adaptive, out int start, out int end, out int padded)
    {
        if (adaptive)
        {
            start = (int)((long)o * input / output);
            end = (int)(((long)(o + 1) * input + output - 1) / output);
            padded = end - start;
            return;
        }
        start = o * s - p;
        end = Math.Min(start + k, input + p);
        padded = end - start;
        start = Math.Max(start, 0);
        end = Math.Min(end, input);
    }

    /// <summary>Outputs [lo, hi] along an axis whose (kernel/stride) window contains input i (empty when lo &gt; hi).</summary>
    public static void Covering(int i, int output, int k, int s, int p, out int lo, out int hi)
    {
        int a = i + p - k + 1;
        lo = a <= 0 ? 0 : (a + s - 1) / s;
        hi = Math.Min((i + p) / s, output - 1);
    }

    /// <summary>Outputs [lo, hi] whose adaptive window may contain input i (check each with <see cref="Window"/>).</summary>
    public static void CoveringAdaptive(int i, int input, int output, out int lo, out int hi)
    {
        lo = (int)((long)i * output / input);
        hi = Math.Min((int)(((long)(i + 1) * output - 1) / input), output - 1);
    }
}
