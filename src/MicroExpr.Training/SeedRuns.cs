using System.Globalization;
using System.Text;
using System.Text.Json;
using MicroExpr.Tensors;

namespace MicroExpr.Training;

/// <summary>What a multi-seed run was started with (RUN/seeds.json); a resumed run must name the same seeds.</summary>
public sealed record SeedsRecord(IReadOnlyList<ulong> Seeds);

/// <summary>Mean and sample standard deviation (n − 1) of one figure over the seeds; sd is 0 for one seed.</summary>
public sealed record Spread(double Mean, double Sd)
{
    public static Spread Of(IReadOnlyList<double> v)
    {
        double mean = v.Average();
        double sd = v.Count < 2 ? 0 : Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Count - 1));
        return new Spread(mean, sd);
    }

    public string Text => $"{Mean.ToString("F3", CultureInfo.InvariantCulture)} ± {Sd.ToString("F3", CultureInfo.InvariantCulture)}";
}

/// <summary>
/// A recipe judged over seeds (<c>--seeds 1,2,3</c>): one whole LOSO run per seed in RUN/seed-S/ (each an ordinary run:
/// resumable, mergeable, with its own report), then the mean ± sd of each seed's pooled honest UF1 and UAR (and of the
/// inner-selection and oracle figures when recorded), and the seeds' ensemble: per clip the mean of the seeds' softmax
/// probabilities, arg-max (ties: the lower class index), pooled and scored like one run. The sd is the sample sd (n − 1),
/// the spread a reader should expect of another seed; rejected: the population sd (n), which understates it at n = 3.
/// The ensemble is of the fixed-epoch predictions, over the clips every seed has predicted. Only the first seed trains
/// the final model for <c>predict</c> (RUN/seed-S/final).
/// </summary>
public static class SeedRuns
{
    public const string SeedsFile = "seeds.json";

    public static string SeedDir(string run, ulong seed) => Path.Combine(run, $"seed-{seed.ToString(CultureInfo.InvariantCulture)}");

    public static bool IsSeedsRun(string run) => File.Exists(Path.Combine(run, SeedsFile));

