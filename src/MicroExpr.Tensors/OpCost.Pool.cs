using MicroExpr.Kernels;

namespace MicroExpr.Tensors;

public readonly partial record struct OpCost
{
    private static double In(in PoolGeometry g) => (double)g.Planes * g.InPlane;
    private static double Out(in PoolGeometry g) => (double)g.Planes * g.OutPlane;

    /// <summary>Max pooling: x read once, y and the int32 indices written; one compare per window element.</summary>
    public static OpCost MaxPool(in PoolGeometry g) => new("maxpool", Out(g) * g.Kd * g.Kh * g.Kw, 4.0 * In(g) + 8.0 * Out(g));

    /// <summary>Max pooling backward: dy and indices read, dx written.</summary>
    public static OpCost MaxPoolBackward(in PoolGeometry g) => new("maxpool_backward", Out(g), 8.0 * Out(g) + 4.0 * In(g));

    /// <summary>Average pooling: x read, y written.</summary>
    public static OpCost AvgPool(in PoolGeometry g) => new(g.Adaptive != 0 ? "adaptive_avgpool" : "avgpool", In(g), 4.0 * (In(g) + Out(g)));

    /// <summary>Average pooling backward: dy read, dx written.</summary>
    public static OpCost AvgPoolBackward(in PoolGeometry g) =>
        new(g.Adaptive != 0 ? "adaptive_avgpool_backward" : "avgpool_backward", In(g), 4.0 * (In(g) + Out(g)));

    /// <summary>Unpooling: x and indices read, y [P, n] written.</summary>
    public static OpCost MaxUnpool(int planes, int m, int n) => new("maxunpool", 0, 8.0 * planes * m + 4.0 * planes * n);

    /// <summary>Unpooling backward: a gather.</summary>
    public static OpCost MaxUnpoolBackward(int planes, int m) => new("maxunpool_backward", 0, 12.0 * planes * m);
}
