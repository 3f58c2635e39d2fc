using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MicroExpr.Data.Motion;
using MicroExpr.Models;
using MicroExpr.Nn;
using MicroExpr.Tensors;
using MicroExpr.Tensors.Autograd;

namespace MicroExpr.Training;

/// <summary>What one leave-one-subject-out fold produced.</summary>
public sealed record FoldResult
{
    public required string Subject { get; init; }
    public required int Epochs { get; init; }
    public required IReadOnlyList<string> TrainSubjects { get; init; }
    public required IReadOnlyList<Prediction> Predictions { get; init; }
    public required IReadOnlyList<double> EpochLoss { get; init; }
    /// <summary>Share of training clips (augmented, as seen in that epoch's steps) whose arg-max logit was right, per epoch.</summary>
    public IReadOnlyList<double> EpochTrainAccuracy { get; init; } = [];
    /// <summary>Test predictions after every epoch (only with --oracle): used for the labelled "oracle epoch" figure, never for the honest one.</summary>
    public IReadOnlyList<IReadOnlyList<Prediction>>? OracleByEpoch { get; init; }
    public double Seconds { get; init; }
    /// <summary>For a model that reconstructs the dynamic image (FDP): target and σ(D̂) of the first test clips, for the report.</summary>
    public IReadOnlyList<Reconstruction>? Reconstructions { get; init; }
}

/// <summary>One clip's dynamic image [S, S] (the cache's target) beside the model's reconstruction σ(D̂), both in [0, 1].</summary>
public sealed record Reconstruction(string Clip, int Size, float[] Target, float[] Predicted);

/// <summary>Reports training progress (fold, epoch, loss) to whoever shows it.</summary>
public interface ITrainingProgress
{
    void OnEpoch(string fold, int foldIndex, int folds, int epoch, int epochs, double loss, double seconds);
}

/// <summary>
/// Trains and evaluates one fold: a fresh model on every subject but the test subject, a fixed number of
/// epochs (nothing looks at the test subject), then predictions for the test subject's clips. Every
/// epoch ends with an atomic checkpoint (model, optimizer state, losses); a resumed fold continues from
/// it and reaches the same result as an uninterrupted run, because every random draw is derived from
/// (seed, fold, epoch) and the kernels are deterministic.
/// </summary>
public static class FoldTrainer
{
    public const string CheckpointFile = "checkpoint.safetensors";
    public const string ResultFile = "result.json";

    public static FoldResult Run(ClipSet data, string testSubject, int foldIndex, int folds, TrainOptions o, string foldDir, Device device,
        ITrainingProgress? progress = null, TextWriter? log = null, CancellationToken cancel = default)
    {
        var watch = Stopwatch.StartNew();
        var train = data.Clips.Where(c => c.Subject != testSubject).ToList();
        var test = data.Clips.Where(c => c.Subject == testSubject).ToList();
        if (test.Count == 0) throw new ArgumentException($"fold '{testSubject}': no clips of that subject in {data.Source}");
        var trainSubjects = train.Select(c => c.Subject).Distinct().OrderBy(s => s, StringComparer.Ordinal).ToList();
        // The LOSO guarantee, checked rather than assumed.
        if (trainSubjects.Contains(testSubject) || train.Any(c => test.Contains(c)))
            throw new InvalidOperationException($"LOSO violated: test subject {testSubject} appears in the training set");
        if (train.Count == 0) throw new ArgumentException($"fold '{testSubject}': no training clips (only one subject in {data.Source})");
        return Train(data, train, test, testSubject, trainSubjects, foldIndex, folds, o, foldDir, device, progress, log, cancel, watch);
    }

