namespace MicroExpr.Tensors;

/// <summary>
/// The profiling decorator: every <see cref="Device"/> puts one in front of its backend. Each primitive forwards to the
/// device's own backend; while <see cref="OpProfiler.Enabled"/> it is timed by that backend's <see cref="IBackend.Timer"/>
/// under the kind and figures of <see cref="OpCost"/> (the one place that names them), so the CPU and GPU tables compare
/// row by row. Off, a call costs one more interface call and one branch. A composite primitive (the ILGPU backend's
/// <see cref="Linear"/>: GEMM, then an element-wise epilogue) is one row, as on the CPU, whose GEMM does it all.
/// <para>A new op family adds its forwarding members in a partial file of its own (<c>ProfiledBackend.Conv.cs</c>).</para>
/// </summary>
public sealed partial class ProfiledBackend(IBackend inner) : IBackend
{
    /// <summary>The device's own backend.</summary>
    public IBackend Inner { get; } = inner;

    private readonly IOpTimer timer = inner.Timer;

    /// <summary>Starts timing a call of cost <paramref name="cost"/> when the profiler is on (<c>using (Time(...)) ...</c>).</summary>
    private OpTiming Time(in OpCost cost) => OpProfiler.Enabled ? timer.Start(cost) : default;

    public Device Device => Inner.Device;
    public string AcceleratorName => Inner.AcceleratorName;
    public IOpTimer Timer => timer;
    public void Synchronize() => Inner.Synchronize();

    // --- memory ---------------------------------------------------------------------------------
    public Storage Allocate(int length, bool zero)
    {
        if (!zero) return Inner.Allocate(length, false);
        using (Time(OpCost.Fill(length))) return Inner.Allocate(length, true);
    }

    public void Upload(Storage dst, ReadOnlySpan<float> src) => Inner.Upload(dst, src);
    public void Download(Span<float> dst, Storage src) => Inner.Download(dst, src);

    public void Fill(Storage dst, float value)
    {
        using (Time(OpCost.Fill(dst.Length))) Inner.Fill(dst, value);
    }

    public void CopyStrided(View dst, View src, int[] shape, CopyMode mode)
    {
        using (Time(OpCost.Copy(shape, mode))) Inner.CopyStrided(dst, src, shape, mode);
    }

    // --- element-wise ---------------------------------------------------------------------------
    public void Unary(UnaryOp op, Storage y, Storage x, int n, float alpha)
    {
        using (Time(OpCost.Unary(op, n))) Inner.Unary(op, y, x, n, alpha);
    }

    public void UnaryBackward(UnaryOp op, Storage dx, Storage x, Storage y, Storage dy, int n, float alpha)
    {
        using (Time(OpCost.UnaryBackward(op, n))) Inner.UnaryBackward(op, dx, x, y, dy, n, alpha);
    }

    public void Binary(BinaryOp op, Storage z, int[] shape, Storage a, int[] aStrides, Storage b, int[] bStrides)
    {
        using (Time(OpCost.Binary(op, shape, aStrides, bStrides))) Inner.Binary(op, z, shape, a, aStrides, b, bStrides);
    }

    public void Axpy(Storage y, Storage x, int n, float scale)
    {
        using (Time(OpCost.Axpy(n))) Inner.Axpy(y, x, n, scale);
    }

    // --- reductions -----------------------------------------------------------------------------
    public void SumTo(Storage dst, int[] dstShape, Storage src, int[] srcShape)
    {
        using (Time(OpCost.SumTo(srcShape, dstShape))) Inner.SumTo(dst, dstShape, src, srcShape);
    }

    public void MaxAxis(Storage y, Storage argmax, Storage x, int outer, int len, int inner)
    {
        using (Time(OpCost.MaxAxis(outer, len, inner))) Inner.MaxAxis(y, argmax, x, outer, len, inner);
    }

    public void MaxAxisBackward(Storage dx, Storage dy, Storage argmax, int outer, int len, int inner)
    {
        using (Time(OpCost.MaxAxisBackward(outer, len, inner))) Inner.MaxAxisBackward(dx, dy, argmax, outer, len, inner);
    }

