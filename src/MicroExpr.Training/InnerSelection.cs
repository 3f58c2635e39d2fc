using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MicroExpr.Tensors;

namespace MicroExpr.Training;

/// <summary>
/// The inner split of one outer LOSO fold: the fold's training subjects (never its test subject) dealt into k groups.
/// </summary>
public static class InnerSplit
{
    /// <summary>
    /// The training subjects of an outer fold in min(k, n) groups: sorted ordinally, shuffled (Fisher–Yates from
    /// <paramref name="seed"/>), then dealt round-robin, so group sizes differ by at most one and the split depends on the
    /// seed and the subject ids alone, never on labels. Each group is sorted. Grouped by subject, not by clip: an inner
    /// held-out group is a set of unseen people, as the outer test subject is. Rejected: class-stratified groups (they
    /// would read labels to form the split; with 4–8 clips per subject the pooled inner UF1 sees every class anyway).
    /// </summary>
    /// <param name="outerTest">the outer fold's test subject: refused if it is among <paramref name="trainSubjects"/>; null for
    /// the final model's selection, whose training subjects are all subjects</param>
    public static IReadOnlyList<IReadOnlyList<string>> Groups(IReadOnlyList<string> trainSubjects, string? outerTest, int k, ulong seed)
    {
        if (k < 2) throw new ArgumentException($"--inner-folds {k}: expected at least 2");
        var subjects = trainSubjects.Distinct().OrderBy(s => s, StringComparer.Ordinal).ToArray();
        if (outerTest is not null && subjects.Contains(outerTest))
            throw new InvalidOperationException($"inner split: the outer test subject {outerTest} is among the training subjects");
        if (subjects.Length < 2)
            throw new ArgumentException(outerTest is null
                ? $"inner selection of the final model needs at least 2 subjects; found {subjects.Length}"
                : $"inner selection needs at least 2 training subjects per outer fold; the fold of {outerTest} has {subjects.Length}");
        var rng = new Rng(seed ^ 0x1A2B_3C4D_5E6F_7081UL);
        rng.Shuffle(subjects.AsSpan());
        int groups = Math.Min(k, subjects.Length);
        var result = Enumerable.Range(0, groups).Select(_ => new List<string>()).ToArray();
        for (int i = 0; i < subjects.Length; i++) result[i % groups].Add(subjects[i]);
        return result.Select(g => (IReadOnlyList<string>)g.OrderBy(s => s, StringComparer.Ordinal).ToList()).ToList();
    }
}

/// <summary>
/// <c>--grid KEY=A,B,…</c>: at most <see cref="MaxValues"/> values of one setting searched beside the epoch count. KEY is
/// <c>lr</c>, <c>weight-decay</c>, <c>label-smoothing</c>, <c>crop-pad</c>, <c>mixup</c> or <c>balanced</c> (training options) or else a field of the
/// preset's config, as <c>--set</c> takes it (e.g. <c>dropout</c>).
/// </summary>
public sealed record InnerGrid(string Key, IReadOnlyList<string> Values)
{
    public const int MaxValues = 4;
    private static readonly string[] TrainingKeys = ["lr", "weight-decay", "label-smoothing", "crop-pad", "mixup", "balanced"];

    /// <summary>Null for ""; a one-line <see cref="ArgumentException"/> for a malformed grid.</summary>
    public static InnerGrid? Parse(string text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        int eq = text.IndexOf('=', StringComparison.Ordinal);
        if (eq <= 0) throw new ArgumentException($"--grid {text}: expected KEY=A,B,... (e.g. lr=0.0003,0.001)");
        var values = text[(eq + 1)..].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();
        if (values.Count == 0 || values.Count > MaxValues)
            throw new ArgumentException($"--grid {text}: expected 1 to {MaxValues} values, got {values.Count}");
        if (values.Distinct().Count() != values.Count) throw new ArgumentException($"--grid {text}: a value is repeated");
        return new InnerGrid(text[..eq].Trim(), values);
    }

    public string Label(int i) => $"{Key}={Values[i]}";

