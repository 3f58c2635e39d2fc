using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MicroExpr.Cli.Args;
using MicroExpr.Cli.Bench;
using MicroExpr.Models;
using MicroExpr.Tensors;
using MicroExpr.Training;

namespace MicroExpr.Cli.Commands;

/// <summary><c>microexpr train</c>: LOSO training of a preset on a preprocessed cache, with an honest report.</summary>
internal static class TrainCommand
{
    /// <summary><c>--seeds S1,S2,…</c> (shared by train and demo; declared before the specs that list it: static fields initialise in order): at least two distinct seeds; null when absent.</summary>
    internal static readonly OptionSpec SeedsOption = new("seeds", OptionKind.Text,
        "run the whole LOSO once per seed (RUN/seed-S/) and report mean ± sd of UF1 and UAR and the seeds' ensemble (mean of softmax), e.g. 1,2,3");

    public static CommandSpec Spec { get; } = new("train",
        "Train a model with leave-one-subject-out evaluation on a preprocessed cache and write a report.",
        [
            new("data", OptionKind.Text, "preprocessed cache folder (from 'microexpr preprocess' or 'microexpr synth')"),
            Recipes.Option,
            new("model", OptionKind.Text, $"model preset: {string.Join(", ", ModelRegistry.Names)}", "slstt-tiny"),
            new("pretrained", OptionKind.Text, "a pretrained ViT for the slstt presets' spatial encoder, imported in every fold: B_16_imagenet1k.pth (pytorch-pretrained-vit), a timm .pth, or a .safetensors from 'microexpr convert'"),
            new("set", OptionKind.Text, "change fields of the preset's config: KEY=VALUE[,KEY=VALUE...] (e.g. compact=symmetric-kl,compact-weight=0.1; " +
                "slstt: dropout=0.1 on the blocks' attention and MLP outputs, head-dropout=0.1 before the head, drop-path=0.1 stochastic depth 0 → rate over the blocks, " +
                "stem=conv a conv stem in place of the patch embedding)"),
            new("protocol", OptionKind.Text, "evaluation protocol (loso)", "loso"),
            new("fold", OptionKind.Text, "train and evaluate one fold only: 1-based index or subject id"),
            new("epochs", OptionKind.Int, "epochs per fold (fixed: the honest protocol never looks at the test subject)", "30", 1),
            new("batch", OptionKind.Int, "clips per batch", "8", 1),
            new("steps", OptionKind.Int, "train exactly this many steps per fold instead of --epochs (FDP's code: 500)", "0 (use --epochs)", 0),
            new("optimizer", OptionKind.Text, "adamw, adam (coupled weight decay, FDP's) or sgd", "adamw"),
            new("schedule", OptionKind.Text, "cosine (after warm-up), constant (FDP's) or step (x0.1 from epoch 30, SLSTT's)", "cosine"),
            new("transductive-stats", OptionKind.Switch, "FDP: normalise the test subject's frames by its own mean and max, as the released code does per split (labelled transductive; default: the training subjects')"),
            new("lr", OptionKind.Float, "peak learning rate (cosine schedule after warm-up)", "0.001", 0),
            new("weight-decay", OptionKind.Float, "weight decay", "0.01", 0),
            new("warmup", OptionKind.Int, "warm-up epochs", "2", 0),
            new("clip-norm", OptionKind.Float, "gradient-norm clipping (0: off)", "1", 0),
            new("no-class-weights", OptionKind.Switch, "plain cross-entropy instead of class-weighted"),
            new("label-smoothing", OptionKind.Float, "label smoothing", "0", 0),
            new("flip", OptionKind.Switch, "random horizontal flip (u channel negated)"),
            new("crop-pad", OptionKind.Int, "random crop after padding by N pixels", "0", 0),
            new("mixup", OptionKind.Float, "mixup: mix each batch with a permutation of itself by λ ~ Beta(α, α) and train on the soft targets " +
                "(class weights apply per class of the mixed target); cross-entropy losses only (slstt presets), 0: off", "0", 0),
            new("balanced", OptionKind.Switch, "class-balanced sampling: each draw picks a class uniformly, then one of its clips (with replacement; " +
                "the same steps per epoch); turns class weights off"),
            new("seed", OptionKind.Int, "random seed", "1", 0),
            SeedsOption,
            new("select", OptionKind.Text, "inner: nested honest selection. In each outer fold the training subjects are split into --inner-folds groups; " +
                "the epoch count (and one --grid setting) is chosen by the pooled UF1 of the inner held-out groups, then the test subject is predicted once. " +
                "Costs k × (grid values, 1 without --grid) + 1 trainings per outer fold (+1 when a grid value other than the run's own wins). " +
                "The final model (RUN/final) is chosen the same way over k groups of all subjects (k × g + 1 more trainings; RUN/final/choice.json). Implies --oracle"),
            new("inner-folds", OptionKind.Int, "--select inner: groups k of training subjects per outer fold", "5", 2),
            new("grid", OptionKind.Text, $"--select inner: KEY=A,B,... (at most {InnerGrid.MaxValues} values) searched beside the epoch count; KEY is lr, weight-decay, label-smoothing, crop-pad, mixup, balanced (false,true) or a --set field"),
            new("freeze", OptionKind.Text, "spatial: freeze an SLSTT-family model's spatial encoder but its final LayerNorm (train only that norm, the temporal aggregator and the head)"),
            new("con-weight", OptionKind.Float, "aie presets: λ of the contrastive term, L = CE + λ·InfoNCE (0: cross-entropy alone)", "1", 0),
            new("shuffle-aus", OptionKind.Switch, "aie presets: permute the clips' action-unit codings across clips before training (the control for the attribute embedding)"),
            new("oracle", OptionKind.Switch, "also record the 'oracle epoch' figure (epoch picked on the test subject; labelled, never the headline)"),
            new("out", OptionKind.Text, "run folder to write"),
            new("no-final", OptionKind.Switch, "skip the model trained on all subjects (RUN/final/model.safetensors, used by 'predict')"),
            new("resume", OptionKind.Switch, "continue a run in --out (finished folds are kept; a fold continues from its last checkpoint)"),
            new("device", OptionKind.Text, "auto, cpu, cuda or ilgpu-cpu", "auto"),
            new("threads", OptionKind.Int, "CPU threads", "all cores", 1),
            new("json", OptionKind.Switch, "print a final JSON line with uf1, uar, accuracy, seconds"),
            new("profile", OptionKind.Switch, "time every backend op kind during training and print a table at the end"),
            ProfileReport.RooflineOption,
            ProfileReport.TraceOption,
        ],
        "Writes RUN/options.json, RUN/log.jsonl, RUN/folds/NN-subject/{checkpoint.safetensors,result.json}, and after the\n" +
        "folds RUN/metrics.json, report.md, confusion.png, curves.png. Folds run with --fold can be pooled by 'microexpr evaluate --run RUN'.");

