using MicroExpr.Kernels;

namespace MicroExpr.Tests.Kernels;

/// <summary>LossKernels: fused cross-entropy (weights, label smoothing) forward and backward against PyTorch's formula in double.</summary>
public class LossKernelsTests
{
    private static IEnumerable<TestCaseData> Cases()
    {
        foreach (int g in KernelTest.GroupSizes)
            foreach (int n in new[] { 1, 17, 197, 6 * 512 + 7 })
                foreach (var (c, weighted, eps) in new[] { (1, false, 0f), (3, true, 0.1f), (7, false, 0.2f), (33, true, 0f) })
                    yield return new TestCaseData(g, n, c, weighted, eps).SetArgDisplayNames($"g{g}", $"n{n}", $"c{c}", weighted ? "w" : "-", $"eps{eps}");
    }

    [TestCaseSource(nameof(Cases))]
    public void CrossEntropyMatchesReference(int g, int n, int c, bool weighted, float eps)
    {
        var k = KernelTest.Launcher(g, (a, gs) => new LossKernels(a, gs));
        var x = Check.Random(n * c, 51, -3f, 3f);
        var y = Enumerable.Range(0, n).Select(i => (i * 7 + 3) % c).ToArray();
        var w = weighted ? Enumerable.Range(0, c).Select(j => 0.5f + 0.25f * j).ToArray() : Enumerable.Repeat(1f, c).ToArray();
        const float dL = 0.75f;

        // Reference: ℓ_i = Σ_j q_ij w_j (lse_i − x_ij), L = Σ ℓ_i / Σ w_y; dx = dL·(W_i p_ij − q_ij w_j)/Σ w_y.
        double norm = y.Sum(t => (double)w[t]), total = 0;
        var dx = new double[n * c];
        for (int i = 0; i < n; i++)
        {
            double max = double.NegativeInfinity;
            for (int j = 0; j < c; j++) max = Math.Max(max, x[i * c + j]);
            double sum = 0;
            for (int j = 0; j < c; j++) sum += Math.Exp(x[i * c + j] - max);
            double l = max + Math.Log(sum);
            var q = new double[c];
            for (int j = 0; j < c; j++) q[j] = eps / c * w[j] + (j == y[i] ? (1 - eps) * w[y[i]] : 0);
            double rowW = q.Sum();
            for (int j = 0; j < c; j++)
            {
                total += q[j] * (l - x[i * c + j]);
                dx[i * c + j] = dL * (rowW * Math.Exp(x[i * c + j] - l) - q[j]) / norm;
            }
        }

        var args = LossKernels.Args(n, c, y, weighted ? w : default, eps);
        using var xb = KernelTest.Up(x);
        using var yb = KernelTest.Up(y);
        using var wb = KernelTest.Up(w);
        using var loss = KernelTest.NaNs(1);
        using var rows = KernelTest.NaNs(n);
        using var lse = KernelTest.NaNs(n);
        using var dLb = KernelTest.Up([dL]);
        using var dxb = KernelTest.NaNs(n * c);
        k.Forward(KernelTest.Stream, loss.View, rows.View, lse.View, xb.View, yb.View, wb.View, args);
        k.Backward(KernelTest.Stream, dxb.View, dLb.View, xb.View, lse.View, yb.View, wb.View, args);
        Check.Close(KernelTest.Down(loss, 1), [total / norm], 1e-5, 1e-5, "loss");
        Check.Close(KernelTest.Down(dxb, n * c), dx, 1e-7, 1e-4, "dlogits");
    }
}
