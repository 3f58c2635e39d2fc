using MicroExpr.Nn;
using MicroExpr.Tensors;

namespace MicroExpr.Tests.Nn;

/// <summary>AdamW and SGD against literal double-precision updates over several steps.</summary>
public class OptimizerTests
{
    private static (Tensor p, double[] pd, double[][] grads) Setup(int n, int steps, int seed)
    {
        var rng = new Rng((ulong)seed);
        var p0 = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var grads = Enumerable.Range(0, steps).Select(_ => Enumerable.Range(0, n).Select(_ => (double)(float)(rng.NextDouble() * 2 - 1)).ToArray()).ToArray();
        return (Tensor.FromArray(p0, n).AsParameter("p"), p0.Select(v => (double)v).ToArray(), grads);
    }

    private static void SetGrad(Tensor p, double[] g)
    {
        // The gradient of Σ p·g is g: feed it through the tape like a real step.
        using var scope = new TensorScope();
        var gt = Tensor.FromArray(g.Select(v => (float)v).ToArray(), g.Length);
        (p * gt).Sum().Backward();
    }

    [TestCase(1)]
    [TestCase(17)]
    [TestCase(1000)]
    public void AdamWMatchesTheDoubleReference(int n)
    {
        const int steps = 5;
        const double lr = 1e-2, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01;
        var (p, pd, grads) = Setup(n, steps, n);
        using var opt = new AdamW([p], (float)lr, (float)b1, (float)b2, (float)eps, (float)wd);
        var m = new double[n];
        var v = new double[n];
        for (int t = 1; t <= steps; t++)
        {
            SetGrad(p, grads[t - 1]);
            opt.Step();
            opt.ZeroGrad();
            for (int i = 0; i < n; i++)
            {
                double g = grads[t - 1][i];
                m[i] = b1 * m[i] + (1 - b1) * g;
                v[i] = b2 * v[i] + (1 - b2) * g * g;
                pd[i] -= lr * wd * pd[i];
                pd[i] -= lr * (m[i] / (1 - Math.Pow(b1, t))) / (Math.Sqrt(v[i] / (1 - Math.Pow(b2, t))) + eps);
            }
        }
        Check.Close(p.ToArray(), pd, 1e-6, 1e-5, "adamw");
        p.Dispose();
    }

    [TestCase(1, 0f)]
    [TestCase(33, 1e-4f)]
    public void SgdMomentumMatchesTheDoubleReference(int n, float wd)
    {
        const int steps = 4;
        const double lr = 0.01, mu = 0.9;
        var (p, pd, grads) = Setup(n, steps, 7 + n);
        using var opt = new Sgd([p], (float)lr, (float)mu, wd);
        var buf = new double[n];
        for (int t = 0; t < steps; t++)
        {
            SetGrad(p, grads[t]);
            opt.Step();
            opt.ZeroGrad();
            for (int i = 0; i < n; i++)
            {
                double g = grads[t][i] + wd * pd[i];
                buf[i] = t == 0 ? g : mu * buf[i] + g;
                pd[i] -= lr * buf[i];
            }
        }
        Check.Close(p.ToArray(), pd, 1e-6, 1e-5, "sgd");
        p.Dispose();
    }

    [Test]
    public void ClipGradNormScalesToTheLimit()
    {
        var p = Tensor.FromArray([1f, 1f], 2).AsParameter("p");
        SetGrad(p, [3.0, 4.0]);
        using var opt = new Sgd([p], 0.1f, 0f);
        float before = opt.ClipGradNorm(1f);
        Assert.That(before, Is.EqualTo(5f).Within(1e-5f));
        var g = p.Grad!.ToArray();
        Assert.That(Math.Sqrt(g[0] * g[0] + g[1] * g[1]), Is.EqualTo(1.0).Within(1e-4));
        Assert.That(g[0] / g[1], Is.EqualTo(0.75f).Within(1e-5f));
        p.ZeroGrad();
        p.Dispose();
    }
}
