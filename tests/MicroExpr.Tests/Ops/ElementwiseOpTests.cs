using MicroExpr.Tensors;

namespace MicroExpr.Tests.Ops;

/// <summary>
/// Unary and broadcasting binary ops: forward against double references, backward by finite differences.
/// Runs once per backend (the ILGPU run takes a subset of the shapes).
/// </summary>
[TestFixture(typeof(OnCpu))]
[TestFixture(typeof(OnIlgpuCpu))]
public class ElementwiseOpTests<TDevice> where TDevice : ITestDevice
{
    private static readonly int[][] SmallSizes = [[1], [33], [6 * 512 + 7]];

    // 1, odd, one past / short of the Vector512 width (16 floats), twice the width ± 1, and 6·512+7.
    private static readonly int[][] Sizes = [[1], [7], [15], [16], [17], [31], [33], [3, 11], [2, 3, 50], [6 * 512 + 7]];

    private static IEnumerable<TestCaseData> UnaryCases()
    {
        foreach (var s in TDevice.Small ? SmallSizes : Sizes)
        {
            string sh = ShapeUtil.Format(s);
            yield return new TestCaseData("neg", s, (Func<Tensor, Tensor>)(x => x.Neg()), (Func<double, double>)(v => -v), false).SetArgDisplayNames("neg", sh);
            yield return new TestCaseData("exp", s, (Func<Tensor, Tensor>)(x => x.Exp()), (Func<double, double>)Math.Exp, false).SetArgDisplayNames("exp", sh);
            yield return new TestCaseData("log", s, (Func<Tensor, Tensor>)(x => x.Log()), (Func<double, double>)Math.Log, true).SetArgDisplayNames("log", sh);
            yield return new TestCaseData("sqrt", s, (Func<Tensor, Tensor>)(x => x.Sqrt()), (Func<double, double>)Math.Sqrt, true).SetArgDisplayNames("sqrt", sh);
            yield return new TestCaseData("tanh", s, (Func<Tensor, Tensor>)(x => x.Tanh()), (Func<double, double>)Math.Tanh, false).SetArgDisplayNames("tanh", sh);
            yield return new TestCaseData("sigmoid", s, (Func<Tensor, Tensor>)(x => x.Sigmoid()), (Func<double, double>)(v => 1 / (1 + Math.Exp(-v))), false).SetArgDisplayNames("sigmoid", sh);
            yield return new TestCaseData("relu", s, (Func<Tensor, Tensor>)(x => x.Relu()), (Func<double, double>)(v => Math.Max(v, 0)), false).SetArgDisplayNames("relu", sh);
            yield return new TestCaseData("gelu", s, (Func<Tensor, Tensor>)(x => x.Gelu()), (Func<double, double>)Gelu, false).SetArgDisplayNames("gelu", sh);
            yield return new TestCaseData("pow3", s, (Func<Tensor, Tensor>)(x => x.Pow(3f)), (Func<double, double>)(v => v * v * v), false).SetArgDisplayNames("pow3", sh);
            yield return new TestCaseData("pow0.5", s, (Func<Tensor, Tensor>)(x => x.Pow(0.5f)), (Func<double, double>)Math.Sqrt, true).SetArgDisplayNames("pow0.5", sh);
            yield return new TestCaseData("scale", s, (Func<Tensor, Tensor>)(x => x * 2.5f), (Func<double, double>)(v => 2.5 * v), false).SetArgDisplayNames("scale", sh);
            yield return new TestCaseData("add_scalar", s, (Func<Tensor, Tensor>)(x => x + 0.75f), (Func<double, double>)(v => v + 0.75), false).SetArgDisplayNames("add_scalar", sh);
        }
    }

    /// <summary>Exact GELU in double: ½x(1 + erf(x/√2)), erf by its Taylor series (|x| ≤ 3 here).</summary>
    public static double Gelu(double x) => 0.5 * x * (1 + Erf(x / Math.Sqrt(2)));

