namespace MicroExpr.Tensors;

/// <summary>Ops that move data without arithmetic: reshape, permute, slice, concat, stack, broadcast, gather.</summary>
public sealed partial class Tensor
{
    /// <summary>Same storage, new shape (one dimension may be -1).</summary>
    public Tensor Reshape(params int[] shape)
    {
        ThrowIfDisposed();
        shape = (int[])shape.Clone();
        int infer = Array.IndexOf(shape, -1);
        if (infer >= 0)
        {
            int known = 1;
            for (int i = 0; i < shape.Length; i++) if (i != infer) known *= shape[i];
            if (known == 0 || Numel % known != 0)
                throw new ShapeException($"reshape: cannot reshape {ShapeUtil.Format(Shape)} to {ShapeUtil.Format(shape)}");
            shape[infer] = Numel / known;
        }
        if (ShapeUtil.Numel(shape) != Numel)
            throw new ShapeException($"reshape: cannot reshape {ShapeUtil.Format(Shape)} ({Numel} elements) to {ShapeUtil.Format(shape)}");
        Storage.AddRef();
        var y = new Tensor(Storage, shape);
        var x = this;
        return Record(y, "reshape", [x], g => [g.Reshape(x.Shape)]);
    }

    /// <summary>Reorders axes: output axis i is input axis perm[i] (copies into contiguous storage).</summary>
    public Tensor Permute(params int[] perm)
    {
        ThrowIfDisposed();
        if (perm.Length != Rank || perm.Distinct().Count() != Rank || perm.Any(p => p < 0 || p >= Rank))
            throw new ShapeException($"permute: [{string.Join(", ", perm)}] is not a permutation of the axes of {ShapeUtil.Format(Shape)}");
        var shape = new int[Rank];
        var srcStrides = new int[Rank];
        var strides = ShapeUtil.Strides(Shape);
        for (int i = 0; i < Rank; i++)
        {
            shape[i] = Shape[perm[i]];
            srcStrides[i] = strides[perm[i]];
        }
        var y = NewLike(shape);
        Backend.CopyStrided(new View(y.Storage, 0, ShapeUtil.Strides(shape)), new View(Storage, 0, srcStrides), shape, CopyMode.Assign);
        var inverse = new int[Rank];
        for (int i = 0; i < Rank; i++) inverse[perm[i]] = i;
        return Record(y, "permute", [this], g => [g.Permute(inverse)]);
    }

    /// <summary>Swaps two axes.</summary>
    public Tensor Transpose(int axis0, int axis1)
    {
        int a = ShapeUtil.Axis(axis0, Rank), b = ShapeUtil.Axis(axis1, Rank);
        var perm = Enumerable.Range(0, Rank).ToArray();
        (perm[a], perm[b]) = (perm[b], perm[a]);
        return Permute(perm);
    }

    /// <summary>Elements start..start+length-1 along one axis.</summary>
    public Tensor Slice(int axis, int start, int length)
    {
        ThrowIfDisposed();
        int ax = ShapeUtil.Axis(axis, Rank);
        if (start < 0 || length < 0 || start + length > Shape[ax])
            throw new ShapeException($"slice: [{start}, {start + length}) is outside axis {ax} of {ShapeUtil.Format(Shape)}");
        var shape = (int[])Shape.Clone();
        shape[ax] = length;
        var strides = ShapeUtil.Strides(Shape);
        var y = NewLike(shape);
        Backend.CopyStrided(new View(y.Storage, 0, ShapeUtil.Strides(shape)), new View(Storage, start * strides[ax], strides), shape, CopyMode.Assign);
        var x = this;
        return Record(y, "slice", [x], g =>
        {
            var dx = Zeros(x.Shape, x.Device);
            x.Backend.CopyStrided(new View(dx.Storage, start * strides[ax], strides), new View(g.Storage, 0, ShapeUtil.Strides(shape)), shape, CopyMode.Add);
            return [dx];
        });
    }