    /// <summary>The options with value i of the grid; a one-line <see cref="ArgumentException"/> for a value of the wrong kind.</summary>
    public TrainOptions Apply(TrainOptions o, int i)
    {
        string v = Values[i];
        float Number(float min)
        {
            if (!float.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out float x) || !float.IsFinite(x) || x < min)
                throw new ArgumentException($"--grid {Key}: value '{v}' is not a number >= {min.ToString(CultureInfo.InvariantCulture)}");
            return x;
        }
        switch (Key)
        {
            case "lr": return o with { LearningRate = Number(0) };
            case "weight-decay": return o with { WeightDecay = Number(0) };
            case "label-smoothing": return o with { LabelSmoothing = Number(0) };
            case "mixup": return o with { Mixup = Number(0) };
            case "balanced":
                if (!bool.TryParse(v, out bool balanced)) throw new ArgumentException($"--grid balanced: value '{v}' is not true or false");
                return o with { Balanced = balanced };
            case "crop-pad":
                if (!int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int pad))
                    throw new ArgumentException($"--grid crop-pad: value '{v}' is not an integer >= 0");
                return o with { CropPad = pad };
        }
        static string Plain(string k) => k.Replace("-", "", StringComparison.Ordinal).Replace("_", "", StringComparison.Ordinal).ToLowerInvariant();
        if (o.ModelSettings.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Any(p => Plain(p.Split('=')[0]) == Plain(Key)))
            throw new ArgumentException($"--grid {Key}: --set also sets {Key}; name it in one of them");
        string settings = string.IsNullOrEmpty(o.ModelSettings) ? $"{Key}={v}" : $"{o.ModelSettings},{Key}={v}";
        Models.ModelRegistry.Preset(o.Preset, settings); // a field the preset lacks fails here, naming it and the fields
        return o with { ModelSettings = settings };
    }

    /// <summary>Checks every value against the preset now, so a wrong grid fails before any training.</summary>
    public void Check(TrainOptions o)
    {
        if (Key is "epochs" or "steps")
            throw new ArgumentException($"--grid {Key}: the epoch count is always selected; grid another setting");
        for (int i = 0; i < Values.Count; i++) Apply(o, i);
    }
}

/// <summary>What an inner selection chose (an outer fold's, <see cref="InnerChoice"/>, or the final model's, <see cref="FinalChoice"/>).</summary>
public abstract record InnerSelectionResult
{
    /// <summary>The inner groups: of an outer fold's training subjects (its test subject is in none: checked), or of all subjects.</summary>
    public required IReadOnlyList<IReadOnlyList<string>> Groups { get; init; }
    /// <summary>The grid's settings ("KEY=VALUE"), or one "" when no grid was given.</summary>
    public required IReadOnlyList<string> Settings { get; init; }
    /// <summary>Pooled inner-fold UF1 [setting][epoch − 1]: the held-out predictions of all inner groups pooled, per epoch.</summary>
    public required IReadOnlyList<IReadOnlyList<double>> PooledUf1 { get; init; }
    public required int ChosenSetting { get; init; }
    /// <summary>1-based.</summary>
    public required int ChosenEpoch { get; init; }
    /// <summary>Trainings it cost: k × settings inner ones, plus the model(s) trained with the choice.</summary>
    public required int Trainings { get; init; }
    public double Seconds { get; init; }
}

/// <summary>What the inner selection of one outer fold chose, and the outer test subject's predictions with that choice.</summary>
public sealed record InnerChoice : InnerSelectionResult
{
    public required string Subject { get; init; }
    /// <summary>The outer test subject's predictions by the model trained on all its training subjects with the choice.</summary>
    public required IReadOnlyList<Prediction> Predictions { get; init; }
}

/// <summary>
/// What the inner selection of the final model (<c>RUN/final/choice.json</c>) chose: the same selection as an outer fold's,
/// run over all subjects (no subject is held out of it: the final model has no test subject), then the final model trained
/// on all subjects with that setting, stopped after that epoch.
/// </summary>
public sealed record FinalChoice : InnerSelectionResult
{
    /// <summary>The run's <see cref="TrainOptions.Epochs"/> (the schedule's length), for the reader.</summary>
    public required int Epochs { get; init; }

    /// <summary>The one line printed and logged for it.</summary>
    public string Describe() =>
        $"final model: {(Settings[ChosenSetting].Length == 0 ? "" : Settings[ChosenSetting] + ", ")}epoch {ChosenEpoch} of {Epochs} chosen by the pooled inner UF1 " +
        $"{PooledUf1[ChosenSetting][ChosenEpoch - 1].ToString("F4", CultureInfo.InvariantCulture)} over {Groups.Count} groups of all {Groups.Sum(g => g.Count)} subjects ({Trainings} trainings)";
}