    /// <summary>"1,2,3" → [1, 2, 3]; a one-line <see cref="ArgumentException"/> for fewer than two, a repeat or a non-number.</summary>
    public static IReadOnlyList<ulong> Parse(string text)
    {
        var seeds = new List<ulong>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!ulong.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out ulong s) || s > int.MaxValue)
                throw new ArgumentException($"--seeds {text}: '{part}' is not a seed (an integer 0..{int.MaxValue})");
            if (seeds.Contains(s)) throw new ArgumentException($"--seeds {text}: seed {s} is repeated");
            seeds.Add(s);
        }
        if (seeds.Count < 2) throw new ArgumentException($"--seeds {text}: give at least two seeds (one seed is --seed)");
        return seeds;
    }

    /// <summary>Trains every seed's LOSO run (all folds or <paramref name="onlyFold"/>), skipping what a resumed run has finished.</summary>
    public static void Train(ClipSet data, TrainOptions o, IReadOnlyList<ulong> seeds, string run, Device device, bool resume, int? onlyFold = null,
        ITrainingProgress? progress = null, CancellationToken cancel = default, bool trainFinal = false)
    {
        Directory.CreateDirectory(run);
        string path = Path.Combine(run, SeedsFile);
        if (File.Exists(path))
        {
            var previous = ReadRecord(path);
            if (!resume && onlyFold is null)
                throw new InvalidOperationException($"{run} already holds a run; pass --resume to continue it or choose another --out");
            if (!previous.Seeds.SequenceEqual(seeds))
                throw new InvalidOperationException($"{run}: the run was started with --seeds {string.Join(",", previous.Seeds)}; continuing it with --seeds {string.Join(",", seeds)} would mix results");
        }
        else
        {
            if (File.Exists(Path.Combine(run, LosoRunner.OptionsFile)))
                throw new InvalidOperationException($"{run} holds a single-seed run; choose another --out for --seeds");
            FoldTrainer.WriteJsonAtomic(path, new SeedsRecord(seeds));
        }
        foreach (var seed in seeds)
            LosoRunner.Train(data, o with { Seed = seed }, SeedDir(run, seed), device, resume, onlyFold, progress, cancel, trainFinal && seed == seeds[0]);
    }

    private static SeedsRecord ReadRecord(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<SeedsRecord>(File.ReadAllText(path)) is { Seeds.Count: > 0 } r ? r : throw new InvalidDataException($"{path}: no seeds listed");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not a readable seeds record ({e.Message})", e);
        }
    }

    /// <summary>Merges every seed's run (each writes its own report) and writes RUN/metrics.json and RUN/report.md over the seeds.</summary>
    public static SeedsSummary Merge(string run)
    {
        var record = ReadRecord(Path.Combine(run, SeedsFile));
        var runs = new List<(ulong Seed, RunSummary Summary)>();
        foreach (var seed in record.Seeds)
        {
            string dir = SeedDir(run, seed);
            string folds = Path.Combine(dir, "folds");
            // A seed with no finished fold yet is left out, and the summary says it is partial.
            if (!File.Exists(Path.Combine(dir, LosoRunner.OptionsFile)) || !Directory.Exists(folds) ||
                !Directory.GetDirectories(folds).Any(d => File.Exists(Path.Combine(d, FoldTrainer.ResultFile)))) continue;
            runs.Add((seed, LosoRunner.Merge(dir)));
        }
        if (runs.Count == 0) throw new InvalidOperationException($"{run}: no seed has a finished fold yet ({string.Join(", ", record.Seeds.Select(s => Path.GetFileName(SeedDir(run, s))))})");
        var summary = SeedsSummary.Create(record, runs);
        WriteReport(run, summary);
        return summary;
    }

    private static object Figure(MetricSet m) => new { uf1 = Math.Round(m.Uf1, 4), uar = Math.Round(m.Uar, 4), accuracy = Math.Round(m.Accuracy, 4), clips = m.Count };
    private static object? Figure(Spread? s) => s is null ? null : new { mean = Math.Round(s.Mean, 4), sd = Math.Round(s.Sd, 4) };

    private static void WriteReport(string run, SeedsSummary s)
    {
        var metrics = new
        {
            complete = s.Complete,
            seeds = s.Record.Seeds,
            per_seed = s.Runs.Select(r => new
            {
                seed = r.Seed, complete = r.Summary.Complete, folds = r.Summary.Folds.Count,
                uf1 = Math.Round(r.Summary.Honest.Uf1, 4), uar = Math.Round(r.Summary.Honest.Uar, 4), accuracy = Math.Round(r.Summary.Honest.Accuracy, 4),
                inner = r.Summary.Inner is { } i ? Figure(i) : null,
                oracle_epoch = r.Summary.Oracle is { } o ? Figure(o) : null,
            }).ToArray(),
            uf1 = Figure(s.Uf1), uar = Figure(s.Uar),
            inner = s.InnerUf1 is null ? null : new { uf1 = Figure(s.InnerUf1), uar = Figure(s.InnerUar) },
            oracle_epoch = s.OracleUf1 is null ? null : new { uf1 = Figure(s.OracleUf1), uar = Figure(s.OracleUar), note = "epoch chosen on each test subject: optimistic, for comparison with papers only" },
            ensemble = Figure(s.Ensemble),
            ensemble_per_dataset = s.EnsemblePerDataset.ToDictionary(kv => kv.Key, kv => Figure(kv.Value)),
            per_dataset = s.PerDataset.ToDictionary(kv => kv.Key, kv => new { uf1 = Figure(kv.Value.Uf1), uar = Figure(kv.Value.Uar) }),
            sd_note = "sample standard deviation (n - 1) over the seeds",
        };
        FoldTrainer.WriteJsonAtomic(Path.Combine(run, "metrics.json"), metrics);
        File.WriteAllText(Path.Combine(run, "report.md"), Markdown(s));
    }

    public static string Markdown(SeedsSummary s)
    {
        static string F(double v) => v.ToString("F3", CultureInfo.InvariantCulture);
        var o = s.Runs[0].Summary.Record.Options;
        var sb = new StringBuilder();
        sb.AppendLine($"# LOSO over {s.Record.Seeds.Count} seeds: {o.Preset} on {Path.GetFileName(s.Runs[0].Summary.Record.Data.TrimEnd('/'))}");
        sb.AppendLine();
        if (!s.Complete) sb.AppendLine($"**Partial**: {s.Runs.Count(r => r.Summary.Complete)} of {s.Record.Seeds.Count} seeds finished; the figures pool what has.\n");
        sb.AppendLine("Honest protocol: fixed epochs, nothing looks at the test subject. Mean ± sample sd (n − 1) over the seeds.\n");
        sb.AppendLine("| seed | UF1 | UAR | accuracy |" + (s.InnerUf1 is null ? "" : " inner UF1 / UAR |") + (s.OracleUf1 is null ? "" : " *oracle* UF1 / UAR |"));
        sb.AppendLine("|---|---|---|---|" + (s.InnerUf1 is null ? "" : "---|") + (s.OracleUf1 is null ? "" : "---|"));
        foreach (var (seed, r) in s.Runs)
            sb.AppendLine($"| {seed} | {F(r.Honest.Uf1)} | {F(r.Honest.Uar)} | {F(r.Honest.Accuracy)} |" +
                (s.InnerUf1 is null ? "" : r.Inner is { } i ? $" {F(i.Uf1)} / {F(i.Uar)} |" : " - |") +
                (s.OracleUf1 is null ? "" : r.Oracle is { } x ? $" *{F(x.Uf1)} / {F(x.Uar)}* |" : " - |"));
        sb.AppendLine($"| **mean ± sd** | **{s.Uf1.Text}** | **{s.Uar.Text}** | |" + (s.InnerUf1 is null ? "" : $" {s.InnerUf1.Text} / {s.InnerUar!.Text} |") +
            (s.OracleUf1 is null ? "" : $" *{s.OracleUf1.Text} / {s.OracleUar!.Text}* |"));
        sb.AppendLine($"| ensemble (mean of the seeds' softmax) | {F(s.Ensemble.Uf1)} | {F(s.Ensemble.Uar)} | {F(s.Ensemble.Accuracy)} |");
        if (s.OracleUf1 is not null) sb.AppendLine("\n*Oracle*: the epoch picked on each test subject — looks at test labels, for comparison with published numbers only.");
        if (s.PerDataset.Count > 0)
        {
            sb.AppendLine("\n## Per data set (fixed epochs; mean ± sd over the seeds, and the ensemble)\n");
            sb.AppendLine("| data set | UF1 | UAR | ensemble UF1 / UAR |");
            sb.AppendLine("|---|---|---|---|");
            foreach (var (name, d) in s.PerDataset)
                sb.AppendLine($"| {name} | {d.Uf1.Text} | {d.Uar.Text} | {(s.EnsemblePerDataset.TryGetValue(name, out var e) ? $"{F(e.Uf1)} / {F(e.Uar)}" : "-")} |");
        }
        sb.AppendLine("\nEach seed's own report: " + string.Join(", ", s.Runs.Select(r => $"[seed {r.Seed}](seed-{r.Seed}/report.md)")) + ".");
        return sb.ToString();
    }
}