    public static double Erf(double x)
    {
        // Maclaurin series: erf x = 2/√π Σ (−1)^n x^(2n+1) / (n! (2n+1)); converges fast for |x| ≤ 3.
        double sum = 0, term = x;
        for (int n = 0; n < 200; n++)
        {
            double t = term / (2 * n + 1);
            sum += t;
            term *= -x * x / (n + 1);
            if (Math.Abs(t) < 1e-17) break;
        }
        return 2 / Math.Sqrt(Math.PI) * sum;
    }

    [TestCaseSource(nameof(UnaryCases))]
    public void Unary(string name, int[] shape, Func<Tensor, Tensor> op, Func<double, double> reference, bool positive)
    {
        new GradCheck
        {
            Device = TDevice.Device,
            Name = name,
            Shapes = [shape],
            Op = t => op(t[0]),
            Reference = x => Ref.Map(x[0], reference),
            // Positive-domain ops get inputs in [0.2, 2); relu avoids the kink at 0 by |x| ≥ 0.05.
            Init = (_, _, rng) => positive ? (float)(0.2 + 1.8 * rng.NextDouble())
                : name == "relu" ? (float)((rng.NextDouble() < 0.5 ? -1 : 1) * (0.05 + rng.NextDouble()))
                : (float)(rng.NextDouble() * 4 - 2),
            ForwardAtol = name == "gelu" ? 3e-6 : 1e-6,
            ForwardRtol = 2e-6 * 8,
        }.Run();
    }

    private static IEnumerable<TestCaseData> BinaryCases()
    {
        int[][][] pairs =
        [
            [[1], [1]], [[17], [17]], [[3, 4], [3, 4]], [[2, 3, 5], [5]], [[4, 1], [1, 6]], [[1], [7]], [[7], [1]],
            [[2, 1, 3], [2, 4, 1]], [[3, 33], [3, 1]], [[2, 3, 50], [3, 50]], [[5, 192], [192]], [[1, 4], [3, 1, 1]],
        ];
        if (TDevice.Small) pairs = [pairs[1], pairs[3], pairs[4], pairs[7], pairs[11]];
        foreach (var p in pairs)
            foreach (var op in new[] { "add", "sub", "mul", "div" })
                yield return new TestCaseData(op, p[0], p[1]).SetArgDisplayNames(op, ShapeUtil.Format(p[0]), ShapeUtil.Format(p[1]));
    }

    [TestCaseSource(nameof(BinaryCases))]
    public void Binary(string op, int[] sa, int[] sb)
    {
        Func<double, double, double> f = op switch
        {
            "add" => (a, b) => a + b,
            "sub" => (a, b) => a - b,
            "mul" => (a, b) => a * b,
            _ => (a, b) => a / b,
        };
        new GradCheck
        {
            Device = TDevice.Device,
            Name = op,
            Shapes = [sa, sb],
            Op = t => op switch { "add" => t[0] + t[1], "sub" => t[0] - t[1], "mul" => t[0] * t[1], _ => t[0] / t[1] },
            Reference = x => Ref.Zip(x[0], sa, x[1], sb, f, out _),
            // Divisors stay away from zero.
            Init = (i, _, rng) => i == 1 && op == "div" ? (float)((rng.NextDouble() < 0.5 ? -1 : 1) * (0.5 + rng.NextDouble())) : (float)(rng.NextDouble() * 2 - 1),
        }.Run();
    }

    [Test]
    public void BroadcastMismatchNamesOpAndShapes()
    {
        using var a = Tensor.Zeros(3, 4);
        using var b = Tensor.Zeros(5);
        var ex = Assert.Throws<ShapeException>(() => _ = a * b)!;
        Assert.That(ex.Message, Does.Contain("mul").And.Contain("[3, 4]").And.Contain("[5]"));
    }
}
