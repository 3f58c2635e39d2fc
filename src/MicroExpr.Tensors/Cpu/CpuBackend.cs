using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace MicroExpr.Tensors.Cpu;

/// <summary>
/// The SIMD CPU backend. Element-wise maps and reductions go through System.Numerics.Tensors
/// (TensorPrimitives, which dispatches to Vector512/Vector256 at run time); GEMM, attention,
/// LayerNorm, softmax and GELU have their own SIMD kernels in this folder. Large work is split
/// over <see cref="CpuThreads.Count"/> threads.
/// </summary>
public sealed unsafe partial class CpuBackend : IBackend
{
    /// <summary>Element-wise work smaller than this runs on one thread (thread hand-off costs microseconds).</summary>
    private const int ParallelGrain = 1 << 15;

    public CpuPool Pool { get; } = new();

    public Device Device => Tensors.Device.Cpu;

    public string AcceleratorName => "cpu";

    public IOpTimer Timer { get; } = new HostOpTimer("cpu");

    /// <summary>Nothing to wait for: every call is synchronous.</summary>
    public void Synchronize() { }

    private static float* P(Storage s) => ((CpuStorage)s).Pointer;
    private static Span<float> S(Storage s) => ((CpuStorage)s).Span;
    private static Span<float> S(float* p, int n) => new(p, n);

    // --- memory ---------------------------------------------------------------------------------
    public Storage Allocate(int length, bool zero)
    {
        var s = new CpuStorage(this, Pool, Pool.Rent(length), length);
        if (zero) s.Span.Clear();
        else if (CpuPool.PoisonOnRent) s.Span.Fill(float.NaN);
        return s;
    }

    public void Upload(Storage dst, ReadOnlySpan<float> src) => src.CopyTo(S(dst));
    public void Download(Span<float> dst, Storage src) => S(src)[..dst.Length].CopyTo(dst);
    public void Fill(Storage dst, float value) => S(dst).Fill(value);

    public void CopyStrided(View dst, View src, int[] shape, CopyMode mode)
    {
        bool accumulate = mode == CopyMode.Add;
        int rank = shape.Length;
        if (rank == 0)
        {
            float* d0 = P(dst.Storage) + dst.Offset, s0 = P(src.Storage) + src.Offset;
            *d0 = accumulate ? *d0 + *s0 : *s0;
            return;
        }
        float* dp = P(dst.Storage), sp = P(src.Storage);
        int last = rank - 1, inner = shape[last];
        int ds = dst.Strides[last], ss = src.Strides[last];
        int outer = 1;
        for (int i = 0; i < last; i++) outer *= shape[i];
        int[] dStr = dst.Strides, sStr = src.Strides;
        int dOff0 = dst.Offset, sOff0 = src.Offset;
        CpuThreads.For(outer, Math.Max(1, ParallelGrain / Math.Max(inner, 1)), (start, end) =>
        {
            for (int o = start; o < end; o++)
            {
                int rem = o, dOff = dOff0, sOff = sOff0;
                for (int j = last - 1; j >= 0; j--)
                {
                    int idx = rem % shape[j];
                    rem /= shape[j];
                    dOff += idx * dStr[j];
                    sOff += idx * sStr[j];
                }
                float* d = dp + dOff, s = sp + sOff;
                if (ds == 1 && ss == 1)
                {
                    if (accumulate) TensorPrimitives.Add(S(d, inner), S(s, inner), S(d, inner));
                    else S(s, inner).CopyTo(S(d, inner));
                }
                else if (ds == 1 && ss == 0)
                {
                    if (accumulate) TensorPrimitives.Add(S(d, inner), *s, S(d, inner));
                    else S(d, inner).Fill(*s);
                }
                else if (accumulate)
                {
                    for (int i = 0; i < inner; i++) d[i * ds] += s[i * ss];
                }
                else
                {
                    for (int i = 0; i < inner; i++) d[i * ds] = s[i * ss];
                }
            }
        });
    }

