namespace MicroExpr.Kernels;

/// <summary>
/// Where one attention operand's rows lie in its storage: element (head h of BH = batch·heads, row r, column c &lt; D)
/// sits at <c>Offset + (h / Heads)·BatchStride + (h % Heads)·HeadStride + r·RowStride + c</c>. The D columns of a row
/// are contiguous; rows, heads and batches may be strided, so an op can read q, k, v straight out of a fused QKV
/// projection [B, N, 3, H, D] and write o as [B, N, H, D] with no copy. Contiguous [BH, N, D] is Heads = 1,
/// BatchStride = N·D, HeadStride = 0, RowStride = D. Strides are non-negative and BH is a multiple of Heads.
/// </summary>
public readonly record struct AttentionOperandLayout(int Offset, int Heads, int BatchStride, int HeadStride, int RowStride)
{
    /// <summary>Contiguous row-major [BH, n, d].</summary>
    public static AttentionOperandLayout Contiguous(int n, int d) => new(0, 1, n * d, 0, d);

    /// <summary>Index of element (h, r, 0): the start of row r of head h.</summary>
    public long RowStart(int h, int r) =>
        Offset + (long)(h / Heads) * BatchStride + (long)(h % Heads) * HeadStride + (long)r * RowStride;

    /// <summary>One past the largest index the layout reaches for BH heads of n rows of d columns (0 when empty).</summary>
    public long Reach(int bh, int n, int d) => bh < 1 || n < 1 || d < 1 ? 0 : RowStart(bh - 1, n - 1) + d;

    /// <summary>Throws unless the layout is well formed for BH heads (names the operand in the message).</summary>
    public void Validate(int bh, string operand)
    {
        if (Heads < 1 || bh % Heads != 0 || Offset < 0 || BatchStride < 0 || HeadStride < 0 || RowStride < 0)
            throw new ArgumentException($"attention: layout of {operand} {this} does not fit BH = {bh} (needs Heads ≥ 1 dividing BH, non-negative offset and strides)");
    }
}

/// <summary>
/// The layouts of the four attention operands: Q and O [BH, Nq, D], K and V [BH, Nk, D]. Backward writes dQ, dK, dV in
/// the Q, K, V layouts (in their own storages) and reads dO in the O layout; lse is always contiguous [BH, Nq].
/// </summary>
public readonly record struct AttentionLayout(AttentionOperandLayout Q, AttentionOperandLayout K, AttentionOperandLayout V,
    AttentionOperandLayout O)
{
    /// <summary>Every operand contiguous: q, o [BH, Nq, D]; k, v [BH, Nk, D].</summary>
    public static AttentionLayout Contiguous(int nq, int nk, int d) =>
        new(AttentionOperandLayout.Contiguous(nq, d), AttentionOperandLayout.Contiguous(nk, d),
            AttentionOperandLayout.Contiguous(nk, d), AttentionOperandLayout.Contiguous(nq, d));

    /// <summary>
    /// Self-attention on a fused QKV projection in timm's layout: qkv [B, N, 3·C] = [B, N, 3, H, D] with C = H·D holds
    /// q at columns [0, C), k at [C, 2C), v at [2C, 3C), head h at columns h·D of each; o is [B, N, C] = [B, N, H, D].
    /// BH = B·H, head index = b·H + h.
    /// </summary>
    public static AttentionLayout PackedQkv(int n, int heads, int d)
    {
        int c = heads * d;
        AttentionOperandLayout In(int offset) => new(offset, heads, n * 3 * c, d, 3 * c);
        return new(In(0), In(c), In(2 * c), new AttentionOperandLayout(0, heads, n * c, d, c));
    }

    /// <summary>Validates each operand's layout for BH heads.</summary>
    public void Validate(int bh)
    {
        Q.Validate(bh, "q");
        K.Validate(bh, "k");
        V.Validate(bh, "v");
        O.Validate(bh, "o");
    }
}