/// <summary>The figures of a multi-seed run (<see cref="SeedRuns"/>).</summary>
public sealed record SeedsSummary(SeedsRecord Record, IReadOnlyList<(ulong Seed, RunSummary Summary)> Runs, Spread Uf1, Spread Uar, MetricSet Ensemble)
{
    public bool Complete => Runs.Count == Record.Seeds.Count && Runs.All(r => r.Summary.Complete);
    public Spread? InnerUf1 { get; init; }
    public Spread? InnerUar { get; init; }
    public Spread? OracleUf1 { get; init; }
    public Spread? OracleUar { get; init; }
    /// <summary>Per data set: mean ± sd over the seeds of the fixed-epoch UF1 and UAR.</summary>
    public IReadOnlyDictionary<string, (Spread Uf1, Spread Uar)> PerDataset { get; init; } = new Dictionary<string, (Spread, Spread)>();
    public IReadOnlyDictionary<string, MetricSet> EnsemblePerDataset { get; init; } = new Dictionary<string, MetricSet>();

    public static SeedsSummary Create(SeedsRecord record, IReadOnlyList<(ulong Seed, RunSummary Summary)> runs)
    {
        int k = runs[0].Summary.Record.ClassNames.Count;
        var ensemble = EnsembleOf(runs.Select(r => r.Summary.Predictions).ToList(), k);
        Spread? SpreadOf(Func<RunSummary, MetricSet?> pick, Func<MetricSet, double> value) =>
            runs.All(r => pick(r.Summary) is not null) ? Spread.Of(runs.Select(r => value(pick(r.Summary)!)).ToList()) : null;
        var datasets = runs[0].Summary.PerDataset.Keys.Where(d => runs.All(r => r.Summary.PerDataset.ContainsKey(d))).ToList();
        return new SeedsSummary(record, runs, Spread.Of(runs.Select(r => r.Summary.Honest.Uf1).ToList()), Spread.Of(runs.Select(r => r.Summary.Honest.Uar).ToList()),
            MetricSet.Compute(ensemble, k))
        {
            InnerUf1 = SpreadOf(r => r.Inner, m => m.Uf1), InnerUar = SpreadOf(r => r.Inner, m => m.Uar),
            OracleUf1 = SpreadOf(r => r.Oracle, m => m.Uf1), OracleUar = SpreadOf(r => r.Oracle, m => m.Uar),
            PerDataset = datasets.ToDictionary(d => d, d => (Spread.Of(runs.Select(r => r.Summary.PerDataset[d].Uf1).ToList()), Spread.Of(runs.Select(r => r.Summary.PerDataset[d].Uar).ToList()))),
            EnsemblePerDataset = MetricSet.PerDataset(ensemble, k),
        };
    }

    /// <summary>
    /// Per clip predicted by every seed: the mean of the seeds' probabilities and its arg-max (ties: the lower class index),
    /// in the first seed's order. A clip whose label differs between seeds means the runs read different data: refused.
    /// </summary>
    public static List<Prediction> EnsembleOf(IReadOnlyList<IReadOnlyList<Prediction>> seeds, int classes)
    {
        var byClip = seeds.Select(s => s.ToDictionary(p => p.Clip)).ToList();
        var result = new List<Prediction>();
        foreach (var first in seeds[0])
        {
            if (!byClip.All(d => d.ContainsKey(first.Clip))) continue;
            var mean = new double[classes];
            foreach (var d in byClip)
            {
                var p = d[first.Clip];
                if (p.Label != first.Label) throw new InvalidDataException($"clip {first.Clip} has label {first.Label} in one seed's run and {p.Label} in another's: the runs read different data");
                for (int c = 0; c < classes; c++) mean[c] += p.Probabilities[c];
            }
            int arg = 0;
            for (int c = 1; c < classes; c++) if (mean[c] > mean[arg]) arg = c;
            result.Add(first with { Predicted = arg, Probabilities = mean.Select(v => (float)(v / byClip.Count)).ToArray() });
        }
        return result;
    }
}
