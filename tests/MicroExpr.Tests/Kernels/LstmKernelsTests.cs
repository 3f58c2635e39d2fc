using MicroExpr.Kernels;

namespace MicroExpr.Tests.Kernels;

/// <summary>LstmKernels: one cell step forward against the equations, backward against central differences of the double forward.</summary>
public class LstmKernelsTests
{
    private static double Sig(double v) => 1 / (1 + Math.Exp(-v));

    /// <summary>Double forward of one element: (h, c) from its four pre-activations and c_prev.</summary>
    private static (double h, double c) Cell(double ai, double af, double ag, double ao, double cp)
    {
        double c = Sig(af) * cp + Sig(ai) * Math.Tanh(ag);
        return (Sig(ao) * Math.Tanh(c), c);
    }

    private static IEnumerable<TestCaseData> Cases()
    {
        foreach (int g in KernelTest.GroupSizes)
            foreach (var (b, h) in new[] { (1, 1), (1, 17), (3, 33), (2, 197), (1, 6 * 512 + 7) })
                yield return new TestCaseData(g, b, h).SetArgDisplayNames($"g{g}", $"B{b}", $"H{h}");
    }

    [TestCaseSource(nameof(Cases))]
    public void CellForwardAndBackward(int g, int batch, int hidden)
    {
        var k = KernelTest.Launcher(g, (a, gs) => new LstmKernels(a, gs));
        int n = batch * hidden;
        var gates = Check.Random(4 * n, 71, -2f, 2f);
        var cPrev = Check.Random(n, 72);
        var dh = Check.Random(n, 73);
        var dc = Check.Random(n, 74);
        using var gb = KernelTest.Up(gates);
        using var cpb = KernelTest.Up(cPrev);
        using var hb = KernelTest.NaNs(n);
        using var cb = KernelTest.NaNs(n);
        using var dhb = KernelTest.Up(dh);
        using var dcb = KernelTest.Up(dc);
        using var dgb = KernelTest.NaNs(4 * n);
        using var dcpb = KernelTest.NaNs(n);
        k.CellForward(KernelTest.Stream, hb.View, cb.View, gb.View, cpb.View, batch, hidden);
        k.CellBackward(KernelTest.Stream, dgb.View, dcpb.View, dhb.View, dcb.View, gb.View, cpb.View, cb.View, batch, hidden);

        var eh = new double[n];
        var ec = new double[n];
        var edg = new double[4 * n];
        var edcp = new double[n];
        const double step = 1e-6;
        for (int bi = 0; bi < batch; bi++)
            for (int j = 0; j < hidden; j++)
            {
                int e = bi * hidden + j, g0 = bi * 4 * hidden + j;
                var a = new double[] { gates[g0], gates[g0 + hidden], gates[g0 + 2 * hidden], gates[g0 + 3 * hidden], cPrev[e] };
                (eh[e], ec[e]) = Cell(a[0], a[1], a[2], a[3], a[4]);
                // L = dh·h + dc·c; its derivative in each of the five inputs by central differences.
                var d = new double[5];
                for (int q = 0; q < 5; q++)
                {
                    double keep = a[q];
                    a[q] = keep + step;
                    var (hp, cpl) = Cell(a[0], a[1], a[2], a[3], a[4]);
                    a[q] = keep - step;
                    var (hm, cm) = Cell(a[0], a[1], a[2], a[3], a[4]);
                    a[q] = keep;
                    d[q] = (dh[e] * (hp - hm) + dc[e] * (cpl - cm)) / (2 * step);
                }
                for (int q = 0; q < 4; q++) edg[g0 + q * hidden] = d[q];
                edcp[e] = d[4];
            }
        Check.Close(KernelTest.Down(hb, n), eh, 1e-6, 1e-5, "h");
        Check.Close(KernelTest.Down(cb, n), ec, 1e-6, 1e-5, "c");
        Check.Close(KernelTest.Down(dgb, 4 * n), edg, 1e-5, 1e-4, "dgates");
        Check.Close(KernelTest.Down(dcpb, n), edcp, 1e-5, 1e-4, "dc_prev");
    }
}
