using MicroExpr.Kernels;

namespace MicroExpr.Tensors;

/// <summary>The convolutions (2-d and 3-d, one geometry: <see cref="ConvGeometry"/>; NCHW / NCDHW, PyTorch semantics).</summary>
public partial interface IBackend
{
    /// <summary>
    /// y [N, Cout, Do, Ho, Wo] = f(conv(x [N, Cin, D, H, W], w [Cout, Cg, kd, kh, kw]) + b [Cout]), b may be null,
    /// f = ReLU when <paramref name="relu"/> (the fused conv + BatchNorm + ReLU of inference passes folded w and b), else
    /// identity. y is overwritten.
    /// </summary>
    void Conv(Storage y, Storage x, Storage w, Storage? b, in ConvGeometry g, bool relu);

    /// <summary>dx [N, Cin, D, H, W] = the input gradient of the convolution, from dy [N, Cout, Do, Ho, Wo] and w; overwritten.</summary>
    void ConvBackwardData(Storage dx, Storage dy, Storage w, in ConvGeometry g);

    /// <summary>dw [Cout, Cg, kd, kh, kw] = Σ_n dy_n ⋆ x_n and db [Cout] = Σ_{n, positions} dy (db may be null); overwritten.</summary>
    void ConvBackwardWeight(Storage dw, Storage? db, Storage dy, Storage x, in ConvGeometry g);
}
