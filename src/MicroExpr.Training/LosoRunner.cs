using System.Text.Json;
using MicroExpr.Tensors;

namespace MicroExpr.Training;

/// <summary>
/// Leave-one-subject-out over a clip set: one fold per subject, each trained from scratch and written to
/// RUN/folds/NN-subject/. <see cref="Merge"/> pools whatever fold results exist into the run's metrics and
/// report, so folds can be spread over processes (--fold K) and merged afterwards.
/// </summary>
public static class LosoRunner
{
    public const string OptionsFile = "options.json";

    public static string FoldDir(string run, int index, string subject) =>
        Path.Combine(run, "folds", $"{index + 1:D2}-{string.Concat(subject.Select(ch => char.IsLetterOrDigit(ch) || ch is '-' or '_' or '.' ? ch : '_'))}");

    /// <summary>RUN/final: the model trained on all subjects for 'predict'.</summary>
    public static string FinalDir(string run) => Path.Combine(run, "final");

    /// <summary>Resolves --fold: a 1-based index or a subject id.</summary>
    public static int ResolveFold(ClipSet data, string fold)
    {
        var subjects = data.Subjects;
        if (int.TryParse(fold, out int k) && k >= 1 && k <= subjects.Count) return k - 1;
        int i = subjects.ToList().IndexOf(fold);
        if (i >= 0) return i;
        throw new ArgumentException($"--fold {fold}: expected 1..{subjects.Count} or a subject id ({string.Join(", ", subjects)})");
    }

    /// <summary>
    /// Trains the folds (all, or only <paramref name="onlyFold"/>); finished folds (result.json present) are
    /// skipped when resuming; a fold with a checkpoint continues from it.
    /// </summary>
    public static IReadOnlyList<FoldResult> Train(ClipSet data, TrainOptions o, string run, Device device, bool resume, int? onlyFold = null,
        ITrainingProgress? progress = null, CancellationToken cancel = default, bool trainFinal = false)
    {
        var subjects = data.Subjects;
        if (subjects.Count < 2) throw new ArgumentException($"{data.Source}: LOSO needs at least 2 subjects; found {subjects.Count}");
        if (o.ShuffleActionUnits) data = data.WithShuffledActionUnits(o.Seed); // the control: folds and the final model alike
        if (o.Select is not ("" or "inner")) throw new ArgumentException($"--select {o.Select}: expected inner");
        // The inner selection reads each fixed-epoch fold's per-epoch test predictions (its chosen epoch, and the oracle figure).
        if (o.Select == "inner")
        {
            InnerSelection.Check(o);
            o = o with { Oracle = true };
        }
        else if (o.Grid.Length > 0) throw new ArgumentException("--grid needs --select inner");
        Directory.CreateDirectory(run);
        string optionsPath = Path.Combine(run, OptionsFile);
        var record = new RunRecord(o, data.Source, data.ClassNames, data.Frames, data.Size, subjects, data.SettingsHash, RunFingerprint.Of(data));
        if (File.Exists(optionsPath))
        {
            RunRecord? previous;
            try
            {
                previous = JsonSerializer.Deserialize<RunRecord>(File.ReadAllText(optionsPath));
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{optionsPath}: not a readable run record ({e.Message})", e);
            }
            if (!resume && onlyFold is null)
                throw new InvalidOperationException($"{run} already holds a run; pass --resume to continue it or choose another --out");
            if (previous is null) throw new InvalidDataException($"{optionsPath}: not a readable run record (null)");
            if (previous.Options != o)
                throw new InvalidOperationException($"{run}: the run was started with other options ({optionsPath}); continuing it with different ones would mix results");
            if (RunFingerprint.Differences(previous, record) is { Count: > 0 } diff)
                throw new InvalidOperationException($"{run}: the run was trained on other data ({string.Join("; ", diff)}); continuing it would mix results; choose another --out");
        }
        else
        {
            FoldTrainer.WriteJsonAtomic(optionsPath, record);
        }

        var results = new List<FoldResult>();
        using var log = new StreamWriter(Path.Combine(run, "log.jsonl"), append: true);
        for (int i = 0; i < subjects.Count; i++)
        {
            if (onlyFold is int only && only != i) continue;
            string dir = FoldDir(run, i, subjects[i]);
            string resultPath = Path.Combine(dir, FoldTrainer.ResultFile);
            FoldResult fold;
            if (File.Exists(resultPath) && resume)
            {
                fold = ReadFold(resultPath);
                progress?.OnEpoch(subjects[i], i, subjects.Count, o.Epochs, o.Epochs, double.NaN, 0);
            }
            else
            {
                if (!resume && Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
                fold = FoldTrainer.Run(data, subjects[i], i, subjects.Count, o, dir, device, progress, log, cancel);
            }
            results.Add(fold);
            if (o.Select == "inner") InnerSelection.RunFold(data, o, i, run, device, resume, fold, progress, log, cancel);
        }
        // The model 'predict' uses: trained on every subject, only for full runs (a single --fold run leaves it out). Under
        // --select inner its epoch (and grid setting) is chosen by the same inner selection, over all subjects.
        string final = FinalDir(run);
        if (trainFinal && onlyFold is null)
        {
            if (o.Select == "inner") InnerSelection.RunFinal(data, o, final, device, resume, progress, log, cancel);
            else if (!(resume && File.Exists(Path.Combine(final, FoldTrainer.FinalModelFile))))
                FoldTrainer.TrainFinal(data, o, final, device, subjects.Count, progress, log, cancel);
            else progress?.OnEpoch(FoldTrainer.AllSubjects, subjects.Count, subjects.Count + 1, o.Epochs, o.Epochs, double.NaN, 0);
        }
        return results;
    }

    public static FoldResult ReadFold(string path) =>
        JsonSerializer.Deserialize<FoldResult>(File.ReadAllText(path)) ?? throw new InvalidDataException($"{path}: unreadable fold result");

    /// <summary>Pools the fold results found in the run, computes the metrics and writes metrics.json, report.md and the PNGs.</summary>
    public static RunSummary Merge(string run)
    {
        string optionsPath = Path.Combine(run, OptionsFile);
        if (!File.Exists(optionsPath)) throw new FileNotFoundException($"{run}: no {OptionsFile}; is this a training run folder?", optionsPath);
        var record = JsonSerializer.Deserialize<RunRecord>(File.ReadAllText(optionsPath)) ?? throw new InvalidDataException($"{optionsPath}: unreadable");
        var foldsDir = Path.Combine(run, "folds");
        var folds = Directory.Exists(foldsDir)
            ? Directory.GetDirectories(foldsDir).OrderBy(d => d, StringComparer.Ordinal).Select(d => Path.Combine(d, FoldTrainer.ResultFile)).Where(File.Exists).Select(ReadFold).ToList()
            : [];
        if (folds.Count == 0) throw new InvalidOperationException($"{run}: no finished fold yet (folds/*/{FoldTrainer.ResultFile})");
        var summary = RunSummary.Create(record, folds, InnerSelection.ReadAll(run));
        Report.Write(run, summary);
        return summary;
    }
}

/// <summary>
/// What a run was started with (options.json): the options and what it was trained on, down to the cache's settings
/// hash and a fingerprint of the clips (<see cref="RunFingerprint"/>; empty in a run recorded before they were).
/// </summary>
public sealed record RunRecord(TrainOptions Options, string Data, IReadOnlyList<string> ClassNames, int Frames, int Size, IReadOnlyList<string> Subjects,
    string? SettingsHash = null, string? Fingerprint = null);

/// <summary>
/// The pooled result of a run: the honest fixed-epoch metrics first; the inner-selection figure when the run made one
/// (<see cref="Inner"/>, over the folds whose selection finished); the oracle-epoch figure beside when recorded; the
/// per-data-set figures of a composite (<see cref="PerDataset"/>, of the fixed-epoch predictions).
/// </summary>
public sealed record RunSummary(RunRecord Record, IReadOnlyList<FoldResult> Folds, MetricSet Honest, MetricSet? Oracle, double Seconds)
{
    public bool Complete => Folds.Count == Record.Subjects.Count;

