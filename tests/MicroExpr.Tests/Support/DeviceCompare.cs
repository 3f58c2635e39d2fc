using MicroExpr.Tensors;

namespace MicroExpr.Tests.Support;

/// <summary>
/// Runs one computation on two devices from the same host weights and compares the results: the loss
/// and the gradient of every parameter, by relative error max|a − b| / max|b| (b from the reference device).
/// </summary>
public static class DeviceCompare
{
    /// <summary>Named parameters as host arrays with their shapes.</summary>
    public sealed class Weights : List<(string Name, int[] Shape, float[] Data)>
    {
        public void Add(string name, int[] shape, float[] data) => Add((name, shape, data));
    }

    /// <summary>Loss value and gradients (by parameter name) of <paramref name="loss"/> built on <paramref name="device"/>.</summary>
    public static (float loss, Dictionary<string, float[]> grads) LossAndGrads(Device device, Weights weights,
        Func<Dictionary<string, Tensor>, Tensor> loss)
    {
        using var scope = new TensorScope();
        var p = new Dictionary<string, Tensor>();
        foreach (var (name, shape, data) in weights) p[name] = Tensor.FromSpan(data, shape, device).AsParameter(name);
        try
        {
            var l = loss(p);
            Assert.That(l.Device, Is.SameAs(device), "loss computed on the device under test");
            l.Backward();
            var grads = p.ToDictionary(kv => kv.Key, kv => kv.Value.Grad?.ToArray() ?? throw new AssertionException($"no gradient for {kv.Key}"));
            return (l.Item(), grads);
        }
        finally
        {
            foreach (var t in p.Values)
            {
                t.ZeroGrad();
                t.Dispose();
            }
        }
    }

    /// <summary>max|a − b| / max|b| (absolute when b is all zeros).</summary>
    public static double RelativeError(float[] a, float[] b)
    {
        double num = 0, den = 0;
        for (int i = 0; i < a.Length; i++)
        {
            num = Math.Max(num, Math.Abs((double)a[i] - b[i]));
            den = Math.Max(den, Math.Abs((double)b[i]));
        }
        return den == 0 ? num : num / den;
    }

    /// <summary>Asserts the loss and every gradient agree within <paramref name="tolerance"/> (relative).</summary>
    public static void AssertSame(Device device, Device reference, Weights weights, Func<Dictionary<string, Tensor>, Tensor> loss,
        double tolerance)
    {
        var (l1, g1) = LossAndGrads(device, weights, loss);
        var (l0, g0) = LossAndGrads(reference, weights, loss);
        double lossErr = Math.Abs(l1 - l0) / Math.Max(Math.Abs(l0), 1e-12);
        TestContext.Out.WriteLine($"loss {device}: {l1:G9}, {reference}: {l0:G9}, relative error {lossErr:E2}");
        var report = new List<string>();
        foreach (var (name, _, _) in weights)
        {
            double e = RelativeError(g1[name], g0[name]);
            TestContext.Out.WriteLine($"  d/d{name}: relative error {e:E2}");
            if (!(e < tolerance)) report.Add($"{name}: {e:E2}");
        }
        Assert.That(lossErr, Is.LessThan(tolerance), "loss");
        Assert.That(report, Is.Empty, $"gradients differ by more than {tolerance:E0} (relative)");
    }
}
