namespace MicroExpr.Tensors;

/// <summary>The fused affine maps of Linear layers.</summary>
public sealed partial class Tensor
{
    /// <summary>
    /// y = x·Wᵀ + b over the last axis: x [..., in], W [out, in] (PyTorch layout), b [out] or null → y [..., out].
    /// One op instead of matmul + add (the backend's <see cref="IBackend.Linear"/>: the CPU folds the bias into the GEMM's
    /// tiles), so the step keeps one [rows, out] buffer instead of two and makes no pass of its own over it.
    /// Backward: dx = g·W, dW = gᵀ·x, db = Σ_rows g.
    /// </summary>
    public static Tensor Linear(Tensor x, Tensor w, Tensor? b) => AffineOp("linear", x, w, b, null, gelu: false);

    /// <summary>
    /// y = r + x·Wᵀ + b: a Linear layer whose output joins a residual stream r (shape of y), as in a pre-norm transformer
    /// block's x + proj(attn(·)). The residual is folded into the GEMM like the bias, so the block has no separate add
    /// pass and no branch output to keep. Backward: dr = g, the rest as <see cref="Linear(Tensor, Tensor, Tensor?)"/>.
    /// </summary>
    public static Tensor Linear(Tensor x, Tensor w, Tensor? b, Tensor residual) => AffineOp("linear", x, w, b, residual, gelu: false);

    /// <summary>
    /// y = GELU(h)·Wᵀ + b: the second half of a transformer MLP as one op that keeps only h. GELU(h) lives in a
    /// temporary buffer during the forward and is recomputed in the backward (dW = gᵀ·GELU(h),
    /// dh = (g·W) ∘ GELU'(h)), so the step stores one [rows, hidden] activation per block instead of two — the
    /// largest activations of the model — for one extra GELU pass.
    /// </summary>
    public static Tensor GeluLinear(Tensor h, Tensor w, Tensor? b) => AffineOp("gelu_linear", h, w, b, null, gelu: true);

    /// <summary>y = r + GELU(h)·Wᵀ + b: <see cref="GeluLinear(Tensor, Tensor, Tensor?)"/> joining a residual stream r (dr = g).</summary>
    public static Tensor GeluLinear(Tensor h, Tensor w, Tensor? b, Tensor residual) => AffineOp("gelu_linear", h, w, b, residual, gelu: true);

    /// <summary>
    /// y = GELU(x·Wᵀ + b): a transformer MLP's first half for inference, GELU applied to each GEMM tile as it is finished
    /// (no pass of its own, no pre-activation kept). The backward recomputes the pre-activation h with one more GEMM
    /// (dh = g ∘ GELU'(h), then dx = dh·W, dW = dhᵀ·x, db = Σ_rows dh): correct, but training should keep h instead,
    /// as <see cref="GeluLinear(Tensor, Tensor, Tensor?)"/> does.
    /// </summary>
    public static Tensor LinearGelu(Tensor x, Tensor w, Tensor? b)
    {
        CheckAffine("linear_gelu", x, w, b, out int rows, out int inF, out int outF);
        var be = x.Backend;
        var y = x.NewLike(x.Shape[..^1].Append(outF).ToArray());
        be.Linear(y.Storage, x.Storage, w.Storage, b?.Storage, null, LinearActivation.Gelu, rows, outF, inF);
        Tensor[] inputs = b is null ? [x, w] : [x, w, b];
        return Record(y, "linear_gelu", inputs, g =>
        {
            var h = be.Allocate(rows * outF, zero: false);
            be.Linear(h, x.Storage, w.Storage, b?.Storage, null, LinearActivation.None, rows, outF, inF);
            var dh = be.Allocate(rows * outF, zero: false);
            be.UnaryBackward(UnaryOp.Gelu, dh, h, h, g.Storage, rows * outF, 0f);
            h.Release();
            Tensor? dx = null, dw = null, db = null;
            if (x.NeedsGrad)
            {
                dx = x.NewLike(x.Shape);
                be.Gemm(1, dx.Storage, 0, 0, dh, 0, 0, false, w.Storage, 0, 0, false, rows, inF, outF, 1f, 0f);
            }
            if (w.NeedsGrad)
            {
                dw = w.NewLike(w.Shape);
                be.Gemm(1, dw.Storage, 0, 0, dh, 0, 0, true, x.Storage, 0, 0, false, outF, inF, rows, 1f, 0f);
            }
            if (b != null && b.NeedsGrad)
            {
                db = b.NewLike(b.Shape);
                be.SumTo(db.Storage, [1, outF], dh, [rows, outF]);
            }
            dh.Release();
            return b is null ? [dx, dw] : [dx, dw, db];
        });
    }

    /// <summary>The operands of an affine op: x [..., in], W [out, in], b [out] or none, all on one device.</summary>
    private static void CheckAffine(string op, Tensor x, Tensor w, Tensor? b, out int rows, out int inF, out int outF)
    {
        x.ThrowIfDisposed();
        w.ThrowIfDisposed();
        if (w.Rank != 2 || x.Rank < 1 || x.Shape[^1] != w.Shape[1])
            throw new ShapeException($"{op}: input {ShapeUtil.Format(x.Shape)} and weight {ShapeUtil.Format(w.Shape)} do not fit (expected x [..., in], W [out, in])");
        inF = w.Shape[1];
        outF = w.Shape[0];
        rows = x.Numel / Math.Max(inF, 1);
        if (b != null && (b.Rank != 1 || b.Shape[0] != outF))
            throw new ShapeException($"{op}: bias {ShapeUtil.Format(b.Shape)} does not fit weight {ShapeUtil.Format(w.Shape)} (expected [{outF}])");
        if (x.Device != w.Device || (b != null && b.Device != w.Device))
            throw new ArgumentException($"{op}: operands on different devices ({x.Device}, {w.Device})");
    }

