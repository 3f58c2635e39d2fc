namespace MicroExpr.Tensors;

/// <summary>Reductions over axes: sum, mean, max, variance.</summary>
public sealed partial class Tensor
{
    private int[] ReducedShape(string op, int[] axes, bool keepDim, out int[] keptShape, out int count)
    {
        var set = new HashSet<int>();
        foreach (int a in axes)
            if (!set.Add(ShapeUtil.Axis(a, Rank))) throw new ShapeException($"{op}: axis {a} given twice for {ShapeUtil.Format(Shape)}");
        if (axes.Length == 0) for (int i = 0; i < Rank; i++) set.Add(i); // no axes: all of them
        keptShape = new int[Rank];
        var outShape = new List<int>();
        count = 1;
        for (int i = 0; i < Rank; i++)
        {
            bool r = set.Contains(i);
            keptShape[i] = r ? 1 : Shape[i];
            if (r) count *= Shape[i];
            if (!r || keepDim) outShape.Add(r ? 1 : Shape[i]);
        }
        return [.. outShape];
    }

    /// <summary>Sum over the given axes (all axes when none are given).</summary>
    public Tensor Sum(int[] axes, bool keepDim = false)
    {
        ThrowIfDisposed();
        var outShape = ReducedShape("sum", axes, keepDim, out var kept, out _);
        var y = NewLike(outShape);
        Backend.SumTo(y.Storage, kept, Storage, Shape);
        var x = this;
        return Record(y, "sum", [x], g =>
        {
            using var gk = g.Reshape(kept);
            return [gk.BroadcastTo(x.Shape)];
        });
    }

    public Tensor Sum() => Sum([]);

    /// <summary>Mean over the given axes (all axes when none are given).</summary>
    public Tensor Mean(int[] axes, bool keepDim = false)
    {
        ReducedShape("mean", axes, keepDim, out _, out int count);
        return Sum(axes, keepDim).Scale(1f / count);
    }

    public Tensor Mean() => Mean([]);

    /// <summary>Maximum over one axis; the gradient goes to the (first) arg-max.</summary>
    public Tensor Max(int axis, bool keepDim = false)
    {
        ThrowIfDisposed();
        int ax = ShapeUtil.Axis(axis, Rank);
        var outShape = ReducedShape("max", [ax], keepDim, out _, out _);
        int outer = 1, inner = 1, len = Shape[ax];
        for (int i = 0; i < ax; i++) outer *= Shape[i];
        for (int i = ax + 1; i < Rank; i++) inner *= Shape[i];
        var y = NewLike(outShape);
        var arg = NewLike(outShape);
        Backend.MaxAxis(y.Storage, arg.Storage, Storage, outer, len, inner);
        var x = this;
        // The arg-max buffer is captured by the closure (it is no input of the graph); the scope frees it with y.
        return Record(y, "max", [x], g =>
        {
            var dx = x.NewLike(x.Shape);
            x.Backend.MaxAxisBackward(dx.Storage, g.Storage, arg.Storage, outer, len, inner);
            return [dx];
        });
    }

    /// <summary>Variance over the given axes: mean of squared deviations (divided by count − 1 when unbiased).</summary>
    public Tensor Variance(int[] axes, bool unbiased = false, bool keepDim = false)
    {
        ReducedShape("variance", axes, keepDim, out _, out int count);
        if (unbiased && count < 2) throw new ShapeException($"variance: unbiased variance needs at least 2 elements per group; {ShapeUtil.Format(Shape)} has {count}");
        // Intermediates stay alive for backward; the enclosing TensorScope frees them.
        var mean = Mean(axes, keepDim: true);
        var d = this - mean;
        var d2 = d * d;
        return d2.Sum(axes, keepDim).Scale(1f / (unbiased ? count - 1 : count));
    }
}
