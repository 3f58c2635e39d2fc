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
        string innerWhat = s.Inner is null ? "" : $"inner selection ({s.InnerChoices.Count} folds; {InnerSelection.Cost(s.Record.Options)}, {s.InnerChoices.Sum(c => c.Trainings)} in all)";
        if (!Terminal.IsTerminal(o))
        {
            o.WriteLine($"{what}: UF1 {F(h.Uf1)}  UAR {F(h.Uar)}  accuracy {F(h.Accuracy)}  ({h.Count} clips)");
            if (s.Inner is { } i) o.WriteLine($"  {innerWhat}: UF1 {F(i.Uf1)}  UAR {F(i.Uar)}  accuracy {F(i.Accuracy)}  ({i.Count} clips)");
            if (s.Oracle is { } x) o.WriteLine($"  {OracleLabel}: UF1 {F(x.Uf1)}  UAR {F(x.Uar)}");
        }
        else
        {
            var rows = new List<IReadOnlyList<string>> { new[] { what + " (honest: fixed epochs)", F(h.Uf1), F(h.Uar), F(h.Accuracy), h.Count.ToString(CultureInfo.InvariantCulture) } };
            if (s.Inner is { } inner) rows.Add([innerWhat + " (honest)", F(inner.Uf1), F(inner.Uar), F(inner.Accuracy), inner.Count.ToString(CultureInfo.InvariantCulture)]);
            if (s.Oracle is { } oracle) rows.Add([OracleLabel, F(oracle.Uf1), F(oracle.Uar), "-", "-"]);
            Terminal.WriteTable(o, ["protocol", "UF1", "UAR", "accuracy", "clips"], rows, [false, true, true, true, true]);
        }
        foreach (var (name, m) in s.PerDataset)
            o.WriteLine($"  {name}: UF1 {F(m.Uf1)}  UAR {F(m.Uar)}  ({m.Count} clips)" +
                (s.PerDatasetInner.TryGetValue(name, out var i) ? $"   inner UF1 {F(i.Uf1)}  UAR {F(i.Uar)}" : "") +
                (s.PerDatasetOracle.TryGetValue(name, out var x) ? $"   oracle UF1 {F(x.Uf1)}  UAR {F(x.Uar)}" : ""));
    }

    internal const string OracleLabel = "oracle epoch (oracle — looks at test labels, for comparison with published numbers only)";

    /// <summary>A multi-seed run: each seed's honest figures, the mean ± sd, the ensemble, per data set (plain lines, also on terminals).</summary>
    public static void Write(TextWriter o, SeedsSummary s)
    {
        string F(double v) => v.ToString("F3", CultureInfo.InvariantCulture);
        foreach (var (seed, r) in s.Runs)
            o.WriteLine($"seed {seed}: UF1 {F(r.Honest.Uf1)}  UAR {F(r.Honest.Uar)}  accuracy {F(r.Honest.Accuracy)}" +
                (r.Inner is { } i ? $"   inner UF1 {F(i.Uf1)}  UAR {F(i.Uar)}" : "") + (r.Oracle is { } x ? $"   oracle UF1 {F(x.Uf1)}" : "") +
                (r.Complete ? "" : $"  (partial: {r.Folds.Count}/{r.Record.Subjects.Count} folds)"));
        string what = s.Complete ? $"LOSO over {s.Runs.Count} seeds" : $"partial LOSO ({s.Runs.Count}/{s.Record.Seeds.Count} seeds started)";
        o.WriteLine($"{what} (honest: fixed epochs): UF1 {s.Uf1.Text}  UAR {s.Uar.Text}  (mean ± sd, n − 1)");
        if (s.InnerUf1 is { } iu) o.WriteLine($"  inner selection: UF1 {iu.Text}  UAR {s.InnerUar!.Text}");
        if (s.OracleUf1 is { } ou) o.WriteLine($"  {OracleLabel}: UF1 {ou.Text}  UAR {s.OracleUar!.Text}");
        o.WriteLine($"  ensemble of the seeds (mean of softmax): UF1 {F(s.Ensemble.Uf1)}  UAR {F(s.Ensemble.Uar)}  accuracy {F(s.Ensemble.Accuracy)}  ({s.Ensemble.Count} clips)");
        foreach (var (name, d) in s.PerDataset)
            o.WriteLine($"  {name}: UF1 {d.Uf1.Text}  UAR {d.Uar.Text}" + (s.EnsemblePerDataset.TryGetValue(name, out var e) ? $"   ensemble UF1 {F(e.Uf1)}  UAR {F(e.Uar)}" : ""));
    }
}
