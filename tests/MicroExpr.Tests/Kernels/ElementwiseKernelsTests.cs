using MicroExpr.Kernels;

namespace MicroExpr.Tests.Kernels;

/// <summary>ElementwiseKernels against literal double references on the CPU accelerator.</summary>
public class ElementwiseKernelsTests
{
    private static ElementwiseKernels K(int g) => KernelTest.Launcher(g, (a, gs) => new ElementwiseKernels(a, gs));

    /// <summary>Reference f(x) and f'(x) in double.</summary>
    private static (double y, double dydx) Ref(UnaryOp op, double x, double alpha) => op switch
    {
        UnaryOp.Neg => (-x, -1),
        UnaryOp.Exp => (Math.Exp(x), Math.Exp(x)),
        UnaryOp.Log => (Math.Log(x), 1 / x),
        UnaryOp.Sqrt => (Math.Sqrt(x), 0.5 / Math.Sqrt(x)),
        UnaryOp.Tanh => (Math.Tanh(x), 1 - Math.Tanh(x) * Math.Tanh(x)),
        UnaryOp.Sigmoid => (1 / (1 + Math.Exp(-x)), Math.Exp(-x) / ((1 + Math.Exp(-x)) * (1 + Math.Exp(-x)))),
        UnaryOp.Relu => (Math.Max(x, 0), x > 0 ? 1 : 0),
        UnaryOp.Gelu => (Ops.ElementwiseOpTests<OnCpu>.Gelu(x),
            0.5 * (1 + Ops.ElementwiseOpTests<OnCpu>.Erf(x / Math.Sqrt(2))) + x * Math.Exp(-x * x / 2) / Math.Sqrt(2 * Math.PI)),
        UnaryOp.Pow => (Math.Pow(x, alpha), alpha * Math.Pow(x, alpha - 1)),
        UnaryOp.Scale => (alpha * x, alpha),
        _ => (x + alpha, 1),
    };

    private static IEnumerable<TestCaseData> UnaryCases()
    {
        foreach (var op in Enum.GetValues<UnaryOp>())
            foreach (int g in KernelTest.GroupSizes)
                foreach (int n in new[] { 1, 33, 6 * 512 + 7 })
                    yield return new TestCaseData(op, g, n).SetArgDisplayNames(op.ToString(), $"g{g}", $"n{n}");
    }

    [TestCaseSource(nameof(UnaryCases))]
    public void UnaryAndBackward(UnaryOp op, int g, int n)
    {
        bool positive = op is UnaryOp.Log or UnaryOp.Sqrt;
        float alpha = op switch { UnaryOp.Pow => 3f, UnaryOp.Scale => -1.75f, UnaryOp.AddScalar => 0.5f, _ => 0f };
        var x = Check.Random(n, 11 + n, positive ? 0.2f : -3f, positive ? 2f : 3f);
        if (op == UnaryOp.Relu) for (int i = 0; i < n; i++) if (MathF.Abs(x[i]) < 0.01f) x[i] = 0.5f;
        var dy = Check.Random(n, 12 + n);
        var k = K(g);
        using var xb = KernelTest.Up(x);
        using var yb = KernelTest.NaNs(n);
        using var dyb = KernelTest.Up(dy);
        using var dxb = KernelTest.NaNs(n);
        k.Unary(KernelTest.Stream, op, yb.View, xb.View, n, alpha);
        k.UnaryBackward(KernelTest.Stream, op, dxb.View, xb.View, yb.View, dyb.View, n, alpha);
        var ey = new double[n];
        var edx = new double[n];
        for (int i = 0; i < n; i++)
        {
            var (y, d) = Ref(op, x[i], alpha);
            ey[i] = y;
            edx[i] = d * dy[i];
        }
        Check.Close(KernelTest.Down(yb, n), ey, 2e-6, 2e-5, $"{op} forward");
        Check.Close(KernelTest.Down(dxb, n), edx, 2e-6, 5e-5, $"{op} backward");
    }

    private static IEnumerable<TestCaseData> BinaryCases()
    {
        int[][][] pairs = [[[1], [1]], [[197], [197]], [[3, 33], [3, 1]], [[2, 1, 3], [2, 17, 1]], [[6, 512 + 1], [512 + 1]], [[1, 4], [3, 1, 1]],
            [[2, 1, 3, 1, 2, 3], [1, 2, 1, 3, 2, 1]]];
        foreach (var p in pairs)
            foreach (int g in KernelTest.GroupSizes)
                yield return new TestCaseData(p[0], p[1], g).SetArgDisplayNames(string.Join("x", p[0]), string.Join("x", p[1]), $"g{g}");
    }

    [TestCaseSource(nameof(BinaryCases))]
    public void BinaryBroadcasts(int[] sa, int[] sb, int g)
    {
        var a = Check.Random(Support.Ref.Numel(sa), 3);
        var b = Check.Random(Support.Ref.Numel(sb), 4, 0.5f, 1.5f);
        int rank = Math.Max(sa.Length, sb.Length);
        var shape = Tensors.ShapeUtil.Broadcast("test", sa, sb);
        var aStr = Tensors.ShapeUtil.BroadcastStrides(sa, shape);
        var bStr = Tensors.ShapeUtil.BroadcastStrides(sb, shape);
        int n = Support.Ref.Numel(shape);
        using var ab = KernelTest.Up(a);
        using var bb = KernelTest.Up(b);
        foreach (var op in Enum.GetValues<BinaryOp>())
        {
            using var zb = KernelTest.NaNs(n);
            K(g).Binary(KernelTest.Stream, op, zb.View, shape, ab.View, aStr, bb.View, bStr);
            Func<double, double, double> f = op switch
            {
                BinaryOp.Add => (p, q) => p + q,
                BinaryOp.Sub => (p, q) => p - q,
                BinaryOp.Mul => (p, q) => p * q,
                _ => (p, q) => p / q,
            };
            var expected = Support.Ref.Zip(a.Select(v => (double)v).ToArray(), sa, b.Select(v => (double)v).ToArray(), sb, f, out _);
            Check.Close(KernelTest.Down(zb, n), expected, 1e-6, 1e-6, $"{op} rank {rank}");
        }
    }

    [TestCaseSource(typeof(KernelTest), nameof(KernelTest.GroupsBySizes))]
    public void AxpyAndFill(int g, int n)
    {
        var x = Check.Random(n, 5);
        var y = Check.Random(n, 6);
        using var xb = KernelTest.Up(x);
        using var yb = KernelTest.Up(y);
        K(g).Axpy(KernelTest.Stream, yb.View, xb.View, n, -0.5f);
        Check.Close(KernelTest.Down(yb, n), y.Select((v, i) => v - 0.5 * x[i]).ToArray(), 1e-6, 1e-6, "axpy");
        using var fb = KernelTest.NaNs(n);
        K(g).Fill(KernelTest.Stream, fb.View, n, 2.5f);
        Check.Close(KernelTest.Down(fb, n), Enumerable.Repeat(2.5, n).ToArray(), 0, 0, "fill");
    }
}