    /// <summary>
    /// Trains on the clips of <paramref name="trainSubjects"/> and predicts those of <paramref name="heldOutSubjects"/>
    /// (both lists of subject ids, disjoint: checked), for the inner folds and the outer retraining of
    /// <see cref="InnerSelection"/>. <paramref name="seedIndex"/> plays the fold index's part in the seed (distinct per
    /// split); <paramref name="stopAfter"/> &gt; 0 stops after that many epochs of the schedule the options define (the
    /// learning rate follows the full <see cref="TrainOptions.Epochs"/> schedule, as in the runs the choice was scored on).
    /// </summary>
    public static FoldResult RunSplit(ClipSet data, IReadOnlyCollection<string> trainSubjects, IReadOnlyCollection<string> heldOutSubjects, string name,
        int seedIndex, int foldIndex, int folds, TrainOptions o, string dir, Device device, int stopAfter = 0,
        ITrainingProgress? progress = null, TextWriter? log = null, CancellationToken cancel = default)
    {
        var watch = Stopwatch.StartNew();
        if (trainSubjects.Intersect(heldOutSubjects).FirstOrDefault() is string both)
            throw new InvalidOperationException($"split '{name}': subject {both} is on both sides");
        var train = data.Clips.Where(c => trainSubjects.Contains(c.Subject)).ToList();
        var test = data.Clips.Where(c => heldOutSubjects.Contains(c.Subject)).ToList();
        if (train.Count == 0 || test.Count == 0) throw new ArgumentException($"split '{name}': {(train.Count == 0 ? "no training" : "no held-out")} clips in {data.Source}");
        var ordered = trainSubjects.OrderBy(s => s, StringComparer.Ordinal).ToList();
        return Train(data, train, test, name, ordered, foldIndex, folds, o, dir, device, progress, log, cancel, watch, seedIndex, stopAfter);
    }

    /// <summary>
    /// Trains the model that 'predict' uses: every clip of every subject, the same options and epochs as the folds
    /// (nothing is evaluated: there is no held-out subject). Writes DIR/model.safetensors with the model config.
    /// Under <c>--select inner</c> (<see cref="InnerSelection.RunFinal"/>) <paramref name="stopAfter"/> &gt; 0 stops it after
    /// the chosen epoch of the options' schedule, and <paramref name="metadata"/> (the choice) is written into the model file;
    /// without, both are unset and the file is what it always was.
    /// </summary>
    public static void TrainFinal(ClipSet data, TrainOptions o, string dir, Device device, int folds, ITrainingProgress? progress = null,
        TextWriter? log = null, CancellationToken cancel = default, int stopAfter = 0, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var subjects = data.Subjects;
        Train(data, data.Clips.ToList(), [], AllSubjects, subjects, folds, folds + 1, o, dir, device, progress, log, cancel, Stopwatch.StartNew(),
            stopAfter: stopAfter, finalMetadata: metadata);
    }

    public const string FinalModelFile = "model.safetensors";

    /// <summary>The final model's name where a fold's test subject would stand (progress, logs, its inner splits' label).</summary>
    public const string AllSubjects = "all subjects";

    /// <summary>--mixup: a valid α, and a loss that takes soft targets; else a one-line <see cref="ArgumentException"/>.</summary>
    public static void CheckMixup(TrainOptions o, IMerModelConfig cfg, MerLoss loss)
    {
        if (o.Mixup == 0) return;
        if (!(o.Mixup > 0 && float.IsFinite(o.Mixup))) throw new ArgumentException($"--mixup {o.Mixup.ToString(CultureInfo.InvariantCulture)}: expected α > 0 (0: off)");
        if (!loss.TakesSoftTargets)
            throw new ArgumentException($"--mixup: {cfg.Name}'s loss ({loss.GetType().Name}) takes hard labels only (a term on the labels has no meaning for a mixed clip); train it without --mixup");
    }