    public static int Run(IReadOnlyList<string> args)
    {
        if (!ArgParser.ParseOrHelp(Spec, args, out var a)) return Entry.Ok;
        string data = a.Text("data") ?? throw new CliUsageException("train: --data CACHE is required");
        string run = a.Text("out") ?? throw new CliUsageException("train: --out RUN is required");
        if (a.Text("protocol") is string p && p != "loso") throw new CliUsageException($"train: --protocol {p} is not supported (loso)");
        var recipe = Recipes.From(a, Recipes.IsMotionImageCache(data), out bool byDefault);
        var options = OptionsFrom(a, recipe);
        if (recipe != null)
            Console.Error.WriteLine(byDefault
                ? Recipes.DescribeDefault(recipe, "for a cache of single 28×28 motion images", RecipeOptions.Where(a.Has))
                : Recipes.Describe(recipe, RecipeOptions.Where(a.Has)));
        var seeds = SeedsFrom(a); // a wrong --seeds fails before any work
        if (options.Select == "inner") Console.Error.WriteLine($"--select inner: {InnerSelection.Cost(options)}");
        OutFolder.Prepare("out", run);
        var device = DeviceOption.Resolve(a);
        var watch = Stopwatch.StartNew();
        // Only the kinds the preset reads (inputs and its loss's targets) are loaded.
        var clips = ClipSet.FromCache(data, CacheKinds.Read(ModelRegistry.Preset(options.Preset, options.ModelSettings)));
        Console.Error.WriteLine($"data: {clips.Clips.Count} clips, {clips.Subjects.Count} subjects, classes {string.Join("/", clips.ClassNames)}, {string.Join(", ", clips.Loaded)}");
        Console.Error.WriteLine($"classes: {ClassCheck.Describe(clips)}");
        foreach (var w in ClassCheck.Warnings(clips)) Console.Error.WriteLine($"warning: {w}");
        int? fold = a.Text("fold") is string f ? LosoRunner.ResolveFold(clips, f) : null;
        var progress = new TrainingProgressBar(TrainingProgressBar.Trainings(options, fold is null ? clips.Subjects.Count : 1, seeds?.Count ?? 1, final: !a.Switch("no-final") && fold is null));
        string? roofline = a.Text("roofline");
        ProfileReport.CheckRoofline(roofline, device, CpuThreads.Count);
        string? trace = a.Text("trace");
        ProfileReport.CheckTrace(trace);
        bool profile = a.Switch("profile") || roofline != null || trace != null;
        OpProfiler.Reset();
        OpProfiler.Enabled = profile;
        OpTrace.Enabled = trace != null;
        var trainWatch = Stopwatch.StartNew();
        if (seeds != null)
            SeedRuns.Train(clips, options, seeds, run, device, a.Switch("resume"), fold, progress, trainFinal: !a.Switch("no-final"));
        else
            LosoRunner.Train(clips, options, run, device, a.Switch("resume"), fold, progress, trainFinal: !a.Switch("no-final"));
        OpProfiler.Enabled = false;
        progress.Done();
        // The final model's own inner choice (--select inner), in one line.
        string finalChoice = Path.Combine(LosoRunner.FinalDir(seeds is null ? run : SeedRuns.SeedDir(run, seeds[0])), InnerSelection.ChoiceFile);
        if (options.Select == "inner" && fold is null && !a.Switch("no-final") && File.Exists(finalChoice))
            Console.Error.WriteLine(InnerSelection.ReadFinal(finalChoice).Describe());
        if (a.Switch("profile"))
            ProfileReport.Write(Console.Error, OpProfiler.Snapshot(), trainWatch.Elapsed.TotalMilliseconds, CpuThreads.Count, device,
                $"training ({options.Preset}, {device.Name})");
        if (trace != null) ProfileReport.WriteTrace(trace, $"microexpr train {options.Preset}", Console.Error);
        if (roofline != null) ProfileReport.WriteRoofline(roofline, OpProfiler.Snapshot(), device, CpuThreads.Count, $"training {options.Preset}", Console.Error);
        return Finish(run, a.Switch("json"), watch.Elapsed.TotalSeconds);
    }

