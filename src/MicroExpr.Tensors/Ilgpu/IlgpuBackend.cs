using ILGPU;
using ILGPU.Runtime;
using MicroExpr.Kernels;

namespace MicroExpr.Tensors.Ilgpu;

/// <summary>
/// The ILGPU backend: every <see cref="IBackend"/> method launches kernels from MicroExpr.Kernels on one
/// accelerator and one in-order stream. GEMM, attention, LayerNorm and softmax go through their launcher
/// classes (<see cref="GemmKernels"/>, <see cref="AttentionKernels"/>, <see cref="LayerNormKernels"/>,
/// <see cref="SoftmaxKernels"/>), the rest through the simple kernels (element-wise, copy, reduce, index,
/// optimizer). Storage offsets become sub-views.
/// <para>
/// Synchronisation: launches are queued without waiting. The host waits only where it needs data or must
/// let go of host memory: <see cref="Upload"/> (the source span may be freed when it returns),
/// <see cref="Download"/>, <see cref="HasNonFinite"/> (reads a flag), and index uploads of
/// <see cref="IndexSelect"/> / <see cref="IndexAdd"/> (ILGPU's copy from a host span synchronises). Freed
/// storages return to the pool without waiting (see <see cref="IlgpuPool"/>: one in-order stream).
/// </para>
/// <para>
/// Profiling: with <see cref="OpProfiler.Enabled"/>, the device's <see cref="ProfiledBackend"/> times every primitive
/// with this backend's <see cref="Timer"/> (<see cref="IlgpuOpTimer"/>: device events around its launches), with the
/// same kinds and <see cref="OpCost"/> figures as the CPU backend. The markers are queued; they are read, after one
/// synchronisation, only when the profile is read.
/// </para>
/// </summary>
public sealed partial class IlgpuBackend : IBackend, IDisposable
{
    private readonly Func<Device> device;
    private readonly AcceleratorStream stream;
    private readonly ElementwiseKernels elementwise;
    private readonly CopyKernels copy;
    private readonly ReduceKernels reduce;
    private readonly IndexKernels index;
    private readonly OptimizerKernels optimizer;
    private readonly MemoryBuffer1D<int, Stride1D.Dense> flag;
    private readonly IlgpuOpTimer timer;
    private GemmKernels? gemm;
    private AttentionKernels? attention;
    private LayerNormKernels? layerNorm;
    private SoftmaxKernels? softmax;
    private FusedBiasKernels? fusedBias;
    private bool disposed;

    /// <param name="accelerator">Owned by the caller (the backend never disposes it).</param>
    /// <param name="device">The device this backend runs (resolved lazily: the device is built around its backend factory).</param>
    public IlgpuBackend(Accelerator accelerator, Func<Device> device)
    {
        Accelerator = accelerator;
        this.device = device;
        stream = accelerator.CreateStream();
        Pool = new IlgpuPool(accelerator, stream);
        int group = KernelGrid.PreferredGroupSize(accelerator);
        elementwise = new ElementwiseKernels(accelerator, group);
        copy = new CopyKernels(accelerator, group);
        reduce = new ReduceKernels(accelerator, group);
        index = new IndexKernels(accelerator, group);
        optimizer = new OptimizerKernels(accelerator, group);
        flag = accelerator.Allocate1D<int>(1);
        timer = new IlgpuOpTimer(stream, () => Device.Name);
    }

    public Accelerator Accelerator { get; }
    public AcceleratorStream Stream => stream;
    public IlgpuPool Pool { get; }
    public Device Device => device();

    public string AcceleratorName => Accelerator.Name;

    public IOpTimer Timer => timer;

    /// <summary>The clock this backend's profile rows use: device events, or synchronised host clocks without markers.</summary>
    public OpClock ProfileClock => timer.Clock;

    /// <summary>Profiling markers created and not yet disposed (test aid: zero once the profile is read or reset).</summary>
    public int LiveProfilingMarkers => timer.LiveMarkers;

    /// <summary>
    /// Test aid (the counterpart of <c>CpuPool.PoisonOnRent</c>): fill every buffer handed out for an op to
    /// overwrite with NaN, so an output element an op forgets to write shows up as NaN.
    /// </summary>
    public static bool PoisonOnRent { get; set; }

    private static IlgpuStorage S(Storage s) => s as IlgpuStorage
        ?? throw new ArgumentException($"ILGPU backend: storage lives on {s.Backend.Device}, not on this device");

    private static ArrayView<float> V(Storage s) => S(s).View;

    // --- memory ---------------------------------------------------------------------------------
    public Storage Allocate(int length, bool zero)
    {
        var s = new IlgpuStorage(this, Pool, Pool.Rent(length), length);
        if (zero) elementwise.Fill(stream, s.View, length, 0f);
        else if (PoisonOnRent) elementwise.Fill(stream, s.View, length, float.NaN);
        return s;
    }