/// <summary>
/// Nested honest selection (<c>train --select inner</c>). For one outer LOSO fold: its training subjects are split into k
/// groups (<see cref="InnerSplit"/>); for every grid setting and every group a model trains on the other k − 1 groups and
/// predicts the held-out group after every epoch; per setting and epoch, the held-out predictions of all k groups are
/// pooled and scored by UF1 (the protocol's metric, computed as the outer figure is: pooled, not averaged over groups,
/// which with 1–3 clips per class in a group would be noise); the best (setting, epoch) is kept (ties: the earlier
/// setting, then the later epoch, nearer the fixed-epoch recipe); the outer test subject is then predicted once by a model
/// trained on all the fold's training subjects with that choice. Nothing in it reads the outer test subject's clips.
/// <para>
/// Cost per outer fold: k × (grid values, 1 without a grid) inner trainings + 1 outer training. The epoch count is chosen
/// within the fixed schedule of <see cref="TrainOptions.Epochs"/> (cosine over all of them): epoch e means "that schedule,
/// stopped after e epochs", as the inner models were scored. Rejected: retraining with the schedule compressed to e epochs
/// (a recipe no inner model was scored with). When the chosen setting is the run's own, the outer model is the
/// fixed-epoch fold itself, whose test predictions are recorded after every epoch (the run implies <c>--oracle</c>):
/// every random draw derives from (seed, fold, epoch), so its epoch-e predictions are exactly those of a retraining stopped
/// at e, and no further training is needed; otherwise a model with the chosen setting is trained from the fold's seed and
/// stopped at e (one more training).
/// </para>
/// <para>
/// Inner models of the same group share their seed across the grid's settings (paired comparison), and differ from the
/// outer fold's.
/// </para>
/// <para>
/// The final model (<see cref="RunFinal"/>, the one <c>predict</c> uses) is chosen by the same routine over all subjects: k
/// groups of all subjects, the same pooled UF1 and tie rule, then one training on all subjects with the choice, stopped
/// at the chosen epoch (k × g + 1 trainings, as an outer fold). Rejected: the fixed epoch count for it (what the run's
/// honest figure is not about, since the run reports the selected recipe), and the median or mode of the outer folds'
/// choices (each was made on a different subset and none on all subjects; the folds' choices stay the figure's, the
/// final's is its own).
/// </para>
/// </summary>
public static class InnerSelection
{
    public const string ChoiceFile = "choice.json";

    public static string FoldDir(string run, int index, string subject) =>
        Path.Combine(run, "inner", Path.GetFileName(LosoRunner.FoldDir(run, index, subject)));

    /// <summary>Trainings per outer fold, for help and output: "k × g + 1".</summary>
    public static string Cost(TrainOptions o)
    {
        var grid = InnerGrid.Parse(o.Grid);
        int settings = grid?.Values.Count ?? 1;
        return $"{o.InnerFolds} inner folds × {settings} setting(s) + 1 = {TrainingsPerFold(o)} trainings per outer fold" +
            (grid is null ? "" : " (+1 when a setting other than the run's own wins)");
    }

    /// <summary>
    /// Trainings per outer fold known in advance: k × (grid values, 1 without a grid) + 1; 1 without --select inner. The
    /// final model costs as much (its own selection over all subjects, then its training).
    /// </summary>
    public static int TrainingsPerFold(TrainOptions o) =>
        o.Select == "inner" ? o.InnerFolds * (InnerGrid.Parse(o.Grid)?.Values.Count ?? 1) + 1 : 1;

    /// <summary>
    /// The options the selection can work with, or a one-line <see cref="ArgumentException"/>: it picks an epoch count, so
    /// a fixed step count (<c>--steps</c>, whose epochs depend on the training set's size and so differ between the inner
    /// and outer folds) is refused, as are fewer than 2 inner folds and a malformed grid.
    /// </summary>
    public static void Check(TrainOptions o)
    {
        if (o.Steps > 0) throw new ArgumentException("--select inner picks an epoch count: give --epochs, not --steps");
        if (o.InnerFolds < 2) throw new ArgumentException($"--inner-folds {o.InnerFolds}: expected at least 2");
        InnerGrid.Parse(o.Grid)?.Check(o);
    }