    /// <summary>The options whose values a recipe sets (listed at the start of a recipe run when given explicitly; --set merges instead).</summary>
    static readonly string[] RecipeOptions = ["model", "epochs", "batch", "steps", "optimizer", "schedule", "lr", "weight-decay", "warmup", "clip-norm",
        "no-class-weights", "label-smoothing", "flip", "crop-pad", "freeze", "mixup", "balanced"];

    /// <param name="recipe">the run's recipe (<see cref="Recipes.From(ParsedArgs, bool, out bool)"/>), null for none</param>
    internal static TrainOptions OptionsFrom(ParsedArgs a, Recipe? recipe)
    {
        // A recipe replaces the defaults; every option given explicitly still wins (--set adds to the recipe's fields).
        var d = recipe?.Train ?? new TrainOptions();
        string pretrained = a.Text("pretrained") ?? "";
        if (recipe is { Pretrained.Length: > 0 } && pretrained.Length == 0) throw new CliUsageException(Recipes.SlsttPretrainedNeeded);
        if (pretrained.Length > 0 && !File.Exists(pretrained)) throw new CliUsageException($"--pretrained {pretrained}: file not found");
        if (a.Has("threads")) CpuThreads.Count = a.Int("threads", Environment.ProcessorCount);
        string preset = a.Text("model") ?? d.Preset;
        if (!ModelRegistry.IsPreset(preset)) throw new CliUsageException($"--model {preset}: unknown preset; known: {string.Join(", ", ModelRegistry.Names)}");
        string opt = a.Text("optimizer") ?? d.Optimizer;
        if (opt is not ("adamw" or "adam" or "sgd")) throw new CliUsageException($"--optimizer {opt}: expected adamw, adam or sgd");
        string schedule = a.Text("schedule") ?? d.Schedule;
        if (schedule is not ("cosine" or "constant" or "step")) throw new CliUsageException($"--schedule {schedule}: expected cosine, constant or step");
        var o = AuOptions(a, preset, d) with
        {
            Preset = preset,
            ModelSettings = ModelSettingsFrom(a, preset, preset == d.Preset ? d.ModelSettings : ""),
            Pretrained = pretrained.Length > 0 ? Path.GetFullPath(pretrained) : d.Pretrained,
            Epochs = a.Int("epochs", d.Epochs),
            BatchSize = a.Int("batch", d.BatchSize),
            Optimizer = opt,
            Steps = a.Int("steps", d.Steps),
            Schedule = schedule,
            TransductiveStatistics = a.Switch("transductive-stats") || d.TransductiveStatistics,
            LearningRate = (float)a.Float("lr", d.LearningRate),
            WeightDecay = (float)a.Float("weight-decay", d.WeightDecay),
            WarmupEpochs = a.Int("warmup", d.WarmupEpochs),
            ClipNorm = (float)a.Float("clip-norm", d.ClipNorm),
            ClassWeights = !a.Switch("no-class-weights") && d.ClassWeights,
            LabelSmoothing = (float)a.Float("label-smoothing", d.LabelSmoothing),
            Flip = a.Switch("flip") || d.Flip,
            CropPad = a.Int("crop-pad", d.CropPad),
            Mixup = (float)a.Float("mixup", d.Mixup),
            Balanced = a.Switch("balanced") || d.Balanced,
            Seed = (ulong)a.Int("seed", (int)d.Seed),
            Oracle = a.Switch("oracle") || d.Oracle || a.Text("select") == "inner",
        };
        return SelectionOptions(a, o);
    }

