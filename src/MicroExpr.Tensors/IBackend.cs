namespace MicroExpr.Tensors;

/// <summary>
/// A strided view of a storage for the copy primitive: element i of a view with shape S sits at
/// <c>Offset + Σ idx_j·Strides_j</c>. A stride of 0 broadcasts.
/// </summary>
public readonly record struct View(Storage Storage, int Offset, int[] Strides);

/// <summary>
/// Everything a device must compute. Ops in <see cref="Tensor"/> are written once against this
/// interface; the SIMD CPU backend and the ILGPU backend implement it. Arguments are storages plus
/// dimensions, outputs first; no method sees a <see cref="Tensor"/>.
/// </summary>
public partial interface IBackend
{
    Device Device { get; }

    /// <summary>The name the hardware reports (a GPU's driver name; "cpu" for the SIMD CPU backend).</summary>
    string AcceleratorName { get; }

    /// <summary>The clock <see cref="ProfiledBackend"/> times this backend's calls with.</summary>
    IOpTimer Timer { get; }

    /// <summary>Waits for every queued kernel (timing and benchmarks; ops never need it). A no-op on synchronous backends.</summary>
    void Synchronize();

    // --- memory ---------------------------------------------------------------------------------
    /// <summary>A buffer of <paramref name="length"/> floats from the pool; zeroed when asked.</summary>
    Storage Allocate(int length, bool zero);
    void Upload(Storage dst, ReadOnlySpan<float> src);
    void Download(Span<float> dst, Storage src);
    void Fill(Storage dst, float value);

    /// <summary>dst[shape] = src[shape] (or +=, <see cref="CopyMode.Add"/>) through strided views: contiguous copy, permute, slice, expand, concat.</summary>
    void CopyStrided(View dst, View src, int[] shape, CopyMode mode);

    // --- element-wise ---------------------------------------------------------------------------
    void Unary(UnaryOp op, Storage y, Storage x, int n, float alpha);

    /// <summary>dx = dy · f'(x) (given x and y = f(x)); overwrites dx.</summary>
    void UnaryBackward(UnaryOp op, Storage dx, Storage x, Storage y, Storage dy, int n, float alpha);

    /// <summary>z[shape] = a ∘ b with a and b read through broadcasting strides (0 on a broadcast axis).</summary>
    void Binary(BinaryOp op, Storage z, int[] shape, Storage a, int[] aStrides, Storage b, int[] bStrides);

    /// <summary>y += scale·x over n elements (gradient accumulation, SGD-like updates).</summary>
    void Axpy(Storage y, Storage x, int n, float scale);

    // --- reductions -----------------------------------------------------------------------------
    /// <summary>dst = Σ of src over the axes where dstShape is 1 and srcShape is not (same rank).</summary>
    void SumTo(Storage dst, int[] dstShape, Storage src, int[] srcShape);

    /// <summary>Over the middle axis of [outer, len, inner]: y[outer, inner] = max, argmax stored as float.</summary>
    void MaxAxis(Storage y, Storage argmax, Storage x, int outer, int len, int inner);

    /// <summary>dx[outer, len, inner] = 0 except dx[o, argmax[o,i], i] = dy[o, i].</summary>
    void MaxAxisBackward(Storage dx, Storage dy, Storage argmax, int outer, int len, int inner);

    /// <summary>y[outer, idx.Length, inner] = x[outer, idx[j], inner].</summary>
    void IndexSelect(Storage y, Storage x, int[] indices, int outer, int len, int inner);

    /// <summary>dx[outer, len, inner] += dy[outer, idx.Length, inner] scattered at idx (dx is not cleared).</summary>
    void IndexAdd(Storage dx, Storage dy, int[] indices, int outer, int len, int inner);

    // --- dense algebra and fused ops ------------------------------------------------------------
    /// <summary>Batched row-major GEMM: C_i = alpha·op(A_i)·op(B_i) + beta·C_i, i &lt; batch (strides in elements, 0 to share).</summary>
    void Gemm(int batch, Storage c, int cOffset, long strideC, Storage a, int aOffset, long strideA, bool transA,
        Storage b, int bOffset, long strideB, bool transB, int m, int n, int k, float alpha, float beta);

    /// <summary>
    /// y[rows, outF] = f(x[rows, inF]·Wᵀ + b + r): a Linear layer's affine map, W [outF, inF] row-major, b [outF] added to
    /// every row, r [rows, outF] a residual stream added on top (b and r may each be null), f = exact GELU for
    /// <see cref="LinearActivation.Gelu"/>, else identity. One primitive so that a backend can fold bias, residual and activation
    /// into the GEMM instead of passes of their own.
    /// </summary>
    void Linear(Storage y, Storage x, Storage w, Storage? b, Storage? residual, LinearActivation activation, int rows, int outF, int inF);

    void Softmax(Storage y, Storage x, int rows, int cols);
    void SoftmaxBackward(Storage dx, Storage y, Storage dy, int rows, int cols);
    void LogSoftmax(Storage y, Storage x, int rows, int cols);
    void LogSoftmaxBackward(Storage dx, Storage y, Storage dy, int rows, int cols);

    void LayerNorm(Storage y, Storage mean, Storage rstd, Storage x, Storage gamma, Storage beta, int rows, int c, float eps);
    void LayerNormBackward(Storage dx, Storage dgamma, Storage dbeta, Storage dy, Storage x, Storage mean, Storage rstd,
        Storage gamma, int rows, int c);

    /// <summary>
    /// Fused attention: q [BH,Nq,D], k/v [BH,Nk,D] → o [BH,Nq,D], lse [BH,Nq] (contiguous), each operand read or
    /// written through its layout (<see cref="AttentionLayout.Contiguous"/> for plain contiguous buffers).
    /// </summary>
    void Attention(Storage o, Storage lse, Storage q, Storage k, Storage v, int bh, int nq, int nk, int d, float scale,
        in AttentionLayout layout);

    /// <summary>
    /// dq, dk, dv (in the Q, K, V layouts; overwritten, never accumulated: only the elements the layouts reach are
    /// written) from q, k, v, o, dO (in the O layout) and lse.
    /// </summary>
    void AttentionBackward(Storage dq, Storage dk, Storage dv, Storage q, Storage k, Storage v, Storage o, Storage dO,
        Storage lse, int bh, int nq, int nk, int d, float scale, in AttentionLayout layout);

    // --- optimizer ------------------------------------------------------------------------------
    /// <summary>
    /// One AdamW step over n elements: m = b1·m + (1-b1)·g; v = b2·v + (1-b2)·g²;
    /// p -= lr·(m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps) + wd·p).
    /// </summary>
    void AdamW(Storage p, Storage g, Storage m, Storage v, int n, float lr, float beta1, float beta2, float eps,
        float weightDecay, int step);

    /// <summary>True if any of the first n elements is NaN or ±Inf (anomaly mode).</summary>
    bool HasNonFinite(Storage x, int n);
}

/// <summary>What <see cref="IBackend.CopyStrided"/> does with the destination: overwrite it, or add into it (a gradient).</summary>
public enum CopyMode { Assign, Add }

/// <summary>The activation <see cref="IBackend.Linear"/> applies after bias and residual.</summary>
public enum LinearActivation { None, Gelu }