    public void Upload(Storage dst, ReadOnlySpan<float> src)
    {
        if (src.Length == 0) return;
        ArrayView1D<float, Stride1D.Dense> v = V(dst).SubView(0, src.Length);
        v.CopyFromCPU(stream, src); // synchronises: src may be freed when this returns
    }

    public void Download(Span<float> dst, Storage src)
    {
        if (dst.Length == 0) return;
        ArrayView1D<float, Stride1D.Dense> v = V(src).SubView(0, dst.Length);
        v.CopyToCPU(stream, dst); // waits for every queued kernel on the stream, then copies
    }

    public void Fill(Storage dst, float value) => elementwise.Fill(stream, V(dst), dst.Length, value);

    public void CopyStrided(View dst, View src, int[] shape, CopyMode mode)
    {
        copy.Copy(stream, S(dst.Storage).From(dst.Offset), dst.Strides, S(src.Storage).From(src.Offset), src.Strides, shape, mode == CopyMode.Add);
    }

    // --- element-wise ---------------------------------------------------------------------------
    public void Unary(UnaryOp op, Storage y, Storage x, int n, float alpha)
    {
        elementwise.Unary(stream, op, V(y), V(x), n, alpha);
    }

    public void UnaryBackward(UnaryOp op, Storage dx, Storage x, Storage y, Storage dy, int n, float alpha)
    {
        elementwise.UnaryBackward(stream, op, V(dx), V(x), V(y), V(dy), n, alpha);
    }

    public void Binary(BinaryOp op, Storage z, int[] shape, Storage a, int[] aStrides, Storage b, int[] bStrides)
    {
        elementwise.Binary(stream, op, V(z), shape, V(a), aStrides, V(b), bStrides);
    }

    public void Axpy(Storage y, Storage x, int n, float scale)
    {
        elementwise.Axpy(stream, V(y), V(x), n, scale);
    }

    // --- reductions -----------------------------------------------------------------------------
    public void SumTo(Storage dst, int[] dstShape, Storage src, int[] srcShape)
    {
        reduce.SumTo(stream, V(dst), dstShape, V(src), srcShape);
    }

    public void MaxAxis(Storage y, Storage argmax, Storage x, int outer, int len, int inner)
    {
        reduce.MaxAxis(stream, V(y), V(argmax), V(x), outer, len, inner);
    }

    public void MaxAxisBackward(Storage dx, Storage dy, Storage argmax, int outer, int len, int inner)
    {
        reduce.MaxAxisBackward(stream, V(dx), V(dy), V(argmax), outer, len, inner);
    }

    public void IndexSelect(Storage y, Storage x, int[] indices, int outer, int len, int inner)
    {
        var buffer = UploadInts(indices);
        index.IndexSelect(stream, V(y), V(x), buffer.View.SubView(0, Math.Max(indices.Length, 1)), indices.Length, outer, len, inner);
        Pool.ReturnInts(buffer);
    }

    public void IndexAdd(Storage dx, Storage dy, int[] indices, int outer, int len, int inner)
    {
        var csr = IndexKernels.BuildCsr(indices, len);
        var buffer = UploadInts(csr);
        index.IndexAdd(stream, V(dx), V(dy), buffer.View.SubView(0, csr.Length), indices.Length, outer, len, inner);
        Pool.ReturnInts(buffer);
    }

    private MemoryBuffer1D<int, Stride1D.Dense> UploadInts(int[] values)
    {
        var buffer = Pool.RentInts(values.Length);
        if (values.Length > 0) buffer.View.SubView(0, values.Length).CopyFromCPU(stream, values.AsSpan());
        return buffer;
    }

    // --- dense algebra and fused ops ------------------------------------------------------------
    public void Gemm(int batch, Storage c, int cOffset, long strideC, Storage a, int aOffset, long strideA, bool transA,
        Storage b, int bOffset, long strideB, bool transB, int m, int n, int k, float alpha, float beta)
    {
        (gemm ??= new GemmKernels(Accelerator)).Gemm(stream, S(c).From(cOffset), strideC, S(a).From(aOffset), strideA, transA,
            S(b).From(bOffset), strideB, transB, batch, m, n, k, alpha, beta);
    }