    private static FoldResult Train(ClipSet data, List<Clip> train, List<Clip> test, string testSubject, IReadOnlyList<string> trainSubjects,
        int foldIndex, int folds, TrainOptions o, string foldDir, Device device, ITrainingProgress? progress, TextWriter? log,
        CancellationToken cancel, Stopwatch watch, int? seedIndex = null, int stopAfter = 0, IReadOnlyDictionary<string, string>? finalMetadata = null)
    {
        Directory.CreateDirectory(foldDir);
        var cfg = o.ModelConfig(data);
        ulong foldSeed = o.Seed * 1_000_003UL + (ulong)(seedIndex ?? foldIndex) * 7919UL;
        using var model = ModelRegistry.Create(cfg, new Rng(foldSeed));
        model.To(device); // parameters are initialised on the CPU from the seed, so every device starts from the same weights
        if (o.Pretrained.Length > 0) Weights.ImportPretrainedVit(model, o.Pretrained); // the same pretrained ViT in every fold
        // --freeze: the frozen parameters record no gradient and get no optimizer state (they are left out of 'trained').
        Freezing.Apply(model, o.Freeze);
        // The model's own loss (the contract); its parameters, if any (STT's class centres), train with the model's.
        using var lossFn = model.CreateLoss(new Rng(foldSeed + 17));
        lossFn.To(device);
        // A loss that needs the fold as a whole (AIE-CCL's AU-set prototypes) sees the training clips, never the test subject's.
        lossFn.BeginFold(new TrainingFold(train.Count, (i, kind) => data.Input(train[i], kind)));
        CheckMixup(o, cfg, lossFn);
        var trained = model.Parameters().Concat(lossFn.Parameters()).Where(p => p.RequiresGrad).ToList();
        using Optimizer opt = o.Optimizer switch
        {
            "adamw" => new AdamW(trained, o.LearningRate, weightDecay: o.WeightDecay),
            "adam" => new Adam(trained, o.LearningRate, weightDecay: o.WeightDecay),
            "sgd" => new Sgd(trained, o.LearningRate, o.Momentum, o.WeightDecay),
            _ => throw new ArgumentException($"unknown optimizer '{o.Optimizer}' (adamw, adam or sgd)"),
        };
        // Balanced sampling already evens the classes out: class weights on top would over-correct (BalancedSampler).
        var classWeights = o.ClassWeights && !o.Balanced ? BalancedWeights(train, data.ClassNames.Count) : null;
        var trainLabels = train.Select(c => c.Label).ToArray();
        int stepsPerEpoch = (train.Count + o.BatchSize - 1) / o.BatchSize;
        // A fixed step count (FDP's recipe) becomes whole epochs with the last one cut short.
        int epochs = o.Steps > 0 ? (o.Steps + stepsPerEpoch - 1) / stepsPerEpoch : o.Epochs;
        int lastEpoch = stopAfter > 0 ? Math.Min(stopAfter, epochs) : epochs;
        int totalSteps = o.Steps > 0 ? o.Steps : stepsPerEpoch * epochs, warmupSteps = stepsPerEpoch * o.WarmupEpochs;
        if (o.Schedule is not ("cosine" or "constant" or "step")) throw new ArgumentException($"unknown schedule '{o.Schedule}' (cosine, constant or step)");

        // Input statistics (FDP's mean and max) from the training subjects' clips only; saved with every checkpoint.
        var fit = model as IFitsInputStatistics;
        fit?.FitInputStatistics(train.Select(c => data.Input(c, fit.StatisticsInput)));
        List<Prediction> PredictTest()
        {
            if (fit is null || !o.TransductiveStatistics || test.Count == 0) return Predict(model, test, data, device, o.BatchSize);
            // Transductive (labelled; FDP's released per-split statistics): the test subject's own pixels, never its labels.
            fit.FitInputStatistics(test.Select(c => data.Input(c, fit.StatisticsInput)));
            var p = Predict(model, test, data, device, o.BatchSize);
            fit.FitInputStatistics(train.Select(c => data.Input(c, fit.StatisticsInput)));
            return p;
        }

        var losses = new List<double>();
        var trainAccuracy = new List<double>();
        var oracle = o.Oracle && test.Count > 0 ? new List<IReadOnlyList<Prediction>>() : null;
        int startEpoch = 0;
        string ckpt = Path.Combine(foldDir, CheckpointFile);
        if (File.Exists(ckpt)) startEpoch = RestoreCheckpoint(ckpt, model, lossFn, opt, losses, trainAccuracy, oracle);

        var batcher = new Batcher(data, cfg, o.BatchSize, device, targets: true);
        for (int epoch = startEpoch; epoch < lastEpoch; epoch++)
        {
            cancel.ThrowIfCancellationRequested();
            model.Training = true;
            ulong epochSeed = foldSeed ^ ((ulong)(epoch + 1) * 0x9E3779B97F4A7C15UL);
            var rng = new Rng(epochSeed);
            // Dropout and drop-path masks from (seed, fold, epoch) alone, so a resumed fold draws the same ones.
            (model as IEpochNoise)?.BeginEpoch(epochSeed ^ 0x5DEECE66DUL);
            // Mixup's draws come from a generator of their own, so the order and augmentation draws are those of a run without it.
            var mixRng = o.Mixup > 0 ? new Rng(epochSeed ^ 0xA5A5_5A5A_C3C3_3C3CUL) : null;
            int[] order;
            if (o.Balanced) order = BalancedSampler.Order(trainLabels, train.Count, rng);
            else
            {
                order = Enumerable.Range(0, train.Count).ToArray();
                rng.Shuffle(order.AsSpan());
            }
            double lossSum = 0;
            int seen = 0, right = 0;
            for (int s = 0; s < stepsPerEpoch; s++)
            {
                if (o.Steps > 0 && epoch * stepsPerEpoch + s >= o.Steps) break;
                int b = Math.Min(o.BatchSize, train.Count - s * o.BatchSize);
                var labels = new int[b];
                using (OpTrace.Phase("data"))
                    for (int i = 0; i < b; i++)
                    {
                        var clip = train[order[s * o.BatchSize + i]];
                        labels[i] = clip.Label;
                        var (flip, dx, dy) = Augment.Draw(rng, o.Flip, o.CropPad);
                        batcher.Fill(i, clip, flip, dx, dy);
                    }
                opt.LearningRate = o.Schedule switch
                {
                    "constant" => o.LearningRate,
                    "step" => Schedule.Step(o.LearningRate, epoch, o.StepEpoch, o.StepFactor),
                    _ => Schedule.CosineWithWarmup(o.LearningRate, epoch * stepsPerEpoch + s, warmupSteps, totalSteps),
                };
                float[]? soft = null;
                if (mixRng != null)
                    using (OpTrace.Phase("data"))
                    {
                        var (lambda, partner) = Mixup.Draw(mixRng, o.Mixup, b);
                        batcher.Mix(b, partner, lambda);
                        soft = Mixup.Targets(labels, partner, lambda, data.ClassNames.Count);
                    }
                using (new TensorScope())
                {
                    ModelBatch batch;
                    using (OpTrace.Phase("data")) batch = batcher.Batch(b);
                    ModelOutput output;
                    Tensor loss;
                    using (OpTrace.Phase("forward"))
                    {
                        output = model.Forward(batch);
                        loss = soft is null
                            ? lossFn.Forward(output, batch, labels, classWeights, o.LabelSmoothing)
                            : lossFn.ForwardSoft(output, batch, soft, classWeights, o.LabelSmoothing);
                    }
                    var logits = output.Logits;
                    using (OpTrace.Phase("backward")) loss.Backward();
                    using (OpTrace.Phase("optimizer"))
                    {
                        if (o.ClipNorm > 0) opt.ClipGradNorm(o.ClipNorm);
                        opt.Step();
                        opt.ZeroGrad();
                    }
                    float l = loss.Item();
                    if (!float.IsFinite(l)) throw new InvalidOperationException($"fold {testSubject}, epoch {epoch + 1}: the loss is {l}; lower the learning rate (now {o.LearningRate.ToString(CultureInfo.InvariantCulture)})");
                    lossSum += l * b;
                    seen += b;
                    right += CountRight(logits.ToArray(), labels);
                }
            }
            double epochLoss = lossSum / seen;
            losses.Add(epochLoss);
            trainAccuracy.Add(right / (double)seen);
            oracle?.Add(PredictTest());
            SaveCheckpoint(ckpt, model, lossFn, opt, epoch, losses, trainAccuracy, oracle);
            double seconds = watch.Elapsed.TotalSeconds;
            // Out of the epochs this training runs (a stopped one ends at its stop), so that its last epoch counts it as done.
            progress?.OnEpoch(testSubject, foldIndex, folds, epoch + 1, lastEpoch, epochLoss, seconds);
            log?.WriteLine(JsonSerializer.Serialize(new
            {
                fold = testSubject, epoch = epoch + 1, loss = Math.Round(epochLoss, 6), train_accuracy = Math.Round(trainAccuracy[^1], 4), lr = opt.LearningRate, seconds = Math.Round(seconds, 2),
                oracle_test_accuracy = oracle is null ? (double?)null : Math.Round(oracle[^1].Count(p => p.Label == p.Predicted) / (double)test.Count, 4),
            }));
            log?.Flush();
        }

        if (test.Count == 0)
        {
            var meta = new Dictionary<string, string> { ["classes"] = JsonSerializer.Serialize(data.ClassNames) };
            if (finalMetadata != null) foreach (var (k, v) in finalMetadata) meta[k] = v;
            Weights.Save(model, Path.Combine(foldDir, FinalModelFile), meta);
        }
        var result = new FoldResult
        {
            Subject = testSubject, Epochs = lastEpoch, TrainSubjects = trainSubjects, Predictions = PredictTest(),
            EpochLoss = losses, EpochTrainAccuracy = trainAccuracy, OracleByEpoch = oracle, Seconds = watch.Elapsed.TotalSeconds,
            Reconstructions = Reconstruct(model, test.Take(2).ToList(), data, device),
        };
        WriteJsonAtomic(Path.Combine(foldDir, ResultFile), result);
        return result;
    }

