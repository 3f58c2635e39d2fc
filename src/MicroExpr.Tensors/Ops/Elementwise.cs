namespace MicroExpr.Tensors;

/// <summary>Element-wise ops: unary maps and broadcasting binary ops, each with its backward.</summary>
public sealed partial class Tensor
{
    private Tensor NewLike(int[] shape)
    {
        RequireFloat("op");
        return new(Backend.Allocate(ShapeUtil.Numel(shape), zero: false), shape);
    }

    private Tensor UnaryOpWithGrad(UnaryOp op, string name, float alpha = 0f)
    {
        ThrowIfDisposed();
        var y = NewLike(Shape);
        Backend.Unary(op, y.Storage, Storage, Numel, alpha);
        var x = this;
        return Record(y, name, [x], g =>
        {
            var dx = x.NewLike(x.Shape);
            x.Backend.UnaryBackward(op, dx.Storage, x.Storage, y.Storage, g.Storage, x.Numel, alpha);
            return [dx];
        });
    }

    public Tensor Neg() => UnaryOpWithGrad(UnaryOp.Neg, "neg");
    public Tensor Exp() => UnaryOpWithGrad(UnaryOp.Exp, "exp");
    public Tensor Log() => UnaryOpWithGrad(UnaryOp.Log, "log");
    public Tensor Sqrt() => UnaryOpWithGrad(UnaryOp.Sqrt, "sqrt");
    public Tensor Tanh() => UnaryOpWithGrad(UnaryOp.Tanh, "tanh");
    public Tensor Sigmoid() => UnaryOpWithGrad(UnaryOp.Sigmoid, "sigmoid");
    public Tensor Relu() => UnaryOpWithGrad(UnaryOp.Relu, "relu");

    /// <summary>Exact GELU: ½·x·(1 + erf(x/√2)).</summary>
    public Tensor Gelu() => UnaryOpWithGrad(UnaryOp.Gelu, "gelu");

    /// <summary>x^p element-wise (x &gt; 0 for non-integer p).</summary>
    public Tensor Pow(float p) => UnaryOpWithGrad(UnaryOp.Pow, "pow", p);

    public Tensor Scale(float s) => UnaryOpWithGrad(UnaryOp.Scale, "scale", s);
    public Tensor AddScalar(float s) => UnaryOpWithGrad(UnaryOp.AddScalar, "add_scalar", s);

    private static readonly string[] BinaryNames = ["add", "sub", "mul", "div"];

    private static Tensor BinaryOpWithGrad(BinaryOp op, Tensor a, Tensor b)
    {
        a.ThrowIfDisposed();
        b.ThrowIfDisposed();
        string name = BinaryNames[(int)op];
        if (a.Device != b.Device) throw new ArgumentException($"{name}: operands on different devices ({a.Device}, {b.Device})");
        var shape = ShapeUtil.Broadcast(name, a.Shape, b.Shape);
        var z = a.NewLike(shape);
        a.Backend.Binary(op, z.Storage, shape, a.Storage, ShapeUtil.BroadcastStrides(a.Shape, shape),
            b.Storage, ShapeUtil.BroadcastStrides(b.Shape, shape));
        return Record(z, name, [a, b], g =>
        {
            Tensor? da = null, db = null;
            switch (op)
            {
                case BinaryOp.Add:
                    if (a.NeedsGrad) da = g.SumToShape(a.Shape);
                    if (b.NeedsGrad) db = g.SumToShape(b.Shape);
                    break;
                case BinaryOp.Sub:
                    if (a.NeedsGrad) da = g.SumToShape(a.Shape);
                    if (b.NeedsGrad) { using var t = g.SumToShape(b.Shape); db = t.Neg(); }
                    break;
                case BinaryOp.Mul:
                    if (a.NeedsGrad) { using var t = g * b; da = t.SumToShape(a.Shape); }
                    if (b.NeedsGrad) { using var t = g * a; db = t.SumToShape(b.Shape); }
                    break;
                case BinaryOp.Div:
                    if (a.NeedsGrad) { using var t = g / b; da = t.SumToShape(a.Shape); }
                    if (b.NeedsGrad)
                    {
                        // d(a/b)/db = −(a/b)/b = −z/b
                        using var t1 = g * z;
                        using var t2 = t1 / b;
                        using var t3 = t2.SumToShape(b.Shape);
                        db = t3.Neg();
                    }
                    break;
            }
            return [da, db];
        });
    }

    /// <summary>Sum of a broadcast gradient back to <paramref name="shape"/> (a new handle on the same storage when the shape already matches).</summary>
    internal Tensor SumToShape(int[] shape)
    {
        if (ShapeUtil.SameShape(shape, Shape)) return Detach();
        var padded = new int[Rank];
        int offset = Rank - shape.Length;
        for (int i = 0; i < Rank; i++) padded[i] = i < offset ? 1 : shape[i - offset];
        var r = new Tensor(Backend.Allocate(ShapeUtil.Numel(shape), false), (int[])shape.Clone());
        Backend.SumTo(r.Storage, padded, Storage, Shape);
        return r;
    }

    public static Tensor operator +(Tensor a, Tensor b) => BinaryOpWithGrad(BinaryOp.Add, a, b);
    public static Tensor operator -(Tensor a, Tensor b) => BinaryOpWithGrad(BinaryOp.Sub, a, b);
    public static Tensor operator *(Tensor a, Tensor b) => BinaryOpWithGrad(BinaryOp.Mul, a, b);
    public static Tensor operator /(Tensor a, Tensor b) => BinaryOpWithGrad(BinaryOp.Div, a, b);
    public static Tensor operator -(Tensor a) => a.Neg();
    public static Tensor operator +(Tensor a, float s) => a.AddScalar(s);
    public static Tensor operator -(Tensor a, float s) => a.AddScalar(-s);
    public static Tensor operator *(Tensor a, float s) => a.Scale(s);
    public static Tensor operator *(float s, Tensor a) => a.Scale(s);
    public static Tensor operator /(Tensor a, float s) => a.Scale(1f / s);

    public static Tensor Add(Tensor a, Tensor b) => a + b;
    public static Tensor Sub(Tensor a, Tensor b) => a - b;
    public static Tensor Mul(Tensor a, Tensor b) => a * b;
    public static Tensor Div(Tensor a, Tensor b) => a / b;
}
