namespace MicroExpr.Tensors;

/// <summary>
/// The operand shapes of one backend primitive as the backend sees them (its dimension arguments, not the tape's tensor
/// shapes: attention's q is [BH, Nq, D] however the model views it), for <c>--trace</c>: the names of the operands,
/// inputs then outputs ("q, k, v -> o, lse"), and one dims array per operand, in that order. <see cref="OpCost"/> builds
/// them only while <see cref="OpTrace.Enabled"/>, so profiling without a trace allocates nothing for them.
/// <para>Chosen: the primitive's own shapes, built where its cost is (the one place that already reads its dimensions),
/// and carried by <see cref="OpCost"/> through every timer to <see cref="OpTrace"/>. Rejected: the tape op's tensor
/// shapes, handed down through a thread-local "current op": one tape op issues several primitives (a Linear's GEMM, a
/// backward's fills and copies), so an event would carry shapes that are not its own, and primitives called outside the
/// tape (the optimizer, fills) would carry none. The names and dims follow PyTorch's profiler, whose chrome traces carry
/// "Input Dims"; here both sides are given because a primitive writes several outputs (LayerNorm's y, mean, rstd).</para>
/// </summary>
public sealed record OpShapes(string Operands, int[][] Inputs, int[][] Outputs)
{
    /// <summary>"x[3200, 192], gamma[192] -> y[3200, 192]": names with their dims.</summary>
    public override string ToString()
    {
        var sides = Operands.Split("->", StringSplitOptions.TrimEntries);
        string Side(string names, int[][] dims) => string.Join(", ", names.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select((n, i) => $"{n}[{(i < dims.Length ? string.Join(", ", dims[i]) : "?")}]"));
        return $"{Side(sides[0], Inputs)} -> {Side(sides.Length > 1 ? sides[1] : "", Outputs)}";
    }
}