    // --- element-wise ---------------------------------------------------------------------------
    public void Unary(UnaryOp op, Storage y, Storage x, int n, float alpha)
    {
        float* yp = P(y), xp = P(x);
        CpuThreads.For(n, ParallelGrain, (start, end) =>
        {
            var xs = S(xp + start, end - start);
            var ys = S(yp + start, end - start);
            switch (op)
            {
                case UnaryOp.Neg: TensorPrimitives.Negate(xs, ys); break;
                case UnaryOp.Exp: TensorPrimitives.Exp(xs, ys); break;
                case UnaryOp.Log: TensorPrimitives.Log(xs, ys); break;
                case UnaryOp.Sqrt: TensorPrimitives.Sqrt(xs, ys); break;
                case UnaryOp.Tanh: TensorPrimitives.Tanh(xs, ys); break;
                case UnaryOp.Sigmoid: TensorPrimitives.Sigmoid(xs, ys); break;
                case UnaryOp.Relu: TensorPrimitives.Max(xs, 0f, ys); break;
                case UnaryOp.Gelu: GeluSimd.Forward(yp + start, xp + start, end - start); break;
                case UnaryOp.Pow: TensorPrimitives.Pow(xs, alpha, ys); break;
                case UnaryOp.Scale: TensorPrimitives.Multiply(xs, alpha, ys); break;
                case UnaryOp.AddScalar: TensorPrimitives.Add(xs, alpha, ys); break;
                default: throw new ArgumentOutOfRangeException(nameof(op), op, null);
            }
        });
    }

    public void UnaryBackward(UnaryOp op, Storage dx, Storage x, Storage y, Storage dy, int n, float alpha)
    {
        float* dxp = P(dx), xp = P(x), yp = P(y), dyp = P(dy);
        CpuThreads.For(n, ParallelGrain, (start, end) =>
        {
            int len = end - start;
            var d = S(dxp + start, len);
            var xs = S(xp + start, len);
            var ys = S(yp + start, len);
            var g = S(dyp + start, len);
            switch (op)
            {
                case UnaryOp.Neg: TensorPrimitives.Negate(g, d); break;
                case UnaryOp.Exp: TensorPrimitives.Multiply(g, ys, d); break;
                case UnaryOp.Log: TensorPrimitives.Divide(g, xs, d); break;
                case UnaryOp.Sqrt: // dy·½/y
                    TensorPrimitives.Divide(g, ys, d);
                    TensorPrimitives.Multiply(d, 0.5f, d);
                    break;
                case UnaryOp.Tanh: // dy·(1 − y²)
                    TensorPrimitives.Multiply(ys, ys, d);
                    TensorPrimitives.Subtract(1f, d, d);
                    TensorPrimitives.Multiply(d, g, d);
                    break;
                case UnaryOp.Sigmoid: // dy·y·(1 − y)
                    TensorPrimitives.Subtract(1f, ys, d);
                    TensorPrimitives.Multiply(d, ys, d);
                    TensorPrimitives.Multiply(d, g, d);
                    break;
                case UnaryOp.Relu: ReluBackward(dxp + start, xp + start, dyp + start, len); break;
                case UnaryOp.Gelu: GeluSimd.Backward(dxp + start, xp + start, dyp + start, len); break;
                case UnaryOp.Pow: // dy·α·x^(α−1)
                    TensorPrimitives.Pow(xs, alpha - 1f, d);
                    TensorPrimitives.Multiply(d, g, d);
                    TensorPrimitives.Multiply(d, alpha, d);
                    break;
                case UnaryOp.Scale: TensorPrimitives.Multiply(g, alpha, d); break;
                case UnaryOp.AddScalar: g.CopyTo(d); break;
                default: throw new ArgumentOutOfRangeException(nameof(op), op, null);
            }
        });
    }

