namespace MicroExpr.Tensors;

/// <summary>Fused ops with hand-written backward: softmax, log-softmax, LayerNorm, multi-head attention, self-attention on packed QKV.</summary>
public sealed partial class Tensor
{
    private int Rows(out int cols)
    {
        if (Rank == 0) throw new ShapeException("softmax/layernorm: needs at least one axis");
        cols = Shape[^1];
        return cols == 0 ? 0 : Numel / cols;
    }

    /// <summary>Softmax over the last axis.</summary>
    public Tensor Softmax()
    {
        ThrowIfDisposed();
        int rows = Rows(out int cols);
        var y = NewLike(Shape);
        Backend.Softmax(y.Storage, Storage, rows, cols);
        var x = this;
        return Record(y, "softmax", [x], g =>
        {
            var dx = x.NewLike(x.Shape);
            x.Backend.SoftmaxBackward(dx.Storage, y.Storage, g.Storage, rows, cols);
            return [dx];
        });
    }

    /// <summary>Log-softmax over the last axis: x − max − log Σ exp(x − max).</summary>
    public Tensor LogSoftmax()
    {
        ThrowIfDisposed();
        int rows = Rows(out int cols);
        var y = NewLike(Shape);
        Backend.LogSoftmax(y.Storage, Storage, rows, cols);
        var x = this;
        return Record(y, "log_softmax", [x], g =>
        {
            var dx = x.NewLike(x.Shape);
            x.Backend.LogSoftmaxBackward(dx.Storage, y.Storage, g.Storage, rows, cols);
            return [dx];
        });
    }

    /// <summary>
    /// LayerNorm over the last axis C: y = (x − mean)·rstd·gamma + beta, rstd = 1/√(var + eps) with the
    /// biased variance. gamma and beta are [C]. Mean and rstd are kept for backward.
    /// </summary>
    public static Tensor LayerNorm(Tensor x, Tensor gamma, Tensor beta, float eps = 1e-5f)
    {
        x.ThrowIfDisposed();
        int rows = x.Rows(out int c);
        if (gamma.Rank != 1 || gamma.Shape[0] != c || beta.Rank != 1 || beta.Shape[0] != c)
            throw new ShapeException($"layernorm: input {ShapeUtil.Format(x.Shape)} needs gamma and beta of shape [{c}]; got {ShapeUtil.Format(gamma.Shape)} and {ShapeUtil.Format(beta.Shape)}");
        var y = x.NewLike(x.Shape);
        var mean = x.NewLike([rows]);
        var rstd = x.NewLike([rows]);
        x.Backend.LayerNorm(y.Storage, mean.Storage, rstd.Storage, x.Storage, gamma.Storage, beta.Storage, rows, c, eps);
        return Record(y, "layernorm", [x, gamma, beta, mean, rstd], g =>
        {
            var dx = x.NewLike(x.Shape);
            var dgamma = x.NewLike([c]);
            var dbeta = x.NewLike([c]);
            x.Backend.LayerNormBackward(dx.Storage, dgamma.Storage, dbeta.Storage, g.Storage, x.Storage, mean.Storage,
                rstd.Storage, gamma.Storage, rows, c);
            if (!gamma.NeedsGrad) { dgamma.Dispose(); dgamma = null; }
            if (!beta.NeedsGrad) { dbeta.Dispose(); dbeta = null; }
            return [x.NeedsGrad ? dx : DisposeNull(dx), dgamma, dbeta, null, null];
        });
    }

    private static Tensor? DisposeNull(Tensor t)
    {
        t.Dispose();
        return null;
    }

    /// <summary>
    /// Multi-head scaled-dot-product attention as one fused op: O = softmax(scale·Q·Kᵀ)·V per head.
    /// q [..., Nq, D], k and v [..., Nk, D]; leading axes (batch·heads) must agree. The N×N score matrix
    /// is never stored: forward keeps O and the per-row log-sum-exp, backward recomputes the scores.
    /// scale defaults to 1/√D.
    /// </summary>
    public static Tensor Attention(Tensor q, Tensor k, Tensor v, float? scale = null)
    {
        q.ThrowIfDisposed();
        k.ThrowIfDisposed();
        v.ThrowIfDisposed();
        string Desc() => $"q {ShapeUtil.Format(q.Shape)}, k {ShapeUtil.Format(k.Shape)}, v {ShapeUtil.Format(v.Shape)}";
        if (q.Rank < 2 || k.Rank != q.Rank || v.Rank != q.Rank)
            throw new ShapeException($"attention: q, k, v need the same rank ≥ 2; got {Desc()}");
        if (!ShapeUtil.SameShape(k.Shape, v.Shape) || !ShapeUtil.SameShape(q.Shape[..^2], k.Shape[..^2]) || q.Shape[^1] != k.Shape[^1])
            throw new ShapeException($"attention: expected q [..., Nq, D] and k = v [..., Nk, D] with equal leading axes; got {Desc()}");
        int d = q.Shape[^1], nq = q.Shape[^2], nk = k.Shape[^2];
        int bh = ShapeUtil.Numel(q.Shape[..^2]);
        float s = scale ?? 1f / MathF.Sqrt(d);
        var layout = AttentionLayout.Contiguous(nq, nk, d);
        var o = q.NewLike(q.Shape);
        var lse = q.NewLike(q.Shape[..^1]);
        q.Backend.Attention(o.Storage, lse.Storage, q.Storage, k.Storage, v.Storage, bh, nq, nk, d, s, layout);
        return Record(o, "attention", [q, k, v, lse], g =>
        {
            var dq = q.NewLike(q.Shape);
            var dk = k.NewLike(k.Shape);
            var dv = v.NewLike(v.Shape);
            q.Backend.AttentionBackward(dq.Storage, dk.Storage, dv.Storage, q.Storage, k.Storage, v.Storage, o.Storage,
                g.Storage, lse.Storage, bh, nq, nk, d, s, layout);
            return [q.NeedsGrad ? dq : DisposeNull(dq), k.NeedsGrad ? dk : DisposeNull(dk), v.NeedsGrad ? dv : DisposeNull(dv), null];
        });
    }

