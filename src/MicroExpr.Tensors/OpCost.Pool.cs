using MicroExpr.Kernels;

namespace MicroExpr.Tensors;

public readonly partial record struct OpCost
{
    private static double In(in PoolGeometry g) => (double)g.Planes * g.InPlane;
    private static double Out(in PoolGeometry g) => (double)g.Planes * g.OutPlane;

    /// <summary>Max pooling: x read once, y and the int32 indices written; one compare per window element.</summary>
    public static OpCost MaxPool(in PoolGeometry g) =>
        new("maxpool", Out(g) * g.Kd * g.Kh * g.Kw, 4.0 * In(g) + 8.0 * Out(g)) { Shapes = Traced ? Dims("x -> y, indices", [PIn(g)], [POut(g), POut(g)]) : null };

    /// <summary>Max pooling backward: dy and indices read, dx written.</summary>
    public static OpCost MaxPoolBackward(in PoolGeometry g) =>
        new("maxpool_backward", Out(g), 8.0 * Out(g) + 4.0 * In(g)) { Shapes = Traced ? Dims("dy, indices -> dx", [POut(g), POut(g)], [PIn(g)]) : null };

    /// <summary>Average pooling: x read, y written.</summary>
    public static OpCost AvgPool(in PoolGeometry g) =>
        new(g.Adaptive != 0 ? "adaptive_avgpool" : "avgpool", In(g), 4.0 * (In(g) + Out(g))) { Shapes = Traced ? Dims("x -> y", [PIn(g)], [POut(g)]) : null };

    /// <summary>Average pooling backward: dy read, dx written.</summary>
    public static OpCost AvgPoolBackward(in PoolGeometry g) =>
        new(g.Adaptive != 0 ? "adaptive_avgpool_backward" : "avgpool_backward", In(g), 4.0 * (In(g) + Out(g))) { Shapes = Traced ? Dims("dy -> dx", [POut(g)], [PIn(g)]) : null };

    /// <summary>Unpooling: x and indices read, y [P, n] written.</summary>
    public static OpCost MaxUnpool(int planes, int m, int n) =>
        new("maxunpool", 0, 8.0 * planes * m + 4.0 * planes * n) { Shapes = Traced ? Dims("x, indices -> y", [[planes, m], [planes, m]], [[planes, n]]) : null };

    /// <summary>Unpooling backward: a gather.</summary>
    public static OpCost MaxUnpoolBackward(int planes, int m, int n) =>
        new("maxunpool_backward", 0, 12.0 * planes * m) { Shapes = Traced ? Dims("dy, indices -> dx", [[planes, n], [planes, m]], [[planes, m]]) : null };

    // Planes [P = N·C, (D,) H, W] in, [P, (Do,) Ho, Wo] out: the depth axis only for a 3-d pooling.
    private static int[] PIn(in PoolGeometry g) => g.D == 1 && g.Kd == 1 && g.Do == 1 ? [g.Planes, g.H, g.W] : [g.Planes, g.D, g.H, g.W];
    private static int[] POut(in PoolGeometry g) => g.D == 1 && g.Kd == 1 && g.Do == 1 ? [g.Planes, g.Ho, g.Wo] : [g.Planes, g.Do, g.Ho, g.Wo];
}