    /// <summary>
    /// σ(D̂) beside the cached dynamic image for the given clips, when the model outputs a reconstruction (FDP's
    /// <see cref="FdpModel.DynamicImageLogits"/>) and the data holds the target; otherwise null. Eval mode, no tape.
    /// </summary>
    public static List<Reconstruction>? Reconstruct(IMerModel model, IReadOnlyList<Clip> clips, ClipSet data, Device device)
    {
        if (clips.Count == 0 || !model.Config.Targets.Any(t => t.Kind == InputKind.DynamicImage)) return null;
        model.Training = false;
        var result = new List<Reconstruction>();
        var batcher = new Batcher(data, model.Config, clips.Count, device, targets: false);
        using (GradMode.NoGrad())
        using (var scope = new TensorScope())
        {
            for (int i = 0; i < clips.Count; i++) batcher.Fill(i, clips[i], false, 0, 0);
            var output = model.Forward(batcher.Batch(clips.Count));
            if (!output.Aux.TryGetValue(FdpModel.DynamicImageLogits, out var logits)) return null;
            var rec = logits.Sigmoid().ToArray();
            int n = rec.Length / clips.Count, size = (int)Math.Round(Math.Sqrt(n));
            for (int i = 0; i < clips.Count; i++)
                result.Add(new Reconstruction(clips[i].Id, size, data.Input(clips[i], InputKind.DynamicImage), rec.AsSpan(i * n, n).ToArray()));
        }
        model.Training = true;
        return result;
    }

