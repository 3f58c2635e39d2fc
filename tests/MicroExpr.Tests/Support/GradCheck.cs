using MicroExpr.Tensors;
using MicroExpr.Tensors.Cpu;
using MicroExpr.Tensors.Ilgpu;

namespace MicroExpr.Tests.Support;

/// <summary>
/// Checks one op end to end: the forward against a literal double-precision reference, and the
/// backward (through the tape) against central finite differences of that double reference:
/// dL/dx_j ≈ (L(x + h·e_j) − L(x − h·e_j)) / 2h with L = Σ reference(x) ∘ G for a random G.
/// Output buffers are poisoned with NaN, so an element an op forgets to write fails. Inputs live on
/// <see cref="Device"/> (the SIMD CPU by default), so the same check runs against any backend.
/// </summary>
public sealed class GradCheck
{
    public required string Name { get; init; }
    public required int[][] Shapes { get; init; }
    public required Func<Tensor[], Tensor> Op { get; init; }
    public required Func<double[][], double[]> Reference { get; init; }

    /// <summary>Input values for input i (default uniform in [-1, 1)).</summary>
    public Func<int, int, Rng, float>? Init { get; init; }

    /// <summary>Which inputs get a gradient check (default all).</summary>
    public bool[]? Differentiable { get; init; }

    public double ForwardAtol { get; init; } = 1e-5;
    public double ForwardRtol { get; init; } = 1e-4;
    public double GradAtol { get; init; } = 2e-4;
    public double GradRtol { get; init; } = 2e-3;
    public double Step { get; init; } = 1e-6;

    /// <summary>At most this many elements per input are checked by finite differences (sampled, seeded).</summary>
    public int MaxGradChecks { get; init; } = 400;

    public int Seed { get; init; } = 1;

    /// <summary>Where the inputs (and so every op) live.</summary>
    public Device Device { get; init; } = Device.Cpu;

    public void Run()
    {
        // A stable hash of the name: string.GetHashCode is randomised per process, which made every check's inputs (and so
        // a failure near a ReLU kink) differ from run to run.
        var rng = new Rng((ulong)Seed * 7919UL + StableHash(Name));
        var data = new float[Shapes.Length][];
        for (int i = 0; i < Shapes.Length; i++)
        {
            int n = ShapeUtil.Numel(Shapes[i]);
            data[i] = new float[n];
            for (int j = 0; j < n; j++) data[i][j] = Init?.Invoke(i, j, rng) ?? (float)(rng.NextDouble() * 2 - 1);
        }
        var ddata = data.Select(a => a.Select(v => (double)v).ToArray()).ToArray();

        bool poison = CpuPool.PoisonOnRent, poisonIlgpu = IlgpuBackend.PoisonOnRent;
        CpuPool.PoisonOnRent = true;
        IlgpuBackend.PoisonOnRent = true;
        try
        {
            using var scope = new TensorScope();
            var inputs = new Tensor[Shapes.Length];
            for (int i = 0; i < inputs.Length; i++)
            {
                inputs[i] = Tensor.FromSpan(data[i], Shapes[i], Device);
                inputs[i].RequiresGrad = Differentiable?[i] ?? true;
            }
            var y = Op(inputs);
            Assert.That(y.Device, Is.SameAs(Device), $"{Name}: output on {y.Device}, inputs on {Device}");
            var expected = Reference(ddata);
            Check.Close(y.ToArray(), expected, ForwardAtol, ForwardRtol, $"{Name} forward");

            var g = new double[expected.Length];
            for (int j = 0; j < g.Length; j++) g[j] = rng.NextDouble() * 2 - 1;
            var gT = Tensor.FromSpan(g.Select(v => (float)v).ToArray(), y.Shape, Device);
            var loss = (y * gT).Sum();
            loss.Backward();

            for (int i = 0; i < inputs.Length; i++)
            {
                if (!(Differentiable?[i] ?? true)) continue;
                Assert.That(inputs[i].Grad, Is.Not.Null, $"{Name}: no gradient reached input {i}");
                var grad = inputs[i].Grad!.ToArray();
                inputs[i].ZeroGrad();
                int n = grad.Length;
                var idx = n <= MaxGradChecks ? Enumerable.Range(0, n) : Enumerable.Range(0, MaxGradChecks).Select(_ => rng.NextInt(n));
                foreach (int j in idx)
                {
                    double keep = ddata[i][j];
                    ddata[i][j] = keep + Step;
                    double lp = Dot(Reference(ddata), g);
                    ddata[i][j] = keep - Step;
                    double lm = Dot(Reference(ddata), g);
                    ddata[i][j] = keep;
                    double numeric = (lp - lm) / (2 * Step);
                    double analytic = grad[j];
                    if (!double.IsFinite(analytic) || Math.Abs(analytic - numeric) > GradAtol + GradRtol * Math.Abs(numeric))
                        Assert.Fail($"{Name} backward: d/d input{i}[{j}] is {analytic}, finite differences give {numeric}");
                }
            }
            foreach (var t in inputs) t.Dispose();
        }
        finally
        {
            CpuPool.PoisonOnRent = poison;
            IlgpuBackend.PoisonOnRent = poisonIlgpu;
        }
    }

    /// <summary>FNV-1a over the name's UTF-16 code units: the same value in every process.</summary>
    internal static ulong StableHash(string s)
    {
        ulong h = 14695981039346656037UL;
        foreach (char ch in s)
        {
            h ^= ch;
            h *= 1099511628211UL;
        }
        return h;
    }

    private static double Dot(double[] a, double[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }
}

/// <summary>Literal double-precision helpers for references (row-major, NumPy broadcasting).</summary>
public static class Ref
{
    public static int Numel(int[] s) => s.Aggregate(1, (a, b) => a * b);

    /// <summary>Element-wise map.</summary>
    public static double[] Map(double[] x, Func<double, double> f) => x.Select(f).ToArray();

    /// <summary>Broadcasting binary op over shapes a and b.</summary>
    public static double[] Zip(double[] a, int[] sa, double[] b, int[] sb, Func<double, double, double> f, out int[] shape)
    {
        int rank = Math.Max(sa.Length, sb.Length);
        shape = new int[rank];
        var pa = Pad(sa, rank);
        var pb = Pad(sb, rank);
        for (int i = 0; i < rank; i++) shape[i] = Math.Max(pa[i], pb[i]);
        int n = Numel(shape);
        var r = new double[n];
        var idx = new int[rank];
        for (int e = 0; e < n; e++)
        {
            int rem = e;
            for (int d = rank - 1; d >= 0; d--) { idx[d] = rem % shape[d]; rem /= shape[d]; }
            r[e] = f(a[Offset(idx, pa)], b[Offset(idx, pb)]);
        }
        return r;
    }

    private static int[] Pad(int[] s, int rank) => Enumerable.Repeat(1, rank - s.Length).Concat(s).ToArray();

    private static int Offset(int[] idx, int[] shape)
    {
        int off = 0;
        for (int d = 0; d < shape.Length; d++) off = off * shape[d] + (shape[d] == 1 ? 0 : idx[d]);
        return off;
    }

    /// <summary>C = op(A)·op(B) for one matrix pair.</summary>
    public static double[] MatMul(double[] a, double[] b, int m, int n, int k, bool ta, bool tb, int aOff = 0, int bOff = 0)
    {
        var c = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++)
                    s += a[aOff + (ta ? p * m + i : i * k + p)] * b[bOff + (tb ? j * k + p : p * n + j)];
                c[i * n + j] = s;
            }
        return c;
    }
}
