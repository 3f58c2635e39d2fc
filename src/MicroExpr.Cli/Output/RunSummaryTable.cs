using System.Globalization;
using MicroExpr.Training;

namespace MicroExpr.Cli.Output;

/// <summary>
/// The pooled result of a run as <c>train</c>, <c>evaluate</c> and <c>demo</c> print it: on a terminal a table (the
/// honest LOSO row, then the oracle-epoch row when recorded, labelled as optimistic); otherwise the two plain lines
/// that logs and scripts read (<c>LOSO: UF1 0.933  UAR ...</c>).
/// </summary>
internal static class RunSummaryTable
{
    public static void Write(TextWriter o, RunSummary s)
    {
        var h = s.Honest;
        string F(double v) => v.ToString("F3", CultureInfo.InvariantCulture);
        string what = s.Complete ? "LOSO" : $"partial LOSO ({s.Folds.Count}/{s.Record.Subjects.Count} folds)";
        if (!Terminal.IsTerminal(o))
        {
            o.WriteLine($"{what}: UF1 {F(h.Uf1)}  UAR {F(h.Uar)}  accuracy {F(h.Accuracy)}  ({h.Count} clips)");
            if (s.Oracle is { } x) o.WriteLine($"  oracle epoch (picked on the test subject; optimistic, for comparison with papers only): UF1 {F(x.Uf1)}  UAR {F(x.Uar)}");
            return;
        }
        var rows = new List<IReadOnlyList<string>> { new[] { what + " (honest: fixed epochs)", F(h.Uf1), F(h.Uar), F(h.Accuracy), h.Count.ToString(CultureInfo.InvariantCulture) } };
        if (s.Oracle is { } oracle)
            rows.Add(["oracle epoch (picked on the test subject; optimistic)", F(oracle.Uf1), F(oracle.Uar), "-", "-"]);
        Terminal.WriteTable(o, ["protocol", "UF1", "UAR", "accuracy", "clips"], rows, [false, true, true, true, true]);
    }
}
