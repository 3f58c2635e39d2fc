using MicroExpr.Tensors;

namespace MicroExpr.Tests.Ops;

/// <summary>reshape, permute, transpose, slice, concat, stack, broadcast_to, index_select; once per backend.</summary>
[TestFixture(typeof(OnCpu))]
[TestFixture(typeof(OnIlgpuCpu))]
public class ShapeOpTests<TDevice> where TDevice : ITestDevice
{
    private static int[] Unravel(int e, int[] shape)
    {
        var idx = new int[shape.Length];
        for (int d = shape.Length - 1; d >= 0; d--) { idx[d] = e % shape[d]; e /= shape[d]; }
        return idx;
    }

    private static int Ravel(int[] idx, int[] shape)
    {
        int o = 0;
        for (int d = 0; d < shape.Length; d++) o = o * shape[d] + idx[d];
        return o;
    }

    [TestCase(new[] { 2, 3, 4 }, new[] { 4, 6 })]
    [TestCase(new[] { 17 }, new[] { 17, 1 })]
    [TestCase(new[] { 2, 3, 4 }, new[] { -1, 2 })]
    public void Reshape(int[] shape, int[] to) => new GradCheck
    {
        Device = TDevice.Device, Name = "reshape", Shapes = [shape], Op = t => t[0].Reshape(to) * 1.5f, Reference = x => Ref.Map(x[0], v => 1.5 * v),
    }.Run();

    [TestCase(new[] { 2, 3, 4 }, new[] { 2, 0, 1 })]
    [TestCase(new[] { 5, 7 }, new[] { 1, 0 })]
    [TestCase(new[] { 2, 3, 4, 5 }, new[] { 0, 2, 1, 3 })]
    [TestCase(new[] { 8, 50, 3, 64 }, new[] { 0, 2, 1, 3 })]
    [TestCase(new[] { 1, 1, 3 }, new[] { 2, 1, 0 })]
    public void Permute(int[] shape, int[] perm)
    {
        var outShape = perm.Select(p => shape[p]).ToArray();
        new GradCheck
        {
            Device = TDevice.Device, Name = "permute", Shapes = [shape], Op = t => t[0].Permute(perm), MaxGradChecks = 100,
            Reference = x =>
            {
                var y = new double[x[0].Length];
                for (int e = 0; e < y.Length; e++)
                {
                    var oi = Unravel(e, outShape);
                    var ii = new int[shape.Length];
                    for (int d = 0; d < perm.Length; d++) ii[perm[d]] = oi[d];
                    y[e] = x[0][Ravel(ii, shape)];
                }
                return y;
            },
        }.Run();
    }

    [Test]
    public void TransposeSwapsAxes()
    {
        using var x = Tensor.FromArray([1, 2, 3, 4, 5, 6], 2, 3);
        using var t = x.Transpose(0, 1);
        Assert.That(t.Shape, Is.EqualTo(new[] { 3, 2 }));
        Assert.That(t.ToArray(), Is.EqualTo(new float[] { 1, 4, 2, 5, 3, 6 }));
    }