    /// <summary>How many rows of logits [B, K] have their arg-max at the label.</summary>
    private static int CountRight(float[] logits, int[] labels)
    {
        int k = logits.Length / labels.Length, right = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            var row = logits.AsSpan(i * k, k);
            int arg = 0;
            for (int c = 1; c < k; c++) if (row[c] > row[arg]) arg = c;
            if (arg == labels[i]) right++;
        }
        return right;
    }

    /// <summary>Class weights N/(C·n_c) over the training clips (0 for a class with no training clip).</summary>
    public static float[] BalancedWeights(IReadOnlyList<Clip> train, int classes)
    {
        var counts = new int[classes];
        foreach (var c in train) counts[c.Label]++;
        return counts.Select(n => n == 0 ? 0f : (float)train.Count / (classes * n)).ToArray();
    }

    /// <summary>Class probabilities and arg-max for each clip, in evaluation mode without recording gradients.</summary>
    public static List<Prediction> Predict(IMerModel model, IReadOnlyList<Clip> clips, ClipSet data, Device device, int batchSize)
    {
        model.Training = false;
        var result = new List<Prediction>();
        var batcher = new Batcher(data, model.Config, batchSize, device, targets: false);
        using (GradMode.NoGrad())
        {
            for (int s = 0; s < clips.Count; s += batchSize)
            {
                int b = Math.Min(batchSize, clips.Count - s);
                for (int i = 0; i < b; i++) batcher.Fill(i, clips[s + i], false, 0, 0);
                using var scope = new TensorScope();
                var probs = model.Forward(batcher.Batch(b)).Logits.Softmax().ToArray();
                int k = data.ClassNames.Count;
                for (int i = 0; i < b; i++)
                {
                    var p = probs.AsSpan(i * k, k).ToArray();
                    int arg = 0;
                    for (int c = 1; c < k; c++) if (p[c] > p[arg]) arg = c;
                    var clip = clips[s + i];
                    result.Add(new Prediction(clip.Id, clip.Subject, clip.Label, arg, p, clip.Dataset));
                }
            }
        }
        model.Training = true;
        return result;
    }

    private static void SaveCheckpoint(string path, IMerModel model, MerLoss lossFn, Optimizer opt, int epoch, List<double> losses, List<double> trainAccuracy, List<IReadOnlyList<Prediction>>? oracle)
    {
        var arrays = model.NamedState().Select(s => StateDict.ToArray("model." + s.Name, s.Value))
            .Concat(StateDict.Arrays(lossFn, "loss."))
            .Concat(opt.State().Select(s => new NamedArray("optimizer." + s.Name, s.Value.Shape, s.Value.ToArray())));
        var meta = Weights.ConfigMetadata(model);
        meta["epoch"] = epoch.ToString(CultureInfo.InvariantCulture);
        meta["optimizer_step"] = opt.StepCount.ToString(CultureInfo.InvariantCulture);
        meta["losses"] = JsonSerializer.Serialize(losses);
        meta["train_accuracy"] = JsonSerializer.Serialize(trainAccuracy);
        if (oracle != null) meta["oracle"] = JsonSerializer.Serialize(oracle);
        Safetensors.Write(path, arrays, meta);
    }

    /// <summary>Loads model and optimizer state; returns the epoch to continue from.</summary>
    private static int RestoreCheckpoint(string path, IMerModel model, MerLoss lossFn, Optimizer opt, List<double> losses, List<double> trainAccuracy, List<IReadOnlyList<Prediction>>? oracle)
    {
        var (arrays, meta) = Safetensors.Read(path);
        Weights.CheckConfig(meta, model, path, " (use another --out, or the same options)");
        var byName = arrays.ToDictionary(a => a.Name);
        void Fill(string name, Tensor t)
        {
            if (!byName.TryGetValue(name, out var a) || !ShapeUtil.SameShape(a.Shape, t.Shape))
                throw new InvalidDataException($"{path}: '{name}' is missing or has another shape; the checkpoint does not belong to this run");
            StateDict.Load(t, a, path);
        }
        foreach (var (n, p) in model.NamedState()) Fill("model." + n, p);
        foreach (var (n, p) in lossFn.NamedState()) Fill("loss." + n, p);
        foreach (var (n, s) in opt.State()) Fill("optimizer." + n, s);
        int Field(string name, int max)
        {
            if (!meta.TryGetValue(name, out var text) || !int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int v) || v > max)
                throw new InvalidDataException($"{path}: checkpoint field '{name}' is missing or not an integer in 0..{max}; delete the checkpoint to restart the fold");
            return v;
        }
        opt.StepCount = Field("optimizer_step", int.MaxValue);
        int epoch = Field("epoch", 1 << 20);
        try
        {
            losses.AddRange(meta.TryGetValue("losses", out var lj) ? JsonSerializer.Deserialize<List<double>>(lj) ?? [] : []);
            if (meta.TryGetValue("train_accuracy", out var aj)) trainAccuracy.AddRange(JsonSerializer.Deserialize<List<double>>(aj) ?? []);
            if (oracle != null && meta.TryGetValue("oracle", out var oj)) oracle.AddRange(JsonSerializer.Deserialize<List<List<Prediction>>>(oj) ?? []);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: checkpoint field 'losses', 'train_accuracy' or 'oracle' is not valid JSON ({e.Message}); delete the checkpoint to restart the fold", e);
        }
        return epoch + 1;
    }

    internal static void WriteJsonAtomic<T>(string path, T value)
    {
        MicroExpr.IO.AtomicFile.WriteText(path, JsonSerializer.Serialize(value, new JsonSerializerOptions { WriteIndented = true }));
    }
}