    /// <summary>
    /// Two launches at most. The transformer block's cases take the GEMM (beta = 0) and then one fused element-wise
    /// pass in place (<see cref="FusedBiasKernels"/>): y = y + b + r (proj, fc2) or y = GELU(y + b) (fc1 in inference).
    /// Bias only, or residual only: y starts as the broadcast bias or a copy of the residual and the GEMM accumulates
    /// onto it (beta = 1). Any other combination: the same, then GELU in place.
    /// </summary>
    public void Linear(Storage y, Storage x, Storage w, Storage? b, Storage? residual, LinearActivation activation, int rows, int outF, int inF)
    {
        bool gelu = activation == LinearActivation.Gelu;
        int n = rows * outF;
        if (b != null && residual != null && !gelu)
        {
            Gemm(1, y, 0, 0, x, 0, 0, false, w, 0, 0, true, rows, outF, inF, 1f, 0f);
            FusedBias.BiasResidual(stream, V(y), V(y), V(b), V(residual), rows, outF);
            return;
        }
        if (b != null && residual == null && gelu)
        {
            Gemm(1, y, 0, 0, x, 0, 0, false, w, 0, 0, true, rows, outF, inF, 1f, 0f);
            FusedBias.BiasGelu(stream, V(y), V(y), V(b), rows, outF);
            return;
        }
        if (residual != null) CopyStrided(new View(y, 0, [outF, 1]), new View(residual, 0, [outF, 1]), [rows, outF], CopyMode.Assign);
        if (b != null) CopyStrided(new View(y, 0, [outF, 1]), new View(b, 0, [0, 1]), [rows, outF], residual != null ? CopyMode.Add : CopyMode.Assign);
        Gemm(1, y, 0, 0, x, 0, 0, false, w, 0, 0, true, rows, outF, inF, 1f, b != null || residual != null ? 1f : 0f);
        if (gelu) Unary(UnaryOp.Gelu, y, y, n, 0f);
    }

    private FusedBiasKernels FusedBias => fusedBias ??= new FusedBiasKernels(Accelerator, KernelGrid.PreferredGroupSize(Accelerator));

    private SoftmaxKernels SoftmaxK => softmax ??= new SoftmaxKernels(Accelerator);

    public void Softmax(Storage y, Storage x, int rows, int cols)
    {
        SoftmaxK.Forward(stream, V(y), V(x), rows, cols);
    }

    public void SoftmaxBackward(Storage dx, Storage y, Storage dy, int rows, int cols)
    {
        SoftmaxK.Backward(stream, V(dx), V(y), V(dy), rows, cols);
    }

    public void LogSoftmax(Storage y, Storage x, int rows, int cols)
    {
        SoftmaxK.LogForward(stream, V(y), V(x), rows, cols);
    }

    public void LogSoftmaxBackward(Storage dx, Storage y, Storage dy, int rows, int cols)
    {
        SoftmaxK.LogBackward(stream, V(dx), V(y), V(dy), rows, cols);
    }

    private LayerNormKernels LayerNormK => layerNorm ??= new LayerNormKernels(Accelerator);

    public void LayerNorm(Storage y, Storage mean, Storage rstd, Storage x, Storage gamma, Storage beta, int rows, int c, float eps)
    {
        LayerNormK.Forward(stream, V(y), V(mean), V(rstd), V(x), V(gamma), V(beta), rows, c, eps);
    }

    public void LayerNormBackward(Storage dx, Storage dgamma, Storage dbeta, Storage dy, Storage x, Storage mean, Storage rstd,
        Storage gamma, int rows, int c)
    {
        LayerNormK.Backward(stream, V(dx), V(dgamma), V(dbeta), V(dy), V(x), V(mean), V(rstd), V(gamma), rows, c);
    }

    private AttentionKernels AttentionK => attention ??= new AttentionKernels(Accelerator);

    public void Attention(Storage o, Storage lse, Storage q, Storage k, Storage v, int bh, int nq, int nk, int d, float scale,
        in AttentionLayout layout)
    {
        AttentionK.Forward(stream, V(o), V(lse), V(q), V(k), V(v), bh, nq, nk, d, scale, layout);
    }

    public void AttentionBackward(Storage dq, Storage dk, Storage dv, Storage q, Storage k, Storage v, Storage o, Storage dO,
        Storage lse, int bh, int nq, int nk, int d, float scale, in AttentionLayout layout)
    {
        AttentionK.Backward(stream, V(dq), V(dk), V(dv), V(q), V(k), V(v), V(o), V(dO), V(lse), bh, nq, nk, d, scale, layout);
    }

    // --- optimizer ------------------------------------------------------------------------------
    public void AdamW(Storage p, Storage g, Storage m, Storage v, int n, float lr, float beta1, float beta2, float eps,
        float weightDecay, int step)
    {
        optimizer.AdamW(stream, V(p), V(g), V(m), V(v), n, lr, beta1, beta2, eps, weightDecay, step);
    }

    public bool HasNonFinite(Storage x, int n)
    {
        if (n == 0) return false;
        flag.View.MemSetToZero(stream);
        reduce.NonFinite(stream, flag.View, V(x), n);
        Span<int> result = stackalloc int[1];
        flag.View.CopyToCPU(stream, result);
        return result[0] != 0;
    }

    public void Synchronize() => stream.Synchronize();

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        stream.Synchronize();
        timer.Discard();
        Pool.Dispose();
        flag.Dispose();
        stream.Dispose();
    }
}