    /// <summary>
    /// Runs (or, resuming, reads) the inner selection of outer fold <paramref name="outerIndex"/>. <paramref name="fixedFold"/>
    /// is that fold's fixed-epoch result with its per-epoch test predictions.
    /// </summary>
    public static InnerChoice RunFold(ClipSet data, TrainOptions o, int outerIndex, string run, Device device, bool resume, FoldResult fixedFold,
        ITrainingProgress? progress = null, TextWriter? log = null, CancellationToken cancel = default)
    {
        var watch = Stopwatch.StartNew();
        var subjects = data.Subjects;
        string outer = subjects[outerIndex];
        string dir = FoldDir(run, outerIndex, outer);
        string file = Path.Combine(dir, ChoiceFile);
        if (resume && File.Exists(file))
        {
            var done = Read(file);
            ReportDone(progress, $"{outer} inner", outerIndex, subjects.Count, o.Epochs, done.Trainings - 1); // the fold's own is reported by its runner
            return done;
        }
        if (!resume && Directory.Exists(dir)) Directory.Delete(dir, recursive: true);

        var trainSubjects = subjects.Where(s => s != outer).ToList();
        var s = Choose(data, o, trainSubjects, outer, outerIndex, subjects.Count, outerIndex, subjects.Count, dir, device, resume, progress, log, cancel);
        int trainings = s.Trainings;
        IReadOnlyList<Prediction> predictions;
        if (SameRecipe(s.Chosen, o, data))
        {
            if (fixedFold.OracleByEpoch is not { } byEpoch || byEpoch.Count < s.Epoch)
                throw new InvalidOperationException($"fold {outer}: its fixed-epoch result holds no per-epoch test predictions; rerun it with --select inner");
            predictions = byEpoch[s.Epoch - 1];
        }
        else
        {
            var retrain = FoldTrainer.RunSplit(data, trainSubjects, [outer], $"{outer} with {s.Settings[s.Setting]}", outerIndex, outerIndex, subjects.Count,
                s.Chosen with { Oracle = false, Select = "" }, Path.Combine(dir, "chosen"), device, s.Epoch, progress, log, cancel);
            trainings++;
            predictions = retrain.Predictions;
        }
        trainings++; // the outer fold's own training (the fixed-epoch one, or the retraining's)
        var choice = new InnerChoice
        {
            Subject = outer, Groups = s.Groups, Settings = s.Settings, PooledUf1 = s.PooledUf1,
            ChosenSetting = s.Setting, ChosenEpoch = s.Epoch, Trainings = trainings, Predictions = predictions, Seconds = watch.Elapsed.TotalSeconds,
        };
        FoldTrainer.WriteJsonAtomic(file, choice);
        log?.WriteLine(JsonSerializer.Serialize(new { fold = outer, inner_choice = s.Settings[s.Setting], epoch = s.Epoch, pooled_inner_uf1 = Math.Round(s.PooledUf1[s.Setting][s.Epoch - 1], 4), trainings }));
        log?.Flush();
        return choice;
    }

    /// <summary>RUN/final/inner: the inner splits of the final model's selection.</summary>
    public static string FinalInnerDir(string finalDir) => Path.Combine(finalDir, "inner");