    private static Tensor AffineOp(string op, Tensor x, Tensor w, Tensor? b, Tensor? r, bool gelu)
    {
        CheckAffine(op, x, w, b, out int rows, out int inF, out int outF);
        var be = x.Backend;
        var shape = x.Shape[..^1].Append(outF).ToArray();
        if (r != null)
        {
            r.ThrowIfDisposed();
            if (!ShapeUtil.SameShape(r.Shape, shape))
                throw new ShapeException($"{op}: residual {ShapeUtil.Format(r.Shape)} does not match the output {ShapeUtil.Format(shape)} of input {ShapeUtil.Format(x.Shape)} and weight {ShapeUtil.Format(w.Shape)}");
            if (r.Device != w.Device)
                throw new ArgumentException($"{op}: residual on {r.Device}, weight on {w.Device}");
        }
        var y = x.NewLike(shape);
        // The GEMM's A operand: x itself, or GELU(x) in a buffer that is released right after.
        Storage Activation()
        {
            if (!gelu)
            {
                x.Storage.AddRef();
                return x.Storage;
            }
            var a = be.Allocate(x.Numel, zero: false);
            be.Unary(UnaryOp.Gelu, a, x.Storage, x.Numel, 0f);
            return a;
        }
        var act = Activation();
        be.Linear(y.Storage, act, w.Storage, b?.Storage, r?.Storage, LinearActivation.None, rows, outF, inF);
        act.Release();
        var inputs = new List<Tensor> { x, w };
        if (b != null) inputs.Add(b);
        if (r != null) inputs.Add(r);
        return Record(y, op, inputs.ToArray(), g =>
        {
            Tensor? dx = null, dw = null, db = null;
            if (x.NeedsGrad)
            {
                dx = x.NewLike(x.Shape);
                if (!gelu)
                {
                    be.Gemm(1, dx.Storage, 0, 0, g.Storage, 0, 0, false, w.Storage, 0, 0, false, rows, inF, outF, 1f, 0f);
                }
                else
                {
                    var da = be.Allocate(x.Numel, zero: false);
                    be.Gemm(1, da, 0, 0, g.Storage, 0, 0, false, w.Storage, 0, 0, false, rows, inF, outF, 1f, 0f);
                    be.UnaryBackward(UnaryOp.Gelu, dx.Storage, x.Storage, x.Storage, da, x.Numel, 0f);
                    da.Release();
                }
            }
            if (w.NeedsGrad)
            {
                dw = w.NewLike(w.Shape);
                var a = Activation();
                be.Gemm(1, dw.Storage, 0, 0, g.Storage, 0, 0, true, a, 0, 0, false, outF, inF, rows, 1f, 0f);
                a.Release();
            }
            if (b != null && b.NeedsGrad)
            {
                db = b.NewLike(b.Shape);
                be.SumTo(db.Storage, [1, outF], g.Storage, [rows, outF]);
            }
            var grads = new List<Tensor?> { dx, dw };
            if (b != null) grads.Add(db);
            if (r != null) grads.Add(r.NeedsGrad ? g : null); // the residual passes the gradient through
            return grads.ToArray();
        });
    }

    /// <summary>
    /// A strided window of this tensor copied into a new contiguous tensor: y[i…] = x[offset + Σ i_j·strides_j].
    /// One copy where a permute followed by a slice would make two (e.g. q, k, v of shape [B, H, N, D] straight out
    /// of a fused QKV projection [B, N, 3·C]; <see cref="SelfAttention"/> reads them in place and needs none).
    /// The window must not read an element twice (the backward scatters).
    /// </summary>
    public Tensor AsStrided(int[] shape, int[] strides, int offset)
    {
        ThrowIfDisposed();
        if (shape.Length != strides.Length) throw new ShapeException($"as_strided: shape {ShapeUtil.Format(shape)} and strides {ShapeUtil.Format(strides)} differ in rank");
        long last = offset;
        for (int i = 0; i < shape.Length; i++)
        {
            if (shape[i] <= 0 || strides[i] < 0) throw new ShapeException($"as_strided: shape {ShapeUtil.Format(shape)} / strides {ShapeUtil.Format(strides)} must be positive / non-negative");
            last += (long)(shape[i] - 1) * strides[i];
        }
        if (offset < 0 || last >= Numel) throw new ShapeException($"as_strided: the window {ShapeUtil.Format(shape)} at offset {offset} with strides {ShapeUtil.Format(strides)} reaches past {ShapeUtil.Format(Shape)}");
        var y = NewLike((int[])shape.Clone());
        var s = (int[])strides.Clone();
        Backend.CopyStrided(new View(y.Storage, 0, ShapeUtil.Strides(shape)), new View(Storage, offset, s), y.Shape, CopyMode.Assign);
        var x = this;
        return Record(y, "as_strided", [x], g =>
        {
            var dx = Zeros(x.Shape, x.Device);
            x.Backend.CopyStrided(new View(dx.Storage, offset, s), new View(g.Storage, 0, ShapeUtil.Strides(g.Shape)), g.Shape, CopyMode.Add);
            return [dx];
        });
    }
}