    /// <summary>Pooled over the outer folds' predictions with the inner choice (<c>--select inner</c>); null without one.</summary>
    public MetricSet? Inner { get; init; }
    public IReadOnlyList<InnerChoice> InnerChoices { get; init; } = [];
    /// <summary>Per data set (<see cref="MetricSet.PerDataset"/>) of the fixed-epoch, inner and oracle predictions; empty for a single data set.</summary>
    public IReadOnlyDictionary<string, MetricSet> PerDataset { get; init; } = new Dictionary<string, MetricSet>();
    public IReadOnlyDictionary<string, MetricSet> PerDatasetInner { get; init; } = new Dictionary<string, MetricSet>();
    public IReadOnlyDictionary<string, MetricSet> PerDatasetOracle { get; init; } = new Dictionary<string, MetricSet>();
    /// <summary>All predictions of the fixed-epoch folds, pooled (the seeds' ensemble averages these).</summary>
    public IReadOnlyList<Prediction> Predictions => Folds.SelectMany(f => f.Predictions).ToList();

    public static RunSummary Create(RunRecord record, IReadOnlyList<FoldResult> folds, IReadOnlyList<InnerChoice>? inner = null)
    {
        int k = record.ClassNames.Count;
        var pooled = folds.SelectMany(f => f.Predictions).ToList();
        var honest = MetricSet.Compute(pooled, k);
        var innerPreds = inner is { Count: > 0 } ? inner.SelectMany(c => c.Predictions).ToList() : null;
        MetricSet? oracle = null;
        IReadOnlyDictionary<string, MetricSet> perOracle = new Dictionary<string, MetricSet>();
        if (folds.All(f => f.OracleByEpoch is { Count: > 0 }))
        {
            // Per fold, the epoch whose predictions score best on that fold's own test subject: what much published code reports.
            var picked = folds.SelectMany(f => f.OracleByEpoch!.OrderByDescending(e => e.Count(p => p.Label == p.Predicted)).First()).ToList();
            oracle = MetricSet.Compute(picked, k);
            perOracle = MetricSet.PerDataset(picked, k);
        }
        return new RunSummary(record, folds, honest, oracle, folds.Sum(f => f.Seconds) + (inner?.Sum(c => c.Seconds) ?? 0))
        {
            Inner = innerPreds is null ? null : MetricSet.Compute(innerPreds, k),
            InnerChoices = inner ?? [],
            PerDataset = MetricSet.PerDataset(pooled, k),
            PerDatasetInner = innerPreds is null ? new Dictionary<string, MetricSet>() : MetricSet.PerDataset(innerPreds, k),
            PerDatasetOracle = perOracle,
        };
    }
}