    internal static IReadOnlyList<ulong>? SeedsFrom(ParsedArgs a)
    {
        if (a.Text("seeds") is not string text) return null;
        if (a.Has("seed")) throw new CliUsageException("--seeds and --seed: give one of them");
        try
        {
            return SeedRuns.Parse(text);
        }
        catch (ArgumentException e)
        {
            throw new CliUsageException(e.Message);
        }
    }

    /// <summary>--select, --inner-folds, --grid and --freeze, checked now (a wrong grid or part fails before any work).</summary>
    private static TrainOptions SelectionOptions(ParsedArgs a, TrainOptions o)
    {
        string select = a.Text("select") ?? "";
        if (select is not ("" or "inner")) throw new CliUsageException($"--select {select}: expected inner");
        if (select == "" && (a.Has("inner-folds") || a.Has("grid"))) throw new CliUsageException($"--{(a.Has("grid") ? "grid" : "inner-folds")} needs --select inner");
        string freeze = a.Text("freeze") ?? o.Freeze; // a recipe's (slstt-official: spatial) unless given
        o = o with { Select = select, InnerFolds = a.Int("inner-folds", o.InnerFolds), Grid = a.Text("grid") ?? "", Freeze = freeze };
        try
        {
            if (select == "inner") InnerSelection.Check(o);
            if (freeze.Length > 0)
            {
                // The probe is the preset at its own image size; when the --set fields do not fit that size (patch-size=7 at
                // slstt-tiny's 32 px, for a 28 px cache) the fold start checks --freeze instead (Freezing.Apply there).
                using var probe = Probe(o);
                if (probe != null) Freezing.Apply(probe, freeze);
            }
            // --mixup with a loss that takes hard labels only is refused by FoldTrainer.CheckMixup when the first fold starts,
            // before any step (the loss comes from a model fitted to the data, which is not loaded yet).
        }
        catch (ArgumentException e)
        {
            throw new CliUsageException(e.Message);
        }
        return o;
    }

