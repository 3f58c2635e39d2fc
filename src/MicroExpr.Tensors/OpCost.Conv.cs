using MicroExpr.Kernels;

namespace MicroExpr.Tensors;

/// <summary>The convolutions' costs: FLOPs 2·N·Cout·P·Kg per pass (PyTorch's count 2·N·Cout·Ho·Wo·Cin·kh·kw / G), bytes of x, w, y once.</summary>
public readonly partial record struct OpCost
{
    private static string ConvKind(in ConvGeometry g) => g.D == 1 && g.Kd == 1 ? "conv2d" : "conv3d";

    /// <summary>y = f(conv(x, w) + b): x and w read, y written (the bias is negligible).</summary>
    public static OpCost Conv(in ConvGeometry g) =>
        new(ConvKind(g), g.Flops, 4.0 * (g.XLength + g.WLength + g.YLength)) { Shapes = Traced ? Dims("x, w -> y", [X(g), Wt(g)], [Y(g)]) : null };

    /// <summary>dx from dy and w: dy and w read, dx written.</summary>
    public static OpCost ConvBackwardData(in ConvGeometry g) =>
        new(ConvKind(g) + "_backward_data", g.Flops, 4.0 * (g.XLength + g.WLength + g.YLength)) { Shapes = Traced ? Dims("dy, w -> dx", [Y(g), Wt(g)], [X(g)]) : null };

    /// <summary>dw (and db) from dy and x: dy and x read, dw written (db adds N·Cout·P additions).</summary>
    public static OpCost ConvBackwardWeight(in ConvGeometry g, bool bias) =>
        new(ConvKind(g) + "_backward_weight", g.Flops + (bias ? (double)g.YLength : 0), 4.0 * (g.XLength + g.WLength + g.YLength))
        { Shapes = Traced ? Dims(bias ? "dy, x -> dw, db" : "dy, x -> dw", [Y(g), X(g)], bias ? [Wt(g), [g.Cout]] : [Wt(g)]) : null };

    private static bool Is2d(in ConvGeometry g) => g.D == 1 && g.Kd == 1;

    // x [N, Cin, (D,) H, W], w [Cout, Cg, (kd,) kh, kw], y [N, Cout, (Do,) Ho, Wo]: the depth axis only for a 3-d convolution.
    private static int[] X(in ConvGeometry g) => Is2d(g) ? [g.N, g.Cin, g.H, g.W] : [g.N, g.Cin, g.D, g.H, g.W];
    private static int[] Wt(in ConvGeometry g) => Is2d(g) ? [g.Cout, g.Cg, g.Kh, g.Kw] : [g.Cout, g.Cg, g.Kd, g.Kh, g.Kw];
    private static int[] Y(in ConvGeometry g) => Is2d(g) ? [g.N, g.Cout, g.Ho, g.Wo] : [g.N, g.Cout, g.Do, g.Ho, g.Wo];
}