    /// <summary>dx = dy where x &gt; 0, else +0 (so NaN in x gives 0), by vector masks: the same values as the scalar rule.</summary>
    private static void ReluBackward(float* dx, float* x, float* dy, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= n; i += 16)
                Vector512.Store(Vector512.GreaterThan(Vector512.Load(x + i), Vector512<float>.Zero) & Vector512.Load(dy + i), dx + i);
        for (; i + 8 <= n; i += 8)
            Vector256.Store(Vector256.GreaterThan(Vector256.Load(x + i), Vector256<float>.Zero) & Vector256.Load(dy + i), dx + i);
        for (; i < n; i++) dx[i] = x[i] > 0f ? dy[i] : 0f;
    }

    public void Binary(BinaryOp op, Storage z, int[] shape, Storage a, int[] aStrides, Storage b, int[] bStrides)
    {
        float* zp = P(z), ap = P(a), bp = P(b);
        var plan = BroadcastPlan.Create(shape, aStrides, bStrides);
        int inner = plan.Inner, outer = plan.Outer;
        CpuThreads.For(outer, Math.Max(1, ParallelGrain / Math.Max(inner, 1)), (start, end) =>
        {
            for (int o = start; o < end; o++)
            {
                plan.Offsets(o, out int aOff, out int bOff);
                var zs = S(zp + (long)o * inner, inner);
                float* pa = ap + aOff, pb = bp + bOff;
                if (plan.AScalar && plan.BScalar)
                {
                    zs.Fill(Apply(op, *pa, *pb));
                }
                else if (plan.AScalar)
                {
                    var bs = S(pb, inner);
                    switch (op)
                    {
                        case BinaryOp.Add: TensorPrimitives.Add(bs, *pa, zs); break;
                        case BinaryOp.Sub: TensorPrimitives.Subtract(*pa, bs, zs); break;
                        case BinaryOp.Mul: TensorPrimitives.Multiply(bs, *pa, zs); break;
                        case BinaryOp.Div: TensorPrimitives.Divide(*pa, bs, zs); break;
                    }
                }
                else if (plan.BScalar)
                {
                    var as_ = S(pa, inner);
                    switch (op)
                    {
                        case BinaryOp.Add: TensorPrimitives.Add(as_, *pb, zs); break;
                        case BinaryOp.Sub: TensorPrimitives.Subtract(as_, *pb, zs); break;
                        case BinaryOp.Mul: TensorPrimitives.Multiply(as_, *pb, zs); break;
                        case BinaryOp.Div: TensorPrimitives.Divide(as_, *pb, zs); break;
                    }
                }
                else
                {
                    var as_ = S(pa, inner);
                    var bs = S(pb, inner);
                    switch (op)
                    {
                        case BinaryOp.Add: TensorPrimitives.Add(as_, bs, zs); break;
                        case BinaryOp.Sub: TensorPrimitives.Subtract(as_, bs, zs); break;
                        case BinaryOp.Mul: TensorPrimitives.Multiply(as_, bs, zs); break;
                        case BinaryOp.Div: TensorPrimitives.Divide(as_, bs, zs); break;
                    }
                }
            }
        });
    }

    private static float Apply(BinaryOp op, float a, float b) => op switch
    {
        BinaryOp.Add => a + b,
        BinaryOp.Sub => a - b,
        BinaryOp.Mul => a * b,
        BinaryOp.Div => a / b,
        _ => throw new ArgumentOutOfRangeException(nameof(op)),
    };

    public void Axpy(Storage y, Storage x, int n, float scale)
    {
        float* yp = P(y), xp = P(x);
        CpuThreads.For(n, ParallelGrain, (start, end) =>
        {
            var ys = S(yp + start, end - start);
            var xs = S(xp + start, end - start);
            if (scale == 1f) TensorPrimitives.Add(ys, xs, ys);
            else TensorPrimitives.MultiplyAdd(xs, scale, ys, ys);
        });
    }

    // --- reductions -----------------------------------------------------------------------------
    public void SumTo(Storage dst, int[] dstShape, Storage src, int[] srcShape)
    {
        float* dp = P(dst), sp = P(src);
        if (ColumnSums(dstShape, srcShape, out int rows, out int cols))
        {
            // Σ over leading axes into a row (a Linear bias gradient: [rows, out] → [out]): each thread sums a contiguous
            // block of rows into its own partial row (columns in registers, 64 at a time), then the partials are added
            // in thread order. The split depends only on the shape and the thread count: deterministic.
            int chunks = Math.Min(CpuThreads.Count, Math.Max(1, (int)Math.Min(rows, (long)rows * cols / ParallelGrain)));
            if (chunks <= 1)
            {
                SumRows(dp, sp, 0, rows, cols);
                return;
            }
            var partial = System.Buffers.ArrayPool<float>.Shared.Rent(chunks * cols);
            try
            {
                fixed (float* pp = partial)
                {
                    float* ppl = pp;
                    CpuThreads.For(chunks, 1, (start, end) =>
                    {
                        for (int t = start; t < end; t++)
                            SumRows(ppl + (long)t * cols, sp, (int)((long)rows * t / chunks), (int)((long)rows * (t + 1) / chunks), cols);
                    });
                    var d0 = S(dp, cols);
                    S(pp, cols).CopyTo(d0);
                    for (int t = 1; t < chunks; t++) TensorPrimitives.Add(d0, S(pp + (long)t * cols, cols), d0);
                }
            }
            finally
            {
                System.Buffers.ArrayPool<float>.Shared.Return(partial);
            }
            return;
        }
        var plan = ReducePlan.Create(dstShape, srcShape);
        var d = S(dp, dst.Length);
        d.Clear();
        // Split over the outermost kept group when it exists: each thread owns distinct dst elements.
        if (plan.Groups.Length > 0 && !plan.Groups[0].Reduced && plan.Groups.Length > 1)
        {
            var g0 = plan.Groups[0];
            CpuThreads.For(g0.Size, Math.Max(1, ParallelGrain / Math.Max(1, src.Length / g0.Size)), (start, end) =>
            {
                for (int i = start; i < end; i++)
                    plan.Run(1, dp + (long)i * g0.DstStride, sp + (long)i * g0.SrcStride);
            });
        }
        else
        {
            plan.Run(0, dp, sp);
        }
    }

    /// <summary>dst[c] = Σ_{r0 ≤ r &lt; r1} src[r·cols + c]: 64 columns at a time in four Vector512 accumulators.</summary>
    private static void SumRows(float* dst, float* src, int r0, int r1, int cols)
    {
        int c = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; c + 64 <= cols; c += 64)
            {
                Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (int r = r0; r < r1; r++)
                {
                    float* p = src + (long)r * cols + c;
                    a0 += Vector512.Load(p); a1 += Vector512.Load(p + 16); a2 += Vector512.Load(p + 32); a3 += Vector512.Load(p + 48);
                }
                a0.Store(dst + c); a1.Store(dst + c + 16); a2.Store(dst + c + 32); a3.Store(dst + c + 48);
            }
            for (; c + 16 <= cols; c += 16)
            {
                Vector512<float> a0 = default;
                for (int r = r0; r < r1; r++) a0 += Vector512.Load(src + (long)r * cols + c);
                a0.Store(dst + c);
            }
        }
        for (; c < cols; c++)
        {
            float acc = 0f;
            for (int r = r0; r < r1; r++) acc += src[(long)r * cols + c];
            dst[c] = acc;
        }
    }

    /// <summary>True when dst keeps exactly the trailing axes of src and reduces all leading ones (to 1).</summary>
    private static bool ColumnSums(int[] dstShape, int[] srcShape, out int rows, out int cols)
    {
        rows = 1;
        cols = 1;
        int i = 0;
        while (i < srcShape.Length && dstShape[i] == 1) rows *= srcShape[i++];
        for (; i < srcShape.Length; i++)
        {
            if (dstShape[i] != srcShape[i]) return false;
            cols *= srcShape[i];
        }
        return rows > 1 && cols > 1;
    }

    public void MaxAxis(Storage y, Storage argmax, Storage x, int outer, int len, int inner)
    {
        float* yp = P(y), ip = P(argmax), xp = P(x);
        for (int o = 0; o < outer; o++)
        {
            for (int i = 0; i < inner; i++)
            {
                float* col = xp + (long)o * len * inner + i;
                float best = col[0];
                int arg = 0;
                for (int j = 1; j < len; j++)
                {
                    float v = col[(long)j * inner];
                    if (v > best || float.IsNaN(v)) { best = v; arg = j; if (float.IsNaN(v)) break; }
                }
                yp[(long)o * inner + i] = best;
                ip[(long)o * inner + i] = arg;
            }
        }
    }

    public void MaxAxisBackward(Storage dx, Storage dy, Storage argmax, int outer, int len, int inner)
    {
        float* dxp = P(dx), dyp = P(dy), ip = P(argmax);
        S(dxp, outer * len * inner).Clear();
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                int j = (int)ip[(long)o * inner + i];
                dxp[((long)o * len + j) * inner + i] = dyp[(long)o * inner + i];
            }
    }

    public void IndexSelect(Storage y, Storage x, int[] indices, int outer, int len, int inner)
    {
        float* yp = P(y), xp = P(x);
        int m = indices.Length;
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < m; j++)
                S(xp + ((long)o * len + indices[j]) * inner, inner).CopyTo(S(yp + ((long)o * m + j) * inner, inner));
    }

    public void IndexAdd(Storage dx, Storage dy, int[] indices, int outer, int len, int inner)
    {
        float* dxp = P(dx), dyp = P(dy);
        int m = indices.Length;
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < m; j++)
            {
                var d = S(dxp + ((long)o * len + indices[j]) * inner, inner);
                TensorPrimitives.Add(d, S(dyp + ((long)o * m + j) * inner, inner), d);
            }
    }

    // --- dense algebra and fused ops ------------------------------------------------------------
    public void Gemm(int batch, Storage c, int cOffset, long strideC, Storage a, int aOffset, long strideA, bool transA,
        Storage b, int bOffset, long strideB, bool transB, int m, int n, int k, float alpha, float beta)
    {
        int lda = transA ? m : k, ldb = transB ? k : n;
        if (batch == 1)
            GemmSimd.Run(P(c) + cOffset, n, P(a) + aOffset, lda, transA, P(b) + bOffset, ldb, transB, m, n, k, alpha, beta,
                CpuThreads.Count);
        else
            GemmSimd.RunBatched(batch, P(c) + cOffset, strideC, n, P(a) + aOffset, strideA, lda, transA,
                P(b) + bOffset, strideB, ldb, transB, m, n, k, alpha, beta, CpuThreads.Count);
    }

    public void Linear(Storage y, Storage x, Storage w, Storage? b, Storage? residual, LinearActivation activation, int rows, int outF, int inF)
    {
        bool gelu = activation == LinearActivation.Gelu;
        if (b is null && residual is null && !gelu)
            GemmSimd.Run(P(y), outF, P(x), inF, false, P(w), inF, true, rows, outF, inF, 1f, 0f, CpuThreads.Count);
        else
            GemmSimd.RunAffine(P(y), outF, P(x), inF, false, P(w), inF, true, rows, outF, inF, 1f, 0f,
                b is null ? null : P(b), CpuThreads.Count, residual is null ? null : P(residual), outF, gelu);
    }

    public void Softmax(Storage y, Storage x, int rows, int cols)
    {
        SoftmaxSimd.Forward(P(y), P(x), rows, cols, CpuThreads.Count);
    }

    public void SoftmaxBackward(Storage dx, Storage y, Storage dy, int rows, int cols)
    {
        SoftmaxSimd.Backward(P(dx), P(y), P(dy), rows, cols, CpuThreads.Count);
    }

    public void LogSoftmax(Storage y, Storage x, int rows, int cols)
    {
        SoftmaxSimd.LogForward(P(y), P(x), rows, cols, CpuThreads.Count);
    }

    public void LogSoftmaxBackward(Storage dx, Storage y, Storage dy, int rows, int cols)
    {
        SoftmaxSimd.LogBackward(P(dx), P(y), P(dy), rows, cols, CpuThreads.Count);
    }

    public void LayerNorm(Storage y, Storage mean, Storage rstd, Storage x, Storage gamma, Storage beta, int rows, int c,
        float eps)
    {
        LayerNormSimd.Forward(P(y), P(mean), P(rstd), P(x), P(gamma), P(beta), rows, c, eps, CpuThreads.Count);
    }

    public void LayerNormBackward(Storage dx, Storage dgamma, Storage dbeta, Storage dy, Storage x, Storage mean,
        Storage rstd, Storage gamma, int rows, int c)
    {
        LayerNormSimd.Backward(P(dx), P(dgamma), P(dbeta), P(dy), P(x), P(mean), P(rstd), P(gamma), rows, c,
            CpuThreads.Count);
    }

    public void Attention(Storage o, Storage lse, Storage q, Storage k, Storage v, int bh, int nq, int nk, int d,
        float scale, in AttentionLayout layout)
    {
        CheckOperands(layout, q, k, v, o, lse, bh, nq, nk, d, "");
        AttentionSimd.Forward(P(o), P(lse), P(q), P(k), P(v), bh, nq, nk, d, scale, layout, CpuThreads.Count);
    }

    public void AttentionBackward(Storage dq, Storage dk, Storage dv, Storage q, Storage k, Storage v, Storage o,
        Storage dO, Storage lse, int bh, int nq, int nk, int d, float scale, in AttentionLayout layout)
    {
        CheckOperands(layout, q, k, v, o, lse, bh, nq, nk, d, "");
        CheckOperands(layout, dq, dk, dv, dO, lse, bh, nq, nk, d, "d");
        AttentionSimd.Backward(P(dq), P(dk), P(dv), P(q), P(k), P(v), P(o), P(dO), P(lse), bh, nq, nk, d, scale, layout,
            CpuThreads.Count);
    }

    /// <summary>q, k, v, o (names prefixed, e.g. "d" for the gradients) and lse checked against the layout.</summary>
    private static void CheckOperands(in AttentionLayout layout, Storage q, Storage k, Storage v, Storage o, Storage lse,
        int bh, int nq, int nk, int d, string prefix)
    {
        layout.Validate(bh);
        CheckReach(layout.Q, q, bh, nq, d, prefix + "q");
        CheckReach(layout.K, k, bh, nk, d, prefix + "k");
        CheckReach(layout.V, v, bh, nk, d, prefix + "v");
        CheckReach(layout.O, o, bh, nq, d, prefix == "d" ? "dO" : prefix + "o");
        CheckLse(lse, bh, nq);
    }

    /// <summary>The SIMD kernels take raw pointers: a layout that reaches past its storage is refused here.</summary>
    private static void CheckReach(in AttentionOperandLayout layout, Storage s, int bh, int n, int d, string name)
    {
        long reach = layout.Reach(bh, n, d);
        if (reach > s.Length)
            throw new ArgumentException($"attention: {name} has {s.Length} elements; its layout {layout} reaches {reach} (BH = {bh}, N = {n}, D = {d})");
    }

    private static void CheckLse(Storage lse, int bh, int nq)
    {
        if ((long)bh * nq > lse.Length)
            throw new ArgumentException($"attention: lse has {lse.Length} elements, needs BH·Nq = {(long)bh * nq}");
    }

    // --- optimizer ------------------------------------------------------------------------------
    public void AdamW(Storage p, Storage g, Storage m, Storage v, int n, float lr, float beta1, float beta2, float eps,
        float weightDecay, int step)
    {
        float* pp = P(p), gp = P(g), mp = P(m), vp = P(v);
        float c1 = 1f / (1f - MathF.Pow(beta1, step)), c2 = 1f / (1f - MathF.Pow(beta2, step));
        CpuThreads.For(n, ParallelGrain, (start, end) =>
        {
            int i = start;
            if (Vector512.IsHardwareAccelerated)
            {
                for (; i <= end - 16; i += 16)
                {
                    var gv = Vector512.Load(gp + i);
                    var mv = beta1 * Vector512.Load(mp + i) + (1f - beta1) * gv;
                    var vv = beta2 * Vector512.Load(vp + i) + (1f - beta2) * gv * gv;
                    var pv = Vector512.Load(pp + i);
                    pv -= lr * (mv * c1 / (Vector512.Sqrt(vv * c2) + Vector512.Create(eps)) + weightDecay * pv);
                    mv.Store(mp + i);
                    vv.Store(vp + i);
                    pv.Store(pp + i);
                }
            }
            for (; i < end; i++)
            {
                float gi = gp[i];
                float mi = mp[i] = beta1 * mp[i] + (1f - beta1) * gi;
                float vi = vp[i] = beta2 * vp[i] + (1f - beta2) * gi * gi;
                pp[i] -= lr * (mi * c1 / (MathF.Sqrt(vi * c2) + eps) + weightDecay * pp[i]);
            }
        });
    }

    public bool HasNonFinite(Storage x, int n)
    {
        var s = S(P(x), n);
        foreach (float f in s)
            if (!float.IsFinite(f)) return true;
        return false;
    }
}