    /// <summary>
    /// Multi-head self-attention straight on a fused QKV projection, in timm's layout: qkv [..., N, 3·C] with C = H·D
    /// holds q | k | v, each H heads of D columns ([..., N, 3, H, D]) → o [..., N, C] ([..., N, H, D]), per head
    /// O = softmax(scale·Q·Kᵀ)·V; scale defaults to 1/√D. The same numbers as splitting q, k, v into [..., H, N, D],
    /// <see cref="Attention"/> and merging the heads back, without the copies: the kernels read q, k, v in place
    /// (row stride 3C, head stride D, batch stride N·3C at column offsets 0, C, 2C) and write o with row stride C.
    /// Backward writes dq, dk, dv straight into one dqkv [..., N, 3C] in the same layout: every element of it is
    /// written by exactly one of them, so it is neither zero-filled nor accumulated. Keeps qkv, o and the per-row
    /// log-sum-exp [..., H, N].
    /// </summary>
    public static Tensor SelfAttention(Tensor qkv, int heads, float? scale = null)
    {
        qkv.ThrowIfDisposed();
        if (heads < 1) throw new ShapeException($"self_attention: needs at least one head; got heads = {heads} for qkv {ShapeUtil.Format(qkv.Shape)}");
        if (qkv.Rank < 2 || qkv.Shape[^1] == 0 || qkv.Shape[^1] % (3 * heads) != 0)
            throw new ShapeException($"self_attention: expected qkv [..., N, 3·H·D] with H = {heads} (last axis a positive multiple of {3 * heads}); got {ShapeUtil.Format(qkv.Shape)}");
        int n = qkv.Shape[^2], c = qkv.Shape[^1] / 3, d = c / heads;
        int batch = ShapeUtil.Numel(qkv.Shape[..^2]);
        if (n == 0 || batch == 0)
            throw new ShapeException($"self_attention: qkv {ShapeUtil.Format(qkv.Shape)} has no tokens (needs N ≥ 1 and a non-empty batch)");
        return PackedAttention("self_attention", qkv, [.. qkv.Shape[..^1], c], [.. qkv.Shape[..^2], heads, n], batch * heads, n, d,
            scale ?? 1f / MathF.Sqrt(d), AttentionLayout.PackedQkv(n, heads, d));
    }

    /// <summary>
    /// Self-attention of the q, k, v that <paramref name="layout"/> reads in place out of one packed qkv (bh heads of n
    /// tokens, head dimension d) into a new o of <paramref name="oShape"/>, keeping the per-row log-sum-exp of
    /// <paramref name="lseShape"/> [.., H, n]. Backward writes dq, dk, dv into one dqkv of qkv's shape through the same
    /// layout: they tile it exactly (columns [0, C), [C, 2C), [2C, 3C) of every row), so it is neither zero-filled nor
    /// accumulated. The common part of <see cref="SelfAttention"/> and <see cref="SelfAttentionAcross"/>, which differ
    /// only in their shape checks and layouts.
    /// </summary>
    private static Tensor PackedAttention(string op, Tensor qkv, int[] oShape, int[] lseShape, int bh, int n, int d, float scale,
        AttentionLayout layout)
    {
        var o = qkv.NewLike(oShape);
        var lse = qkv.NewLike(lseShape);
        var be = qkv.Backend;
        be.Attention(o.Storage, lse.Storage, qkv.Storage, qkv.Storage, qkv.Storage, bh, n, n, d, scale, layout);
        return Record(o, op, [qkv, lse], g =>
        {
            var dqkv = qkv.NewLike(qkv.Shape);
            be.AttentionBackward(dqkv.Storage, dqkv.Storage, dqkv.Storage, qkv.Storage, qkv.Storage, qkv.Storage, o.Storage,
                g.Storage, lse.Storage, bh, n, n, d, scale, layout);
            return [dqkv, null];
        });
    }
}