    public void IndexSelect(Storage y, Storage x, int[] indices, int outer, int len, int inner)
    {
        using (Time(OpCost.IndexSelect(outer, len, indices.Length, inner))) Inner.IndexSelect(y, x, indices, outer, len, inner);
    }

    public void IndexAdd(Storage dx, Storage dy, int[] indices, int outer, int len, int inner)
    {
        using (Time(OpCost.IndexAdd(outer, len, indices.Length, inner))) Inner.IndexAdd(dx, dy, indices, outer, len, inner);
    }

    // --- dense algebra and fused ops ------------------------------------------------------------
    public void Gemm(int batch, Storage c, int cOffset, long strideC, Storage a, int aOffset, long strideA, bool transA,
        Storage b, int bOffset, long strideB, bool transB, int m, int n, int k, float alpha, float beta)
    {
        using (Time(OpCost.Gemm(batch, m, n, k, beta, transA, transB)))
            Inner.Gemm(batch, c, cOffset, strideC, a, aOffset, strideA, transA, b, bOffset, strideB, transB, m, n, k, alpha, beta);
    }

    public void Linear(Storage y, Storage x, Storage w, Storage? b, Storage? residual, LinearActivation activation, int rows, int outF, int inF)
    {
        using (Time(OpCost.Linear(rows, outF, inF, b != null, residual != null, activation))) Inner.Linear(y, x, w, b, residual, activation, rows, outF, inF);
    }

    public void Softmax(Storage y, Storage x, int rows, int cols)
    {
        using (Time(OpCost.Softmax(rows, cols))) Inner.Softmax(y, x, rows, cols);
    }

    public void SoftmaxBackward(Storage dx, Storage y, Storage dy, int rows, int cols)
    {
        using (Time(OpCost.SoftmaxBackward(rows, cols))) Inner.SoftmaxBackward(dx, y, dy, rows, cols);
    }

    public void LogSoftmax(Storage y, Storage x, int rows, int cols)
    {
        using (Time(OpCost.LogSoftmax(rows, cols))) Inner.LogSoftmax(y, x, rows, cols);
    }

    public void LogSoftmaxBackward(Storage dx, Storage y, Storage dy, int rows, int cols)
    {
        using (Time(OpCost.LogSoftmaxBackward(rows, cols))) Inner.LogSoftmaxBackward(dx, y, dy, rows, cols);
    }

    public void LayerNorm(Storage y, Storage mean, Storage rstd, Storage x, Storage gamma, Storage beta, int rows, int c, float eps)
    {
        using (Time(OpCost.LayerNorm(rows, c))) Inner.LayerNorm(y, mean, rstd, x, gamma, beta, rows, c, eps);
    }

    public void LayerNormBackward(Storage dx, Storage dgamma, Storage dbeta, Storage dy, Storage x, Storage mean, Storage rstd,
        Storage gamma, int rows, int c)
    {
        using (Time(OpCost.LayerNormBackward(rows, c))) Inner.LayerNormBackward(dx, dgamma, dbeta, dy, x, mean, rstd, gamma, rows, c);
    }

    public void Attention(Storage o, Storage lse, Storage q, Storage k, Storage v, int bh, int nq, int nk, int d, float scale,
        in AttentionLayout layout)
    {
        using (Time(OpCost.Attention(bh, nq, nk, d))) Inner.Attention(o, lse, q, k, v, bh, nq, nk, d, scale, layout);
    }

    public void AttentionBackward(Storage dq, Storage dk, Storage dv, Storage q, Storage k, Storage v, Storage o, Storage dO,
        Storage lse, int bh, int nq, int nk, int d, float scale, in AttentionLayout layout)
    {
        using (Time(OpCost.AttentionBackward(bh, nq, nk, d)))
            Inner.AttentionBackward(dq, dk, dv, q, k, v, o, dO, lse, bh, nq, nk, d, scale, layout);
    }

    // --- optimizer ------------------------------------------------------------------------------
    public void AdamW(Storage p, Storage g, Storage m, Storage v, int n, float lr, float beta1, float beta2, float eps,
        float weightDecay, int step)
    {
        using (Time(OpCost.AdamW(n))) Inner.AdamW(p, g, m, v, n, lr, beta1, beta2, eps, weightDecay, step);
    }

    public bool HasNonFinite(Storage x, int n) => Inner.HasNonFinite(x, n);
}
