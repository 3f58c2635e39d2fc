using System.Globalization;
using System.Text;
using System.Text.Json;

namespace MicroExpr.Training;

/// <summary>Writes a run's metrics.json, report.md, confusion.png and curves.png.</summary>
public static class Report
{
    public static void Write(string run, RunSummary s)
    {
        var names = s.Record.ClassNames;
        var metrics = new
        {
            complete = s.Complete,
            folds = s.Folds.Count,
            subjects = s.Record.Subjects.Count,
            clips = s.Honest.Count,
            uf1 = Math.Round(s.Honest.Uf1, 4),
            uar = Math.Round(s.Honest.Uar, 4),
            accuracy = Math.Round(s.Honest.Accuracy, 4),
            classes = names,
            absent_classes = s.Honest.AbsentClasses.Select(c => names[c]).ToArray(),
            f1_per_class = s.Honest.F1PerClass.Select(v => Math.Round(v, 4)).ToArray(),
            recall_per_class = s.Honest.RecallPerClass.Select(v => Math.Round(v, 4)).ToArray(),
            confusion = ToJagged(s.Honest.Confusion),
            per_subject_accuracy = s.Honest.PerSubjectAccuracy.ToDictionary(kv => kv.Key, kv => Math.Round(kv.Value, 4)),
            inner_selection = s.Inner is null ? null : new
            {
                uf1 = Math.Round(s.Inner.Uf1, 4), uar = Math.Round(s.Inner.Uar, 4), accuracy = Math.Round(s.Inner.Accuracy, 4), folds = s.InnerChoices.Count,
                inner_folds = s.Record.Options.InnerFolds, grid = s.Record.Options.Grid,
                trainings = s.InnerChoices.Sum(c => c.Trainings), cost = InnerSelection.Cost(s.Record.Options),
                chosen = s.InnerChoices.Select(c => new { fold = c.Subject, setting = c.Settings[c.ChosenSetting], epoch = c.ChosenEpoch, pooled_inner_uf1 = c.PooledUf1[c.ChosenSetting][c.ChosenEpoch - 1] }).ToArray(),
                note = "epoch (and setting) chosen per outer fold by the pooled UF1 of inner folds over its training subjects; the test subject is predicted once",
            },
            per_dataset = s.PerDataset.Count == 0 ? null : s.PerDataset.ToDictionary(kv => kv.Key, kv => new
            {
                uf1 = Math.Round(kv.Value.Uf1, 4), uar = Math.Round(kv.Value.Uar, 4), accuracy = Math.Round(kv.Value.Accuracy, 4), clips = kv.Value.Count,
                inner_uf1 = s.PerDatasetInner.TryGetValue(kv.Key, out var i) ? Math.Round(i.Uf1, 4) : (double?)null,
                inner_uar = i is null ? (double?)null : Math.Round(i.Uar, 4),
                oracle_uf1 = s.PerDatasetOracle.TryGetValue(kv.Key, out var x) ? Math.Round(x.Uf1, 4) : (double?)null,
                oracle_uar = x is null ? (double?)null : Math.Round(x.Uar, 4),
            }),
            oracle_epoch = s.Oracle is null ? null : new { uf1 = Math.Round(s.Oracle.Uf1, 4), uar = Math.Round(s.Oracle.Uar, 4), accuracy = Math.Round(s.Oracle.Accuracy, 4), note = "epoch chosen on each test subject: optimistic, for comparison with papers only" },
            train_seconds = Math.Round(s.Seconds, 1),
            options = s.Record.Options,
        };
        FoldTrainer.WriteJsonAtomic(Path.Combine(run, "metrics.json"), metrics);
        File.WriteAllText(Path.Combine(run, "report.md"), Markdown(s));
        DrawConfusion(Path.Combine(run, "confusion.png"), s.Honest.Confusion, names);
        DrawCurves(Path.Combine(run, "curves.png"), s.Folds);
        var recon = s.Folds.Where(f => f.Reconstructions is not null).SelectMany(f => f.Reconstructions!).Take(6).ToList();
        if (recon.Count > 0) Plots.Reconstructions(Path.Combine(run, "reconstructions.png"), recon);
    }

    private static int[][] ToJagged(int[,] m) =>
        Enumerable.Range(0, m.GetLength(0)).Select(r => Enumerable.Range(0, m.GetLength(1)).Select(c => m[r, c]).ToArray()).ToArray();

    private static string F(double v) => v.ToString("F3", CultureInfo.InvariantCulture);