    /// <summary>The preset with its --set fields at the preset's own size, or null when those fields do not fit that size.</summary>
    static IMerModel? Probe(TrainOptions o)
    {
        var config = ModelRegistry.Preset(o.Preset, o.ModelSettings);
        try
        {
            return ModelRegistry.Create(config, new Rng(1));
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>--set, checked against the preset now (an unknown field fails before any work), "" when absent.</summary>
    /// <param name="recipe">the recipe's own --set fields for this preset ("" for none): the user's come after them, so theirs win</param>
    internal static string ModelSettingsFrom(ParsedArgs a, string preset, string recipe = "")
    {
        string user = a.Text("set")?.Trim() ?? "";
        string settings = string.Join(",", new[] { recipe, user }.Where(x => x.Length > 0));
        try
        {
            ModelRegistry.Preset(preset, settings);
        }
        catch (ArgumentException e)
        {
            throw new CliUsageException(e.Message);
        }
        return settings;
    }

    /// <summary>
    /// <c>--con-weight</c> and <c>--shuffle-aus</c> (shared by train and demo): refused with a usage error for a preset that
    /// has no contrastive term, or (shuffle) reads no action units.
    /// </summary>
    internal static TrainOptions AuOptions(ParsedArgs a, string preset, TrainOptions o)
    {
        var config = ModelRegistry.Preset(preset);
        if (a.Has("con-weight"))
        {
            if (config is not AieConfig) throw new CliUsageException($"--con-weight applies to the aie presets (aie-tiny, aie), not {preset}");
            o = o with { ContrastiveWeight = (float)a.Float("con-weight", 1) };
        }
        if (a.Switch("shuffle-aus"))
        {
            if (!o.WithOverrides(config).Targets.Any(t => t.Kind == InputKind.ActionUnits))
                throw new CliUsageException($"--shuffle-aus: {preset}{(o.ContrastiveWeight == 0 ? " with --con-weight 0" : "")} reads no action units");
            o = o with { ShuffleActionUnits = true };
        }
        return o;
    }

    /// <summary>Pools the fold results in RUN, writes the report and prints the summary (and the JSON line).</summary>
    internal static int Finish(string run, bool json, double seconds)
    {
        if (SeedRuns.IsSeedsRun(run)) return FinishSeeds(run, json, seconds);
        var s = LosoRunner.Merge(run);
        var h = s.Honest;
        // With --json, stdout holds only the JSON line: the summary for people goes to stderr.
        var people = json ? Console.Error : Console.Out;
        Output.RunSummaryTable.Write(people, s);
        people.WriteLine($"report: {Path.Combine(run, "report.md")}");
        if (json)
            Console.Out.WriteLine(JsonSerializer.Serialize(new
            {
                uf1 = Math.Round(h.Uf1, 4), uar = Math.Round(h.Uar, 4), accuracy = Math.Round(h.Accuracy, 4), seconds = Math.Round(seconds, 1),
                folds = s.Folds.Count, complete = s.Complete, clips = h.Count, run,
                inner = s.Inner is { } i ? new { uf1 = Math.Round(i.Uf1, 4), uar = Math.Round(i.Uar, 4) } : null,
                oracle_epoch = s.Oracle is { } x ? new { uf1 = Math.Round(x.Uf1, 4), uar = Math.Round(x.Uar, 4) } : null,
                per_dataset = s.PerDataset.Count == 0 ? null : s.PerDataset.ToDictionary(kv => kv.Key, kv => new { uf1 = Math.Round(kv.Value.Uf1, 4), uar = Math.Round(kv.Value.Uar, 4) }),
            }));
        return Entry.Ok;
    }

    /// <summary>A multi-seed run (<c>--seeds</c>): merges every seed and prints the spread and the ensemble.</summary>
    private static int FinishSeeds(string run, bool json, double seconds)
    {
        var s = SeedRuns.Merge(run);
        var people = json ? Console.Error : Console.Out;
        Output.RunSummaryTable.Write(people, s);
        people.WriteLine($"report: {Path.Combine(run, "report.md")}");
        if (json)
            Console.Out.WriteLine(JsonSerializer.Serialize(new
            {
                uf1 = Math.Round(s.Uf1.Mean, 4), uf1_sd = Math.Round(s.Uf1.Sd, 4), uar = Math.Round(s.Uar.Mean, 4), uar_sd = Math.Round(s.Uar.Sd, 4),
                ensemble = new { uf1 = Math.Round(s.Ensemble.Uf1, 4), uar = Math.Round(s.Ensemble.Uar, 4), accuracy = Math.Round(s.Ensemble.Accuracy, 4) },
                seeds = s.Runs.Select(r => new { seed = r.Seed, uf1 = Math.Round(r.Summary.Honest.Uf1, 4), uar = Math.Round(r.Summary.Honest.Uar, 4) }).ToArray(),
                seconds = Math.Round(seconds, 1), complete = s.Complete, run,
            }));
        return Entry.Ok;
    }
}
