namespace MicroExpr.Tensors;

/// <summary>
/// What one backend primitive costs, for <see cref="OpProfiler"/>: the kind (one row of the <c>--profile</c> table),
/// the FLOPs it does and the bytes it must move, reading each input and writing each output once (caches can make
/// the real traffic smaller, re-reads larger). Every backend times a primitive under the kind and figures made here,
/// so a CPU table and a GPU table of the same step compare row by row.
/// </summary>
/// <para><see cref="Shapes"/>: the primitive's operand shapes, set by each factory only while <see cref="OpTrace"/> records
/// (null otherwise: a profile without a trace builds no arrays).</para>
public readonly partial record struct OpCost(string Kind, double Flops, double Bytes)
{
    /// <summary>The operands' names and dims (inputs, then outputs) while <see cref="OpTrace.Enabled"/>; null otherwise.</summary>
    public OpShapes? Shapes { get; init; }

    /// <summary>Whether the factories build <see cref="Shapes"/> now.</summary>
    private static bool Traced => OpTrace.Enabled;

    private static OpShapes? Dims(string operands, int[][] inputs, int[][] outputs) => new(operands, inputs, outputs);

    private static readonly string[] UnaryKind = Enum.GetNames<UnaryOp>().Select(n => n.ToLowerInvariant()).ToArray();
    private static readonly string[] UnaryBackwardKind = UnaryKind.Select(n => n + "_backward").ToArray();
    private static readonly string[] BinaryKind = Enum.GetNames<BinaryOp>().Select(n => n.ToLowerInvariant()).ToArray();

    // --- memory ---------------------------------------------------------------------------------
    /// <summary>dst[n] = value (an explicit fill, or the zeroing of a buffer allocated with zero: true).</summary>
    public static OpCost Fill(int n) => new("fill", 0, 4.0 * n) { Shapes = Traced ? Dims("-> dst", [], [[n]]) : null };

    /// <summary>dst (=|+=) src over the shape's elements.</summary>
    public static OpCost Copy(int[] shape, CopyMode mode) =>
        new(mode == CopyMode.Add ? "copy_accumulate" : "copy", 0, 8.0 * ShapeUtil.Numel(shape)) { Shapes = Traced ? Dims("src -> dst", [[.. shape]], [[.. shape]]) : null };

    // --- element-wise ---------------------------------------------------------------------------
    /// <summary>y = f(x): one FLOP per element (transcendentals counted as one), x read, y written.</summary>
    public static OpCost Unary(UnaryOp op, int n) => new(UnaryKind[(int)op], n, 8.0 * n) { Shapes = Traced ? Dims("x -> y", [[n]], [[n]]) : null };

    /// <summary>dx = dy·f'(x): x or y and dy read, dx written.</summary>
    public static OpCost UnaryBackward(UnaryOp op, int n) =>
        new(UnaryBackwardKind[(int)op], 2.0 * n, 16.0 * n) { Shapes = Traced ? Dims("x or y, dy -> dx", [[n], [n]], [[n]]) : null };

    /// <summary>z[shape] = a ∘ b: one FLOP per output, a and b counted at the output's size (broadcasts included). An
    /// operand's shape in the trace is the output's with 1 on every broadcast axis (stride 0).</summary>
    public static OpCost Binary(BinaryOp op, int[] shape, int[] aStrides, int[] bStrides)
    {
        int zn = ShapeUtil.Numel(shape);
        return new(BinaryKind[(int)op], zn, 12.0 * zn) { Shapes = Traced ? Dims("a, b -> z", [Broadcast(shape, aStrides), Broadcast(shape, bStrides)], [[.. shape]]) : null };
    }

    private static int[] Broadcast(int[] shape, int[] strides) => shape.Select((s, i) => i < strides.Length && strides[i] == 0 ? 1 : s).ToArray();

    /// <summary>y += scale·x.</summary>
    public static OpCost Axpy(int n) => new("axpy", 2.0 * n, 12.0 * n) { Shapes = Traced ? Dims("y, x -> y", [[n], [n]], [[n]]) : null };

    // --- reductions -----------------------------------------------------------------------------
    /// <summary>dst = Σ src over the reduced axes: one add per source element.</summary>
    public static OpCost SumTo(int[] srcShape, int[] dstShape)
    {
        int srcLength = ShapeUtil.Numel(srcShape), dstLength = ShapeUtil.Numel(dstShape);
        return new("sum_to", srcLength, 4.0 * (srcLength + dstLength)) { Shapes = Traced ? Dims("src -> dst", [[.. srcShape]], [[.. dstShape]]) : null };
    }

    /// <summary>Max and arg-max over the middle axis of [outer, len, inner].</summary>
    public static OpCost MaxAxis(int outer, int len, int inner) =>
        new("max", (double)outer * len * inner, 4.0 * outer * inner * (len + 2)) { Shapes = Traced ? Dims("x -> y, argmax", [[outer, len, inner]], [[outer, inner], [outer, inner]]) : null };

    /// <summary>dx[outer, len, inner] written in full; dy and the arg-max [outer, inner] read.</summary>
    public static OpCost MaxAxisBackward(int outer, int len, int inner) =>
        new("max_backward", 0, 4.0 * outer * inner * (len + 2)) { Shapes = Traced ? Dims("dy, argmax -> dx", [[outer, inner], [outer, inner]], [[outer, len, inner]]) : null };

    /// <summary>y[outer, m, inner] = x[outer, idx[j], inner], x [outer, len, inner].</summary>
    public static OpCost IndexSelect(int outer, int len, int m, int inner) =>
        new("index_select", 0, 8.0 * outer * m * inner) { Shapes = Traced ? Dims("x, idx -> y", [[outer, len, inner], [m]], [[outer, m, inner]]) : null };

    /// <summary>dx[outer, idx[j], inner] += dy[outer, j, inner], dx [outer, len, inner].</summary>
    public static OpCost IndexAdd(int outer, int len, int m, int inner) =>
        new("index_add", (double)outer * m * inner, 12.0 * outer * m * inner) { Shapes = Traced ? Dims("dy, idx -> dx", [[outer, m, inner], [m]], [[outer, len, inner]]) : null };

    // --- dense algebra and fused ops ------------------------------------------------------------
    /// <summary>y[R, C] = x + b + r in one element-wise pass (the ILGPU Linear's epilogue): x, r read, y written.</summary>
    public static OpCost BiasResidual(int rows, int c) =>
        new("bias_residual", 2.0 * rows * c, 12.0 * rows * c) { Shapes = Traced ? Dims("x, b, r -> y", [[rows, c], [c], [rows, c]], [[rows, c]]) : null };

    /// <summary>y[R, C] = GELU(x + b) in one element-wise pass: x read, y written (GELU counted as one FLOP).</summary>
    public static OpCost BiasGelu(int rows, int c) =>
        new("bias_gelu", 2.0 * rows * c, 8.0 * rows * c) { Shapes = Traced ? Dims("x, b -> y", [[rows, c], [c]], [[rows, c]]) : null };

    /// <summary>
    /// y = f(x·Wᵀ + b (+ r)), one GEMM with bias, residual and GELU folded in, counted as one "gemm" row on every backend
    /// (the CPU runs it as one call; the ILGPU backend's GEMM and epilogue launches are timed together):
    /// 2·rows·out·in FLOPs (+ one per output for GELU); x, W and y, plus r when given (the bias row is negligible).
    /// </summary>
    public static OpCost Linear(int rows, int outF, int inF, bool bias, bool residual, LinearActivation activation) =>
        new("gemm", 2.0 * rows * outF * inF + (activation == LinearActivation.Gelu ? (double)rows * outF : 0),
            4.0 * ((double)rows * inF + (double)outF * inF + (residual ? 2 : 1) * (double)rows * outF))
        { Shapes = Traced ? LinearDims(rows, outF, inF, bias, residual) : null };

    private static OpShapes LinearDims(int rows, int outF, int inF, bool bias, bool residual)
    {
        var names = new List<string> { "x", "W" };
        var dims = new List<int[]> { new[] { rows, inF }, new[] { outF, inF } };
        if (bias) { names.Add("b"); dims.Add([outF]); }
        if (residual) { names.Add("r"); dims.Add([rows, outF]); }
        return new($"{string.Join(", ", names)} -> y", [.. dims], [[rows, outF]]);
    }

    /// <summary>C = alpha·op(A)·op(B) + beta·C, batch times: 2·M·N·K FLOPs each; C read too when beta ≠ 0. The trace's A is
    /// [batch, K, M] when transposed (A is stored so), likewise B [batch, N, K].</summary>
    public static OpCost Gemm(int batch, int m, int n, int k, float beta, bool transA = false, bool transB = false) => new("gemm", 2.0 * batch * m * n * k,
        4.0 * batch * ((double)m * k + (double)k * n + (beta == 0 ? 1 : 2) * (double)m * n))
    {
        Shapes = Traced ? Dims($"{(transA ? "A^T" : "A")}, {(transB ? "B^T" : "B")}{(beta == 0 ? "" : ", C")} -> C",
            beta == 0 ? [transA ? [batch, k, m] : [batch, m, k], transB ? [batch, n, k] : [batch, k, n]]
                      : [transA ? [batch, k, m] : [batch, m, k], transB ? [batch, n, k] : [batch, k, n], [batch, m, n]],
            [[batch, m, n]]) : null,
    };

    public static OpCost Softmax(int rows, int cols) => new("softmax", 5.0 * rows * cols, 8.0 * rows * cols) { Shapes = Traced ? Rows("x -> y", rows, cols) : null };
    public static OpCost SoftmaxBackward(int rows, int cols) =>
        new("softmax_backward", 4.0 * rows * cols, 12.0 * rows * cols) { Shapes = Traced ? Rows("y, dy -> dx", rows, cols) : null };
    public static OpCost LogSoftmax(int rows, int cols) => new("log_softmax", 5.0 * rows * cols, 8.0 * rows * cols) { Shapes = Traced ? Rows("x -> y", rows, cols) : null };
    public static OpCost LogSoftmaxBackward(int rows, int cols) =>
        new("log_softmax_backward", 4.0 * rows * cols, 12.0 * rows * cols) { Shapes = Traced ? Rows("y, dy -> dx", rows, cols) : null };

    /// <summary>Every operand [rows, cols] (the row ops' shapes).</summary>
    private static OpShapes Rows(string operands, int rows, int cols)
    {
        var sides = operands.Split("->");
        int[][] Each(string side) => side.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(_ => new[] { rows, cols }).ToArray();
        return new(operands, Each(sides[0]), Each(sides[1]));
    }

    public static OpCost LayerNorm(int rows, int c) => new("layernorm", 8.0 * rows * c, 8.0 * rows * c)
    { Shapes = Traced ? Dims("x, gamma, beta -> y, mean, rstd", [[rows, c], [c], [c]], [[rows, c], [rows], [rows]]) : null };
    public static OpCost LayerNormBackward(int rows, int c) => new("layernorm_backward", 12.0 * rows * c, 12.0 * rows * c)
    { Shapes = Traced ? Dims("dy, x, mean, rstd, gamma -> dx, dgamma, dbeta", [[rows, c], [rows, c], [rows], [rows], [c]], [[rows, c], [c], [c]]) : null };

    /// <summary>Two GEMMs per head (S = Q·Kᵀ, O = P·V): 4·BH·Nq·Nk·D; q, k, v read and o written once.</summary>
    public static OpCost Attention(int bh, int nq, int nk, int d) =>
        new("attention", 4.0 * bh * nq * nk * d, 4.0 * bh * d * (2.0 * nq + 2.0 * nk))
        { Shapes = Traced ? Dims("q, k, v -> o, lse", [[bh, nq, d], [bh, nk, d], [bh, nk, d]], [[bh, nq, d], [bh, nq]]) : null };

    /// <summary>Scores recomputed plus four gradient GEMMs, ~10·BH·Nq·Nk·D; q, k, v, o, dO read, dq, dk, dv written.</summary>
    public static OpCost AttentionBackward(int bh, int nq, int nk, int d) =>
        new("attention_backward", 10.0 * bh * nq * nk * d, 4.0 * bh * d * (4.0 * nq + 4.0 * nk))
        {
            Shapes = Traced ? Dims("q, k, v, o, dO, lse -> dq, dk, dv", [[bh, nq, d], [bh, nk, d], [bh, nk, d], [bh, nq, d], [bh, nq, d], [bh, nq]],
                [[bh, nq, d], [bh, nk, d], [bh, nk, d]]) : null,
        };

    // --- optimizer ------------------------------------------------------------------------------
    /// <summary>One AdamW step: p, g, m, v read; p, m, v written.</summary>
    public static OpCost AdamW(int n) => new("adamw", 16.0 * n, 28.0 * n) { Shapes = Traced ? Dims("p, g, m, v -> p, m, v", [[n], [n], [n], [n]], [[n], [n], [n]]) : null };
}
