using System.Globalization;
using System.Text;
using System.Text.Json;
using OpenCvSharp;

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
            oracle_epoch = s.Oracle is null ? null : new { uf1 = Math.Round(s.Oracle.Uf1, 4), uar = Math.Round(s.Oracle.Uar, 4), accuracy = Math.Round(s.Oracle.Accuracy, 4), note = "epoch chosen on each test subject: optimistic, for comparison with papers only" },
            train_seconds = Math.Round(s.Seconds, 1),
            options = s.Record.Options,
        };
        FoldTrainer.WriteJsonAtomic(Path.Combine(run, "metrics.json"), metrics);
        File.WriteAllText(Path.Combine(run, "report.md"), Markdown(s));
        DrawConfusion(Path.Combine(run, "confusion.png"), s.Honest.Confusion, names);
        DrawCurves(Path.Combine(run, "curves.png"), s.Folds);
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
        if (s.Oracle != null)
            sb.AppendLine($"| *oracle epoch* UF1 / UAR (epoch picked on the test subject: optimistic, papers-style) | *{F(s.Oracle.Uf1)} / {F(s.Oracle.Uar)}* |");
        sb.AppendLine();
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
        sb.AppendLine($"Preset {o.Preset}, {o.Epochs} epochs, batch {o.BatchSize}, {o.Optimizer} lr {o.LearningRate.ToString(CultureInfo.InvariantCulture)} (cosine, {o.WarmupEpochs} warm-up epochs), weight decay {o.WeightDecay.ToString(CultureInfo.InvariantCulture)}, class weights {(o.ClassWeights ? "on" : "off")}, seed {o.Seed}; {s.Record.Frames} frames of {s.Record.Size} px; {F(s.Seconds)} s of training.");
        sb.AppendLine("\n![training loss](curves.png)");
        return sb.ToString();
    }

    /// <summary>A heat map of the confusion matrix with counts and row-normalised shading.</summary>
    public static void DrawConfusion(string path, int[,] cm, IReadOnlyList<string> names)
    {
        int k = names.Count, cell = 90, left = 150, top = 70;
        using var img = new Mat(new Size(left + k * cell + 20, top + k * cell + 60), MatType.CV_8UC3, Scalar.White);
        Cv2.PutText(img, "true \\ predicted", new Point(10, 30), HersheyFonts.HersheySimplex, 0.6, Scalar.Black, 1, LineTypes.AntiAlias);
        for (int r = 0; r < k; r++)
        {
            int rowSum = Enumerable.Range(0, k).Sum(c => cm[r, c]);
            Cv2.PutText(img, Trim(names[r]), new Point(10, top + r * cell + cell / 2 + 5), HersheyFonts.HersheySimplex, 0.5, Scalar.Black, 1, LineTypes.AntiAlias);
            for (int c = 0; c < k; c++)
            {
                double frac = rowSum == 0 ? 0 : cm[r, c] / (double)rowSum;
                var color = new Scalar(255 - 200 * frac, 255 - 120 * frac, 255 - 30 * frac);
                var rect = new Rect(left + c * cell, top + r * cell, cell, cell);
                Cv2.Rectangle(img, rect, color, -1);
                Cv2.Rectangle(img, rect, new Scalar(160, 160, 160), 1);
                Cv2.PutText(img, cm[r, c].ToString(CultureInfo.InvariantCulture), new Point(rect.X + cell / 2 - 12, rect.Y + cell / 2 + 8),
                    HersheyFonts.HersheySimplex, 0.8, frac > 0.6 ? Scalar.White : Scalar.Black, 2, LineTypes.AntiAlias);
            }
        }
        for (int c = 0; c < k; c++)
            Cv2.PutText(img, Trim(names[c]), new Point(left + c * cell + 5, top - 10), HersheyFonts.HersheySimplex, 0.5, Scalar.Black, 1, LineTypes.AntiAlias);
        Cv2.ImWrite(path, img);
    }

    private static string Trim(string s) => s.Length > 12 ? s[..12] : s;

    /// <summary>Training loss per epoch: one thin line per fold, the mean in bold.</summary>
    public static void DrawCurves(string path, IReadOnlyList<FoldResult> folds)
    {
        int w = 640, h = 400, left = 60, right = 20, top = 30, bottom = 50;
        using var img = new Mat(new Size(w, h), MatType.CV_8UC3, Scalar.White);
        var series = folds.Where(f => f.EpochLoss.Count > 0).Select(f => f.EpochLoss).ToList();
        Cv2.PutText(img, "training loss per epoch (thin: folds, bold: mean)", new Point(left, 20), HersheyFonts.HersheySimplex, 0.5, Scalar.Black, 1, LineTypes.AntiAlias);
        if (series.Count > 0)
        {
            int epochs = series.Max(s => s.Count);
            double max = series.SelectMany(s => s).Where(double.IsFinite).DefaultIfEmpty(1).Max();
            max = max <= 0 ? 1 : max * 1.05;
            Point P(int e, double v) => new(left + (epochs == 1 ? 0 : e * (w - left - right) / (epochs - 1)), h - bottom - (int)(v / max * (h - top - bottom)));
            Cv2.Line(img, new Point(left, h - bottom), new Point(w - right, h - bottom), Scalar.Black, 1);
            Cv2.Line(img, new Point(left, top), new Point(left, h - bottom), Scalar.Black, 1);
            for (int i = 0; i <= 4; i++)
            {
                double v = max * i / 4;
                var p = P(0, v);
                Cv2.PutText(img, v.ToString("F2", CultureInfo.InvariantCulture), new Point(5, p.Y + 4), HersheyFonts.HersheySimplex, 0.4, Scalar.Black, 1, LineTypes.AntiAlias);
            }
            Cv2.PutText(img, $"epoch (1..{epochs})", new Point(w / 2 - 40, h - 15), HersheyFonts.HersheySimplex, 0.5, Scalar.Black, 1, LineTypes.AntiAlias);
            foreach (var s in series)
                for (int e = 1; e < s.Count; e++) Cv2.Line(img, P(e - 1, s[e - 1]), P(e, s[e]), new Scalar(200, 170, 140), 1, LineTypes.AntiAlias);
            var mean = Enumerable.Range(0, epochs).Select(e => series.Where(s => s.Count > e).Average(s => s[e])).ToList();
            for (int e = 1; e < mean.Count; e++) Cv2.Line(img, P(e - 1, mean[e - 1]), P(e, mean[e]), new Scalar(150, 60, 0), 3, LineTypes.AntiAlias);
        }
        Cv2.ImWrite(path, img);
    }
}