    /// <summary>Joins tensors along an existing axis; all other dimensions must agree.</summary>
    public static Tensor Concat(int axis, params Tensor[] parts)
    {
        if (parts.Length == 0) throw new ArgumentException("concat: no tensors given");
        var first = parts[0];
        int ax = ShapeUtil.Axis(axis, first.Rank);
        int total = 0;
        foreach (var p in parts)
        {
            p.ThrowIfDisposed();
            bool ok = p.Rank == first.Rank;
            for (int i = 0; ok && i < p.Rank; i++) ok = i == ax || p.Shape[i] == first.Shape[i];
            if (!ok) throw new ShapeException($"concat: shapes {ShapeUtil.Format(first.Shape)} and {ShapeUtil.Format(p.Shape)} differ outside axis {ax}");
            if (p.Device != first.Device) throw new ArgumentException($"concat: tensors on different devices ({first.Device}, {p.Device})");
            total += p.Shape[ax];
        }
        var shape = (int[])first.Shape.Clone();
        shape[ax] = total;
        var y = first.NewLike(shape);
        var yStrides = ShapeUtil.Strides(shape);
        int offset = 0;
        var offsets = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            offsets[i] = offset;
            first.Backend.CopyStrided(new View(y.Storage, offset * yStrides[ax], yStrides),
                new View(parts[i].Storage, 0, ShapeUtil.Strides(parts[i].Shape)), parts[i].Shape, CopyMode.Assign);
            offset += parts[i].Shape[ax];
        }
        return Record(y, "concat", parts, g =>
        {
            var grads = new Tensor?[parts.Length];
            for (int i = 0; i < parts.Length; i++)
                if (parts[i].NeedsGrad) grads[i] = g.Slice(ax, offsets[i], parts[i].Shape[ax]);
            return grads;
        });
    }

    /// <summary>Joins same-shaped tensors along a new axis.</summary>
    public static Tensor Stack(int axis, params Tensor[] parts)
    {
        if (parts.Length == 0) throw new ArgumentException("stack: no tensors given");
        int rank = parts[0].Rank + 1;
        int ax = ShapeUtil.Axis(axis, rank);
        var expanded = new Tensor[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!ShapeUtil.SameShape(parts[i].Shape, parts[0].Shape))
                throw new ShapeException($"stack: shapes {ShapeUtil.Format(parts[0].Shape)} and {ShapeUtil.Format(parts[i].Shape)} differ");
            var s = parts[i].Shape.ToList();
            s.Insert(ax, 1);
            expanded[i] = parts[i].Reshape([.. s]);
        }
        return Concat(ax, expanded);
    }

    /// <summary>Repeats size-1 axes (and adds leading axes) to reach <paramref name="shape"/>.</summary>
    public Tensor BroadcastTo(params int[] shape)
    {
        ThrowIfDisposed();
        var target = ShapeUtil.Broadcast("broadcast_to", Shape, shape);
        if (!ShapeUtil.SameShape(target, shape))
            throw new ShapeException($"broadcast_to: {ShapeUtil.Format(Shape)} cannot be broadcast to {ShapeUtil.Format(shape)}");
        var y = NewLike((int[])shape.Clone());
        Backend.CopyStrided(new View(y.Storage, 0, ShapeUtil.Strides(shape)), new View(Storage, 0, ShapeUtil.BroadcastStrides(Shape, shape)), shape, CopyMode.Assign);
        var x = this;
        return Record(y, "broadcast_to", [x], g => [g.SumToShape(x.Shape)]);
    }

    /// <summary>Picks entries along an axis: y[..., j, ...] = x[..., indices[j], ...].</summary>
    public Tensor IndexSelect(int axis, int[] indices)
    {
        ThrowIfDisposed();
        int ax = ShapeUtil.Axis(axis, Rank);
        foreach (int i in indices)
            if (i < 0 || i >= Shape[ax]) throw new ShapeException($"index_select: index {i} is outside axis {ax} of {ShapeUtil.Format(Shape)}");
        int outer = 1, inner = 1;
        for (int i = 0; i < ax; i++) outer *= Shape[i];
        for (int i = ax + 1; i < Rank; i++) inner *= Shape[i];
        var shape = (int[])Shape.Clone();
        shape[ax] = indices.Length;
        var idx = (int[])indices.Clone();
        var y = NewLike(shape);
        int len = Shape[ax];
        Backend.IndexSelect(y.Storage, Storage, idx, outer, len, inner);
        var x = this;
        return Record(y, "index_select", [x], g =>
        {
            var dx = Zeros(x.Shape, x.Device);
            x.Backend.IndexAdd(dx.Storage, g.Storage, idx, outer, len, inner);
            return [dx];
        });
    }

    /// <summary>A copy on another device (the same tensor's new handle when already there); gradients flow back.</summary>
    public Tensor To(Device device)
    {
        ThrowIfDisposed();
        if (device == Device) return Reshape(Shape);
        var y = FromSpan(ToArray(), Shape, device);
        var source = Device;
        return Record(y, "to", [this], g => [g.To(source)]);
    }
}