    public static string Markdown(RunSummary s)
    {
        var names = s.Record.ClassNames;
        var o = s.Record.Options;
        var sb = new StringBuilder();
        sb.AppendLine($"# LOSO result: {o.Preset} on {Path.GetFileName(s.Record.Data.TrimEnd('/'))}");
        sb.AppendLine();
        if (!s.Complete) sb.AppendLine($"**Partial**: {s.Folds.Count} of {s.Record.Subjects.Count} folds finished; the figures pool those folds only.\n");
        sb.AppendLine("Honest protocol: every fold trains for a fixed number of epochs; nothing looks at the test subject.");
        sb.AppendLine();
        sb.AppendLine("| metric | value |");
        sb.AppendLine("|---|---|");
        sb.AppendLine($"| UF1 | {F(s.Honest.Uf1)} |");
        sb.AppendLine($"| UAR | {F(s.Honest.Uar)} |");
        sb.AppendLine($"| accuracy | {F(s.Honest.Accuracy)} |");
        sb.AppendLine($"| clips / subjects | {s.Honest.Count} / {s.Folds.Count} |");
        if (s.Inner != null)
            sb.AppendLine($"| inner selection UF1 / UAR ({s.InnerChoices.Count} folds; {InnerSelection.Cost(s.Record.Options)}) | {F(s.Inner.Uf1)} / {F(s.Inner.Uar)} |");
        if (s.Oracle != null)
            sb.AppendLine($"| *oracle epoch* UF1 / UAR (oracle — looks at test labels, for comparison with published numbers only) | *{F(s.Oracle.Uf1)} / {F(s.Oracle.Uar)}* |");
        sb.AppendLine();
        if (s.PerDataset.Count > 0)
        {
            sb.AppendLine("## Per data set\n");
            sb.AppendLine("| data set | clips | UF1 | UAR |" + (s.Inner is null ? "" : " inner UF1 / UAR |") + (s.Oracle is null ? "" : " *oracle* UF1 / UAR |"));
            sb.AppendLine("|---|---|---|---|" + (s.Inner is null ? "" : "---|") + (s.Oracle is null ? "" : "---|"));
            foreach (var (name, m) in s.PerDataset)
                sb.AppendLine($"| {name} | {m.Count} | {F(m.Uf1)} | {F(m.Uar)} |" +
                    (s.Inner is null ? "" : s.PerDatasetInner.TryGetValue(name, out var i) ? $" {F(i.Uf1)} / {F(i.Uar)} |" : " - |") +
                    (s.Oracle is null ? "" : s.PerDatasetOracle.TryGetValue(name, out var x) ? $" *{F(x.Uf1)} / {F(x.Uar)}* |" : " - |"));
            sb.AppendLine();
        }
        if (s.InnerChoices.Count > 0)
        {
            sb.AppendLine("## Inner selection\n");
            sb.AppendLine($"Per outer fold, the training subjects in {s.Record.Options.InnerFolds} groups; the epoch{(string.IsNullOrEmpty(s.Record.Options.Grid) ? "" : $" and one of --grid {s.Record.Options.Grid}")} chosen by the pooled inner-fold UF1; cost {InnerSelection.Cost(s.Record.Options)} ({s.InnerChoices.Sum(c => c.Trainings)} in all).\n");
            sb.AppendLine("| fold | setting | epoch | pooled inner UF1 |");
            sb.AppendLine("|---|---|---|---|");
            foreach (var c in s.InnerChoices)
                sb.AppendLine($"| {c.Subject} | {(c.Settings[c.ChosenSetting] is { Length: > 0 } set ? set : "(the run's)")} | {c.ChosenEpoch} | {F(c.PooledUf1[c.ChosenSetting][c.ChosenEpoch - 1])} |");
            sb.AppendLine();
        }
        if (s.Honest.AbsentClasses.Count > 0)
            sb.AppendLine($"Classes absent from the pooled set, left out of UF1 and UAR: {string.Join(", ", s.Honest.AbsentClasses.Select(c => names[c]))}.\n");
        sb.AppendLine("## Per class\n");
        sb.AppendLine("| class | F1 | recall |");
        sb.AppendLine("|---|---|---|");
        for (int c = 0; c < names.Count; c++) sb.AppendLine($"| {names[c]} | {F(s.Honest.F1PerClass[c])} | {F(s.Honest.RecallPerClass[c])} |");
        sb.AppendLine("\n## Confusion matrix (rows: true, columns: predicted)\n");
        sb.AppendLine("| | " + string.Join(" | ", names) + " |");
        sb.AppendLine("|---|" + string.Concat(Enumerable.Repeat("---|", names.Count)));
        for (int r = 0; r < names.Count; r++)
            sb.AppendLine($"| **{names[r]}** | " + string.Join(" | ", Enumerable.Range(0, names.Count).Select(c => s.Honest.Confusion[r, c])) + " |");
        sb.AppendLine("\n![confusion](confusion.png)\n");
        sb.AppendLine("## Per subject\n");
        sb.AppendLine("| subject | accuracy | clips |");
        sb.AppendLine("|---|---|---|");
        foreach (var f in s.Folds)
            sb.AppendLine($"| {f.Subject} | {F(s.Honest.PerSubjectAccuracy.GetValueOrDefault(f.Subject))} | {f.Predictions.Count} |");
        sb.AppendLine("\n## Training\n");
        sb.AppendLine($"Preset {o.Preset}{(string.IsNullOrEmpty(o.ModelSettings) ? "" : $" (--set {o.ModelSettings})")}, {(o.Steps > 0 ? $"{o.Steps} steps" : $"{o.Epochs} epochs")}, batch {o.BatchSize}, {o.Optimizer} lr {o.LearningRate.ToString(CultureInfo.InvariantCulture)} ({(o.Schedule == "constant" ? "constant" : $"cosine, {o.WarmupEpochs} warm-up epochs")}), weight decay {o.WeightDecay.ToString(CultureInfo.InvariantCulture)}, class weights {(o.ClassWeights ? "on" : "off")}{(o.TransductiveStatistics ? ", **transductive** input statistics (each test subject's own mean and max, as FDP's released code)" : "")}, seed {o.Seed}; {s.Record.Frames} frames of {s.Record.Size} px; {F(s.Seconds)} s of training.");
        sb.AppendLine("\n![training loss](curves.png)");
        if (s.Folds.Any(f => f.Reconstructions is { Count: > 0 }))
            sb.AppendLine("\n## Dynamic images\n\nFor the first test clips of the first folds: the cached dynamic image (target, left) and the model's reconstruction σ(D̂) (right).\n\n![dynamic images](reconstructions.png)");
        return sb.ToString();
    }

    /// <summary>
    /// The confusion matrix [C, C] (rows: true class, columns: predicted) as a heat map with the count in every
    /// cell and the class names on both axes; shading is row-normalised (the recall of each true class).
    /// </summary>
    public static void DrawConfusion(string path, int[,] cm, IReadOnlyList<string> names)
    {
        int k = names.Count;
        var shade = new double[k, k];
        for (int r = 0; r < k; r++)
        {
            int rowSum = Enumerable.Range(0, k).Sum(c => cm[r, c]);
            for (int c = 0; c < k; c++) shade[r, c] = rowSum == 0 ? 0 : cm[r, c] / (double)rowSum;
        }
        var labels = names.Select(Trim).ToList();
        Plots.Heatmap(path, "confusion matrix (shade: share of the true class)", cm, labels, labels, "true class", "predicted class", shade);
    }

    private static string Trim(string s) => s.Length > 12 ? s[..12] : s;

    /// <summary>
    /// Training curves: loss per epoch and training accuracy per epoch (thin: folds, bold: mean over the folds that
    /// reached that epoch). With --oracle, the test subject's accuracy per epoch is drawn too, labelled as such.
    /// </summary>
    public static void DrawCurves(string path, IReadOnlyList<FoldResult> folds)
    {
        static Plots.Line Series(string? label, IReadOnlyList<double> y, bool bold = false, string? color = null) =>
            new(label, Enumerable.Range(1, y.Count).Select(e => (double)e).ToArray(), y, bold, color);
        static IReadOnlyList<double> Mean(IReadOnlyList<IReadOnlyList<double>> series) =>
            Enumerable.Range(0, series.Count == 0 ? 0 : series.Max(s => s.Count))
                .Select(e => series.Where(s => s.Count > e && double.IsFinite(s[e])).Select(s => s[e]).DefaultIfEmpty(double.NaN).Average()).ToArray();

        var lossSeries = folds.Where(f => f.EpochLoss.Count > 0).Select(f => f.EpochLoss).ToList();
        var loss = lossSeries.Select((s, i) => Series(i == 0 ? "folds" : null, s, color: "#4c72b0")).ToList();
        if (lossSeries.Count > 0) loss.Add(Series("mean", Mean(lossSeries), bold: true, color: "#1f3d73"));

        var accSeries = folds.Where(f => f.EpochTrainAccuracy.Count > 0).Select(f => f.EpochTrainAccuracy).ToList();
        var acc = accSeries.Select((s, i) => Series(i == 0 ? "train, folds" : null, s, color: "#55a868")).ToList();
        if (accSeries.Count > 0) acc.Add(Series("train, mean", Mean(accSeries), bold: true, color: "#2d6b3c"));
        var oracle = folds.Where(f => f.OracleByEpoch is { Count: > 0 } && f.Predictions.Count > 0)
            .Select(f => (IReadOnlyList<double>)f.OracleByEpoch!.Select(ps => ps.Count == 0 ? double.NaN : ps.Count(p => p.Label == p.Predicted) / (double)ps.Count).ToArray())
            .ToList();
        if (oracle.Count > 0) acc.Add(Series("test subject (oracle view), mean", Mean(oracle), bold: true, color: "#c44e52"));

        Plots.Curves(path, loss, acc, $"training loss per epoch ({lossSeries.Count} folds)", "accuracy per epoch");
    }
}