    /// <summary>
    /// The final model under <c>--select inner</c>: runs (or, resuming, reads) the selection over all subjects, writes
    /// <c>FINAL/choice.json</c>, then trains the final model on all subjects with the chosen setting, stopped after the
    /// chosen epoch (<c>FINAL/model.safetensors</c>, whose metadata records <c>epochs</c> and <c>inner_choice</c>).
    /// Resuming, a finished choice is read and a finished model is kept; an interrupted one continues from its checkpoint.
    /// </summary>
    public static FinalChoice RunFinal(ClipSet data, TrainOptions o, string finalDir, Device device, bool resume,
        ITrainingProgress? progress = null, TextWriter? log = null, CancellationToken cancel = default)
    {
        var watch = Stopwatch.StartNew();
        var subjects = data.Subjects;
        int folds = subjects.Count;
        string file = Path.Combine(finalDir, ChoiceFile), model = Path.Combine(finalDir, FoldTrainer.FinalModelFile);
        FinalChoice choice;
        if (resume && File.Exists(file))
        {
            choice = ReadFinal(file);
            ReportDone(progress, $"{FoldTrainer.AllSubjects} inner", folds, folds + 1, o.Epochs, choice.Trainings - 1);
        }
        else
        {
            if (!resume && Directory.Exists(finalDir)) Directory.Delete(finalDir, recursive: true);
            // A model or checkpoint left from before this choice was made is not its model: trained afresh below.
            foreach (var stale in new[] { model, Path.Combine(finalDir, FoldTrainer.CheckpointFile), Path.Combine(finalDir, FoldTrainer.ResultFile) })
                if (File.Exists(stale)) File.Delete(stale);
            var s = Choose(data, o, subjects, null, folds, folds, folds, folds + 1, FinalInnerDir(finalDir), device, resume, progress, log, cancel);
            choice = new FinalChoice
            {
                Groups = s.Groups, Settings = s.Settings, PooledUf1 = s.PooledUf1, ChosenSetting = s.Setting, ChosenEpoch = s.Epoch,
                Epochs = o.Epochs, Trainings = s.Trainings + 1, Seconds = watch.Elapsed.TotalSeconds,
            };
            FoldTrainer.WriteJsonAtomic(file, choice);
            log?.WriteLine(JsonSerializer.Serialize(new { fold = "final", inner_choice = s.Settings[s.Setting], epoch = s.Epoch, pooled_inner_uf1 = Math.Round(s.PooledUf1[s.Setting][s.Epoch - 1], 4), trainings = choice.Trainings }));
            log?.Flush();
        }
        if (resume && File.Exists(model))
        {
            progress?.OnEpoch(FoldTrainer.AllSubjects, folds, folds + 1, choice.ChosenEpoch, choice.ChosenEpoch, double.NaN, 0);
            return choice;
        }
        var grid = InnerGrid.Parse(o.Grid);
        var chosen = grid?.Apply(o, choice.ChosenSetting) ?? o;
        FoldTrainer.TrainFinal(data, chosen with { Oracle = false, Select = "" }, finalDir, device, folds, progress, log, cancel, choice.ChosenEpoch,
            new Dictionary<string, string>
            {
                ["epochs"] = choice.ChosenEpoch.ToString(CultureInfo.InvariantCulture),
                ["inner_choice"] = choice.Settings[choice.ChosenSetting],
            });
        return choice;
    }

    /// <summary>Trainings a resumed run finds done, reported as done earlier so that the progress bar's count stays right.</summary>
    private static void ReportDone(ITrainingProgress? progress, string name, int foldIndex, int folds, int epochs, int count)
    {
        for (int i = 0; i < count; i++) progress?.OnEpoch(name, foldIndex, folds, epochs, epochs, double.NaN, 0);
    }

    /// <summary>The selection's outcome: the splits, the scores and the chosen (setting, 1-based epoch) with its options.</summary>
    private sealed record Selection(IReadOnlyList<IReadOnlyList<string>> Groups, IReadOnlyList<string> Settings, IReadOnlyList<IReadOnlyList<double>> PooledUf1,
        int Setting, int Epoch, TrainOptions Chosen, int Trainings);

