namespace MicroExpr.Tensors;

public readonly partial record struct OpCost
{
    /// <summary>BatchNorm training forward over [N, C, S]: statistics (x read) then y = a·x + b (x read, y written).</summary>
    public static OpCost BatchNormTrain(int n, int c, int s) => new("batchnorm", 5.0 * n * c * s, 12.0 * n * c * s)
    { Shapes = Traced ? Dims("x, gamma, beta -> y, mean, var", [[n, c, s], [c], [c]], [[n, c, s], [c], [c]]) : null };

    /// <summary>BatchNorm with given statistics: x read, y written.</summary>
    public static OpCost BatchNormApply(int n, int c, int s) => new("batchnorm_eval", 2.0 * n * c * s, 8.0 * n * c * s)
    { Shapes = Traced ? Dims("x, mean, var, gamma, beta -> y", [[n, c, s], [c], [c], [c], [c]], [[n, c, s]]) : null };

    /// <summary>BatchNorm backward: dy and x read twice (sums, then dx), dx written.</summary>
    public static OpCost BatchNormBackward(int n, int c, int s) => new("batchnorm_backward", 8.0 * n * c * s, 20.0 * n * c * s)
    { Shapes = Traced ? Dims("dy, x, mean, var, gamma -> dx, dgamma, dbeta", [[n, c, s], [n, c, s], [c], [c], [c]], [[n, c, s], [c], [c]]) : null };
}
