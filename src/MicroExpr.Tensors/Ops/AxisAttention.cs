namespace MicroExpr.Tensors;

/// <summary>Self-attention along the leading axis of a fused QKV projection (STT's temporal attention).</summary>
public sealed partial class Tensor
{
    /// <summary>
    /// Multi-head self-attention along the <b>first</b> axis of a fused QKV projection: qkv [L, M, 3·C] with C = H·D
    /// holds q | k | v, each H heads of D columns, for M independent sequences of L tokens each (token l of sequence m at
    /// row l·M + m) → o [L, M, C]; per sequence m and head h, O = softmax(scale·Q·Kᵀ)·V over the L tokens; scale
    /// defaults to 1/√D. This is <see cref="SelfAttention"/> on qkv.Permute(1, 0, 2) with the result permuted back, without
    /// either copy: the kernels read q, k, v in place (row stride M·3C, head stride D, sequence stride 3C at column offsets
    /// 0, C, 2C) and write o with row stride M·C. STT keeps its tokens time-major [T, B·N, C], so this is its temporal
    /// attention (L = T frames, M = B·N token positions) while the spatial attention is <see cref="SelfAttention"/> on
    /// the same storage viewed as [T·B, N, 3C]. Backward writes dqkv [L, M, 3C] in the same layout (dq, dk, dv tile it
    /// exactly). Keeps qkv, o and the per-row log-sum-exp [M, H, L].
    /// </summary>
    public static Tensor SelfAttentionAcross(Tensor qkv, int heads, float? scale = null)
    {
        qkv.ThrowIfDisposed();
        if (heads < 1) throw new ShapeException($"self_attention_across: needs at least one head; got heads = {heads} for qkv {ShapeUtil.Format(qkv.Shape)}");
        if (qkv.Rank != 3 || qkv.Shape[2] == 0 || qkv.Shape[2] % (3 * heads) != 0)
            throw new ShapeException($"self_attention_across: expected qkv [L, M, 3·H·D] with H = {heads} (last axis a positive multiple of {3 * heads}); got {ShapeUtil.Format(qkv.Shape)}");
        int l = qkv.Shape[0], m = qkv.Shape[1], c = qkv.Shape[2] / 3, d = c / heads;
        if (l == 0 || m == 0)
            throw new ShapeException($"self_attention_across: qkv {ShapeUtil.Format(qkv.Shape)} has no tokens (needs L ≥ 1 and M ≥ 1)");
        return PackedAttention("self_attention_across", qkv, [l, m, c], [m, heads, l], m * heads, l, d, scale ?? 1f / MathF.Sqrt(d),
            AcrossLayout(m, heads, d));
    }

    /// <summary>
    /// The layouts of <see cref="SelfAttentionAcross"/>: head index = m·H + h; q, k, v at column offsets 0, C, 2C of
    /// qkv [L, M, 3C] (sequence stride 3C, head stride D, row stride M·3C); o [L, M, C] (sequence stride C, row stride M·C).
    /// </summary>
    public static AttentionLayout AcrossLayout(int m, int heads, int d)
    {
        int c = heads * d;
        AttentionOperandLayout In(int offset) => new(offset, heads, 3 * c, d, m * 3 * c);
        return new(In(0), In(c), In(2 * c), new AttentionOperandLayout(0, heads, c, d, m * c));
    }
}