    /// <summary>
    /// The selection itself, for an outer fold (<paramref name="outer"/> its test subject, never among
    /// <paramref name="trainSubjects"/>: checked) or for the final model (<paramref name="outer"/> null, all subjects).
    /// <paramref name="index"/> is the outer fold's index, or the fold count for the final: it seeds the split and the inner
    /// models (<see cref="InnerSeedIndex"/>), so every training of a run has a seed of its own. Inner splits are resumable.
    /// </summary>
    private static Selection Choose(ClipSet data, TrainOptions o, IReadOnlyList<string> trainSubjects, string? outer, int index, int folds,
        int progressIndex, int progressFolds, string dir, Device device, bool resume, ITrainingProgress? progress, TextWriter? log, CancellationToken cancel)
    {
        Directory.CreateDirectory(dir);
        string label = outer ?? FoldTrainer.AllSubjects;
        var groups = InnerSplit.Groups(trainSubjects, outer, o.InnerFolds, o.Seed * 0x9E37_79B9UL + (ulong)index);
        var grid = InnerGrid.Parse(o.Grid);
        int settings = grid?.Values.Count ?? 1;
        var scores = new List<IReadOnlyList<double>>();
        int trainings = 0;
        for (int g = 0; g < settings; g++)
        {
            // Per-epoch predictions of each held-out group (the FoldResult's per-epoch record; here inner held-out clips).
            var options = (grid?.Apply(o, g) ?? o) with { Oracle = true, Select = "" };
            var perGroup = new List<FoldResult>();
            for (int j = 0; j < groups.Count; j++)
            {
                var held = groups[j];
                var inner = trainSubjects.Where(s => !held.Contains(s)).ToList();
                string name = $"{label} inner {j + 1}/{groups.Count}{(grid is null ? "" : " " + grid.Label(g))}";
                string splitDir = Path.Combine(dir, $"s{g + 1}-k{j + 1}");
                string resultPath = Path.Combine(splitDir, FoldTrainer.ResultFile);
                FoldResult r;
                if (resume && File.Exists(resultPath))
                {
                    r = LosoRunner.ReadFold(resultPath);
                    progress?.OnEpoch(name, progressIndex, progressFolds, r.Epochs, r.Epochs, double.NaN, 0);
                }
                else
                    r = FoldTrainer.RunSplit(data, inner, held, name, InnerSeedIndex(folds, index, j), progressIndex, progressFolds,
                        options, splitDir, device, 0, progress, log, cancel);
                trainings++;
                // The guarantee, checked on what was actually trained and predicted.
                if ((outer is not null && r.TrainSubjects.Contains(outer)) || r.OracleByEpoch!.Any(e => e.Any(p => p.Subject == outer || !held.Contains(p.Subject))))
                    throw new InvalidOperationException($"inner selection of {label}: {(outer is null ? "a held-out subject" : "the outer test subject")} entered inner split {j + 1}");
                perGroup.Add(r);
            }
            int epochs = perGroup.Min(r => r.OracleByEpoch!.Count);
            scores.Add(Enumerable.Range(0, epochs)
                .Select(e => MetricSet.Compute(perGroup.SelectMany(r => r.OracleByEpoch![e]).ToList(), data.ClassNames.Count).Uf1).ToList());
        }

        int bestG = 0, bestE = 0;
        for (int g = 0; g < settings; g++)
            for (int e = 0; e < scores[g].Count; e++)
                if (scores[g][e] > scores[bestG][bestE] || (g == bestG && scores[g][e] == scores[bestG][bestE])) (bestG, bestE) = (g, e);
        return new Selection(groups, grid is null ? [""] : grid.Values.Select((_, i) => grid.Label(i)).ToList(),
            scores.Select(v => (IReadOnlyList<double>)v.Select(x => Math.Round(x, 6)).ToList()).ToList(),
            bestG, bestE + 1, grid?.Apply(o, bestG) ?? o, trainings);
    }

    /// <summary>
    /// A seed index per (outer fold, inner group), apart from every outer fold's (0..folds − 1), the final model's (folds)
    /// and each other's: <paramref name="outer"/> is the fold's index, or <c>folds</c> for the final model's selection, whose
    /// indices (≥ folds² + folds + 2) lie past the last fold's (≤ folds² + folds, as group &lt; k ≤ folds − 1 there).
    /// </summary>
    internal static int InnerSeedIndex(int folds, int outer, int group) => folds + 2 + outer * folds + group;

    /// <summary>True when the chosen options train exactly what the run's own do (same fields, same model config).</summary>
    private static bool SameRecipe(TrainOptions chosen, TrainOptions o, ClipSet data) =>
        chosen with { ModelSettings = "" } == o with { ModelSettings = "" } && chosen.ModelConfig(data).Differences(o.ModelConfig(data)).Count == 0;

    public static FinalChoice ReadFinal(string path) =>
        JsonSerializer.Deserialize<FinalChoice>(File.ReadAllText(path)) ?? throw new InvalidDataException($"{path}: unreadable final choice");

    public static InnerChoice Read(string path) =>
        JsonSerializer.Deserialize<InnerChoice>(File.ReadAllText(path)) ?? throw new InvalidDataException($"{path}: unreadable inner choice");

    /// <summary>The inner choices found in a run (RUN/inner/*/choice.json), in fold order; empty when it has none.</summary>
    public static IReadOnlyList<InnerChoice> ReadAll(string run)
    {
        string root = Path.Combine(run, "inner");
        return Directory.Exists(root)
            ? Directory.GetDirectories(root).OrderBy(d => d, StringComparer.Ordinal).Select(d => Path.Combine(d, ChoiceFile)).Where(File.Exists).Select(Read).ToList()
            : [];
    }
}