    [TestCase(new[] { 7 }, 0, 2, 3)]
    [TestCase(new[] { 3, 5 }, 1, 1, 3)]
    [TestCase(new[] { 4, 3, 2 }, 0, 3, 1)]
    [TestCase(new[] { 2, 50, 192 }, 1, 0, 1)]
    public void Slice(int[] shape, int axis, int start, int length)
    {
        var outShape = (int[])shape.Clone();
        outShape[axis] = length;
        new GradCheck
        {
            Device = TDevice.Device, Name = "slice", Shapes = [shape], Op = t => t[0].Slice(axis, start, length), MaxGradChecks = 100,
            Reference = x =>
            {
                var y = new double[Ref.Numel(outShape)];
                for (int e = 0; e < y.Length; e++)
                {
                    var i = Unravel(e, outShape);
                    i[axis] += start;
                    y[e] = x[0][Ravel(i, shape)];
                }
                return y;
            },
        }.Run();
    }

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(2)]
    public void ConcatAndStack(int axis)
    {
        int[] sa = [2, 3, 4], sb = [2, 3, 4];
        sa[axis] = 1;
        sb[axis] = 5;
        var outShape = (int[])sa.Clone();
        outShape[axis] = 6;
        new GradCheck
        {
            Device = TDevice.Device, Name = "concat", Shapes = [sa, sb], Op = t => Tensor.Concat(axis, t[0], t[1]),
            Reference = x =>
            {
                var y = new double[Ref.Numel(outShape)];
                for (int e = 0; e < y.Length; e++)
                {
                    var i = Unravel(e, outShape);
                    if (i[axis] < 1) y[e] = x[0][Ravel(i, sa)];
                    else { i[axis] -= 1; y[e] = x[1][Ravel(i, sb)]; }
                }
                return y;
            },
        }.Run();
        new GradCheck
        {
            Device = TDevice.Device, Name = "stack", Shapes = [[2, 3], [2, 3], [2, 3]], Op = t => Tensor.Stack(Math.Min(axis, 2), t[0], t[1], t[2]),
            Reference = x =>
            {
                int ax = Math.Min(axis, 2);
                int[] os = ax switch { 0 => [3, 2, 3], 1 => [2, 3, 3], _ => [2, 3, 3] };
                var y = new double[18];
                for (int e = 0; e < 18; e++)
                {
                    var i = Unravel(e, os);
                    int which = i[ax];
                    var rest = i.Where((_, d) => d != ax).ToArray();
                    y[e] = x[which][Ravel(rest, [2, 3])];
                }
                return y;
            },
        }.Run();
    }

    [TestCase(new[] { 3, 1 }, new[] { 3, 4 })]
    [TestCase(new[] { 5 }, new[] { 2, 3, 5 })]
    [TestCase(new[] { 1, 1 }, new[] { 4, 17 })]
    public void BroadcastTo(int[] shape, int[] to) => new GradCheck
    {
        Device = TDevice.Device, Name = "broadcast_to", Shapes = [shape], Op = t => t[0].BroadcastTo(to),
        Reference = x => Ref.Zip(x[0], shape, new double[Ref.Numel(to)], to, (a, _) => a, out _),
    }.Run();

    [TestCase(new[] { 5, 3 }, 0, new[] { 4, 0, 4, 2 })]
    [TestCase(new[] { 2, 6, 3 }, 1, new[] { 5, 5, 1 })]
    [TestCase(new[] { 2, 3, 7 }, 2, new[] { 6 })]
    public void IndexSelect(int[] shape, int axis, int[] indices)
    {
        var outShape = (int[])shape.Clone();
        outShape[axis] = indices.Length;
        new GradCheck
        {
            Device = TDevice.Device, Name = "index_select", Shapes = [shape], Op = t => t[0].IndexSelect(axis, indices),
            Reference = x =>
            {
                var y = new double[Ref.Numel(outShape)];
                for (int e = 0; e < y.Length; e++)
                {
                    var i = Unravel(e, outShape);
                    i[axis] = indices[i[axis]];
                    y[e] = x[0][Ravel(i, shape)];
                }
                return y;
            },
        }.Run();
    }

    [Test]
    public void BadShapesNameTheOp()
    {
        using var x = Tensor.Zeros(2, 3);
        Assert.That(Assert.Throws<ShapeException>(() => x.Reshape(4, 2))!.Message, Does.Contain("reshape").And.Contain("[2, 3]").And.Contain("[4, 2]"));
        Assert.That(Assert.Throws<ShapeException>(() => x.Slice(1, 2, 2))!.Message, Does.Contain("slice").And.Contain("[2, 3]"));
        using var y = Tensor.Zeros(3, 3);
        Assert.That(Assert.Throws<ShapeException>(() => Tensor.Concat(1, x, y))!.Message, Does.Contain("concat").And.Contain("[2, 3]").And.Contain("[3, 3]"));
        Assert.That(Assert.Throws<ShapeException>(() => x.IndexSelect(0, [2]))!.Message, Does.Contain("index_select"));
    }
}