/// <summary>
/// Gathers a batch of the inputs a model declares (the <see cref="IMerModel"/> contract), and in training its loss's
/// targets (<see cref="IMerModelConfig.Targets"/>), from clips into host buffers and uploads them as [B, T, C, S, S]
/// tensors. A clip's augmentation is one draw applied to every kind alike (the same flip and the same shift for motion,
/// RGB, grey and the dynamic image, so a target stays aligned with its input); only the signed u channel of uvs motion
/// frames changes sign under a flip.
/// </summary>
internal sealed class Batcher
{
    private readonly ClipSet data;
    private readonly Device device;
    private readonly (InputShape Shape, float[] Buffer)[] inputs;
    /// <summary>Mixup's copy of the unmixed batch, as large as the largest kind's buffer (allocated on the first mixed batch).</summary>
    private float[]? mixScratch;

    public Batcher(ClipSet data, IMerModelConfig config, int batchSize, Device device, bool targets)
    {
        this.data = data;
        this.device = device;
        var wanted = config.Inputs.Concat(targets ? config.Targets.Where(t => config.Inputs.All(i => i.Kind != t.Kind)) : []);
        inputs = wanted.Select(need =>
        {
            var have = data.Shape.Require(config.Name, need);
            return (have, new float[batchSize * have.Frames * have.Channels * have.Size * have.Size]);
        }).ToArray();
    }

