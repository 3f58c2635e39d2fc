namespace MicroExpr.Kernels;

/// <summary>
/// The shape of one convolution, 2-d or 3-d, in PyTorch's semantics (cross-correlation, zero padding, NCDHW / NCHW
/// row-major; a 2-d convolution is the 3-d one with D = Do = kd = 1, stride 1, padding 0, dilation 1 along depth).
/// <para>Letters: N samples (B·T frames), Cin / Cout channels in / out, G groups (Cg = Cin/G input and Coutg = Cout/G
/// output channels per group; G = Cin = Cout is depthwise), input D×H×W, kernel kd×kh×kw, stride s, padding p,
/// dilation d, output Do×Ho×Wo with Ho = ⌊(H + 2·ph − dh·(kh − 1) − 1) / sh⌋ + 1 (likewise Do, Wo).</para>
/// <para>Buffers: x [N, Cin, D, H, W], w [Cout, Cg, kd, kh, kw], b [Cout], y [N, Cout, Do, Ho, Wo]. In the GEMM view of
/// group g, W_g is [Coutg, Kg] with Kg = Cg·kd·kh·kw (row co of w is contiguous), and the im2col matrix of sample n is
/// [Kg, P] with P = Do·Ho·Wo, row k = (c, kz, ky, kx), column p = (oz, oy, ox), entry
/// x[n, g·Cg + c, oz·sd − pd + kz·dd, oy·sh − ph + ky·dh, ox·sw − pw + kx·dw] (zero outside the input), so that
/// y_ng = W_g·col_ng.</para>
/// A plain struct of ints, so the ILGPU kernels take it as an argument.
/// </summary>
public struct ConvGeometry
{
    public int N, Cin, Cout, Groups;
    public int D, H, W;
    public int Kd, Kh, Kw;
    public int Sd, Sh, Sw;
    public int Pd, Ph, Pw;
    public int Dd, Dh, Dw;
    public int Do, Ho, Wo;

    /// <summary>A 3-d convolution; throws a one-line <see cref="ArgumentException"/> naming the bad argument.</summary>
    public static ConvGeometry Create(int n, int cin, int cout, int groups, (int d, int h, int w) input,
        (int d, int h, int w) kernel, (int d, int h, int w) stride, (int d, int h, int w) padding, (int d, int h, int w) dilation)
    {
        string desc = $"input [{n}, {cin}, {input.d}, {input.h}, {input.w}], {cout} output channels, kernel {kernel}, stride {stride}, padding {padding}, dilation {dilation}, groups {groups}";
        if (n < 0 || cin < 1 || cout < 1 || input.d < 1 || input.h < 1 || input.w < 1)
            throw new ArgumentException($"conv: needs a non-negative batch, at least one channel in and out and a non-empty input; got {desc}");
        if (groups < 1 || cin % groups != 0 || cout % groups != 0)
            throw new ArgumentException($"conv: groups must divide both channel counts; got {desc}");
        if (kernel.d < 1 || kernel.h < 1 || kernel.w < 1 || stride.d < 1 || stride.h < 1 || stride.w < 1 ||
            dilation.d < 1 || dilation.h < 1 || dilation.w < 1 || padding.d < 0 || padding.h < 0 || padding.w < 0)
            throw new ArgumentException($"conv: kernel, stride and dilation must be ≥ 1 and padding ≥ 0; got {desc}");
        var g = new ConvGeometry
        {
            N = n, Cin = cin, Cout = cout, Groups = groups, D = input.d, H = input.h, W = input.w,
            Kd = kernel.d, Kh = kernel.h, Kw = kernel.w, Sd = stride.d, Sh = stride.h, Sw = stride.w,
            Pd = padding.d, Ph = padding.h, Pw = padding.w, Dd = dilation.d, Dh = dilation.h, Dw = dilation.w,
        };
        g.Do = OutSize(input.d, kernel.d, stride.d, padding.d, dilation.d);
        g.Ho = OutSize(input.h, kernel.h, stride.h, padding.h, dilation.h);
        g.Wo = OutSize(input.w, kernel.w, stride.w, padding.w, dilation.w);
        if (g.Do < 1 || g.Ho < 1 || g.Wo < 1)
            throw new ArgumentException($"conv: the (dilated) kernel is larger than the padded input, no output; got {desc}");
        return g;
    }

    /// <summary>A 2-d convolution (depth 1).</summary>
    public static ConvGeometry Create2d(int n, int cin, int cout, int groups, int h, int w, int kh, int kw, int sh, int sw,
        int ph, int pw, int dh, int dw) =>
        Create(n, cin, cout, groups, (1, h, w), (1, kh, kw), (1, sh, sw), (0, ph, pw), (1, dh, dw));

    /// <summary>⌊(size + 2·pad − dil·(k − 1) − 1) / stride⌋ + 1 (≤ 0 when the kernel does not fit).</summary>
    public static int OutSize(int size, int k, int stride, int pad, int dil)
    {
        int span = size + 2 * pad - dil * (k - 1) - 1;
        return span < 0 ? 0 : span / stride + 1;
    }

    /// <summary>Input channels per group.</summary>
    public readonly int Cg => Cin / Groups;

    /// <summary>Output channels per group.</summary>
    public readonly int Coutg => Cout / Groups;

    /// <summary>Kernel volume kd·kh·kw.</summary>
    public readonly int KVol => Kd * Kh * Kw;

    /// <summary>GEMM depth per group: Cg·kd·kh·kw.</summary>
    public readonly int Kg => Cg * Kd * Kh * Kw;

    /// <summary>Output positions per sample and channel: Do·Ho·Wo.</summary>
    public readonly int P => Do * Ho * Wo;

    /// <summary>Input positions per sample and channel: D·H·W.</summary>
    public readonly int Pin => D * H * W;

    public readonly long XLength => (long)N * Cin * Pin;
    public readonly long YLength => (long)N * Cout * P;
    public readonly long WLength => (long)Cout * Kg;

    /// <summary>1×1(×1), stride 1, padding 0: the im2col matrix is x itself, so the convolution is a plain GEMM per group.</summary>
    public readonly bool IsPointwise => Kd == 1 && Kh == 1 && Kw == 1 && Sd == 1 && Sh == 1 && Sw == 1 && Pd == 0 && Ph == 0 && Pw == 0;

    /// <summary>Multiply-adds ×2: 2·N·Cout·P·Kg (PyTorch's count, 2·N·Cout·Ho·Wo·Cin·kh·kw / G).</summary>
    public readonly double Flops => 2.0 * N * Cout * P * Kg;

    public override readonly string ToString() =>
        $"conv N={N} Cin={Cin} Cout={Cout} G={Groups} in={D}x{H}x{W} k={Kd}x{Kh}x{Kw} s={Sd}x{Sh}x{Sw} p={Pd}x{Ph}x{Pw} d={Dd}x{Dh}x{Dw} out={Do}x{Ho}x{Wo}";
}