    private static int ClipSize(InputShape s) => s.Frames * s.Channels * s.Size * s.Size;

    /// <summary>Writes clip into batch slot i, augmented when flip or a shift is set.</summary>
    public void Fill(int i, Clip clip, bool flip, int dx, int dy)
    {
        foreach (var (shape, buffer) in inputs)
        {
            int n = ClipSize(shape);
            var src = data.Input(clip, shape.Kind);
            var dst = buffer.AsSpan(i * n, n);
            if (flip || dx != 0 || dy != 0)
                Augment.Apply(src, dst, shape.Frames, shape.Channels, shape.Size, flip, dx, dy, shape.Kind == InputKind.MotionFrames ? data.HorizontalFlip : FlowFlip.Mirror);
            else src.CopyTo(dst);
        }
    }

    /// <summary>Mixup: slot i ← λ·slot i + (1 − λ)·slot π(i) for the first b slots, every kind alike (<see cref="Training.Mixup"/>).</summary>
    public void Mix(int b, int[] partner, float lambda)
    {
        mixScratch ??= new float[inputs.Max(p => p.Buffer.Length)];
        foreach (var (shape, buffer) in inputs) Training.Mixup.Inputs(buffer, b, ClipSize(shape), partner, lambda, mixScratch);
    }

    /// <summary>The first b slots as a batch on the device (inside the caller's tensor scope).</summary>
    public ModelBatch Batch(int b) => new(inputs.ToDictionary(p => p.Shape.Kind,
        p => Tensor.FromSpan(p.Buffer.AsSpan(0, b * ClipSize(p.Shape)), [b, p.Shape.Frames, p.Shape.Channels, p.Shape.Size, p.Shape.Size], device)));
}
