using System.Text.Json.Serialization;
using MicroExpr.Tensors;

namespace MicroExpr.Models;

/// <summary>
/// The kinds of per-clip input a preprocessing cache can hold and a model can read. Frame kinds are [T, C, S, S] per clip.
/// </summary>
[JsonConverter(typeof(JsonStringEnumConverter))]
public enum InputKind
{
    /// <summary>Motion images from optical flow onset → frame (u, v, strain or HSV): [T, 3, S, S]. What every cache holds today.</summary>
    MotionFrames,
    /// <summary>Face-cropped (or landmark-aligned) grey frames [T, 1, S, S] (FDP).</summary>
    GreyFrames,
    /// <summary>Face-cropped RGB frames [T, 3, S, S] (STT's ResNet-18 backbone, AIE-CCL's RGB stream).</summary>
    RgbFrames,
    /// <summary>A dynamic image (approximate rank pooling of the frames) [1, C, S, S] (FDP's reconstruction target).</summary>
    DynamicImage,
    /// <summary>The clip's action units (AIE-CCL): a multi-hot vector [1, A, 1, 1] over the data set's AU vocabulary.</summary>
    ActionUnits,
}

/// <summary>
/// One input a model reads, or a cache provides: its kind and per-clip shape [Frames, Channels, Size, Size]. In a model's
/// declaration, Frames 0 means any T, and Size is the size the model as configured reads (a model that adapts to the
/// cache's size takes it in <see cref="IMerModelConfig.ForData"/>).
/// </summary>
public sealed record InputShape(InputKind Kind, int Frames, int Channels, int Size)
{
    public override string ToString() =>
        $"{Describe(Kind)} [T={(Frames == 0 ? "any" : Frames)}, {Channels}, {Size}, {Size}]";

    public static string Describe(InputKind kind) => kind switch
    {
        InputKind.MotionFrames => "motion frames",
        InputKind.GreyFrames => "grey face frames",
        InputKind.RgbFrames => "RGB face frames",
        InputKind.DynamicImage => "dynamic images",
        InputKind.ActionUnits => "action units",
        _ => kind.ToString(),
    };
}

/// <summary>What a cache (or a clip set in memory) offers a model: the classes and the inputs of every clip.</summary>
public sealed record DataShape(int Classes, IReadOnlyList<InputShape> Inputs, string Source)
{
    /// <summary>
    /// The AU vocabulary of the data (number and FACS description, in the order of the <see cref="InputKind.ActionUnits"/>
    /// input's channels); empty when the clips carry no action units.
    /// </summary>
    public IReadOnlyList<AuVocabularyEntry> ActionUnits { get; init; } = [];

    public InputShape? Find(InputKind kind) => Inputs.FirstOrDefault(i => i.Kind == kind);

    /// <summary>
    /// The input of the given kind, or a one-line error naming the cache, what the model needs and what the cache holds.
    /// Checks the kind, the channels and (when the model fixes it) T; with <paramref name="exactSize"/> also the size.
    /// </summary>
    public InputShape Require(string model, InputShape need, bool exactSize = false)
    {
        var have = Find(need.Kind) ?? throw new InvalidDataException(
            $"{Source}: model {model} reads {InputShape.Describe(need.Kind)}, but the cache holds only {string.Join(", ", Inputs)}; " +
            "preprocess a cache that provides them");
        if (need.Channels != have.Channels || exactSize && need.Size != have.Size || need.Frames != 0 && need.Frames != have.Frames)
            throw new InvalidDataException($"{Source}: model {model} reads {need}, the cache holds {have}");
        return have;
    }
}

/// <summary>
/// The config of a model: everything that fixes its shapes. Each family has its own record (e.g. <see cref="SlsttConfig"/>,
/// <see cref="SttConfig"/>); it is saved as JSON beside every checkpoint under "microexpr.config", with the family under
/// "microexpr.family", so <see cref="ModelRegistry"/> rebuilds the model for resume, evaluate and predict, and refuses a
/// checkpoint of another shape with the differing fields named.
/// </summary>
public interface IMerModelConfig
{
    /// <summary>The preset name (e.g. slstt-tiny, stt-tiny).</summary>
    string Name { get; }
    /// <summary>The model family (slstt, stt, ...): picks the config type and the constructor in <see cref="ModelRegistry"/>.</summary>
    [JsonIgnore] string Family { get; }
    int Classes { get; }
    /// <summary>The inputs the model reads, per clip.</summary>
    [JsonIgnore] IReadOnlyList<InputShape> Inputs { get; }
    /// <summary>
    /// Per-clip training targets the model's loss reads from the batch beside the inputs (FDP's dynamic image, AIE-CCL's action units), none by
    /// default. The trainer loads and batches them like inputs (same augmentation) while training only; evaluation,
    /// <c>predict</c> and inference batches hold <see cref="Inputs"/> alone, so nothing a model needs at test time can
    /// hide here. Chosen over declaring a target as an input the forward ignores, which would make <c>predict</c>
    /// compute (and a deployed model require) data it never reads.
    /// </summary>
    [JsonIgnore] IReadOnlyList<InputShape> Targets => [];
    /// <summary>Names of the fields where two configs differ (empty when they match; another family differs in "family").</summary>
    IReadOnlyList<string> Differences(IMerModelConfig other);
    /// <summary>
    /// This config fitted to a data set: the classes, and the frame count and image size of the inputs where the model
    /// adapts to them. Throws a one-line <see cref="InvalidDataException"/> when the data lacks an input the model reads or
    /// has the wrong shape for it.
    /// </summary>
    IMerModelConfig ForData(DataShape data);
}

/// <summary>One batch of model inputs (and, in training, the loss's targets: <see cref="IMerModelConfig.Targets"/>), by kind: each [B, T, C, S, S] on the model's device.</summary>
public sealed class ModelBatch(IReadOnlyDictionary<InputKind, Tensor> inputs)
{
    public IReadOnlyDictionary<InputKind, Tensor> Inputs { get; } = inputs;

    public Tensor this[InputKind kind] => Inputs.TryGetValue(kind, out var t)
        ? t
        : throw new ArgumentException($"the batch holds no {InputShape.Describe(kind)} (it holds {string.Join(", ", Inputs.Keys.Select(InputShape.Describe))})");

    public int Size => Inputs.Values.First().Shape[0];

    public static ModelBatch Of(InputKind kind, Tensor x) => new(new Dictionary<InputKind, Tensor> { [kind] = x });
}

/// <summary>
/// What a model's forward returns: logits [B, classes] and named auxiliary outputs (e.g. <see cref="Features"/> [B, C]
/// for a feature-space loss, a reconstruction for FDP, an embedding for AIE-CCL's contrastive term).
/// </summary>
public sealed record ModelOutput(Tensor Logits, IReadOnlyDictionary<string, Tensor> Aux)
{
    /// <summary>The clip feature fed to the classifier, [B, C].</summary>
    public const string Features = "features";

    public ModelOutput(Tensor logits) : this(logits, new Dictionary<string, Tensor>()) { }

    public Tensor Get(string name) => Aux.TryGetValue(name, out var t)
        ? t
        : throw new ArgumentException($"the model's output has no '{name}' (it has logits{string.Concat(Aux.Keys.Select(k => ", " + k))})");
}

/// <summary>
/// A model whose named parts can be frozen for training (<c>train --freeze PART</c>): the part's parameters get
/// <see cref="Tensor.RequiresGrad"/> false, so no op records their gradients (and, when nothing before them trains, no
/// backward runs through them), and the trainer gives them no optimizer state. Their values stay as initialised or loaded.
/// </summary>
/// <summary>
/// A model that draws random numbers in training (dropout, drop-path): the trainer calls <see cref="BeginEpoch"/> before each
/// training epoch with a seed derived from (seed, fold, epoch), so the draws are reproducible and a resumed fold matches an
/// uninterrupted one. A model without it draws nothing in training. Choice: reseeding per epoch rather than checkpointing the
/// generators' states (a generator's state is not a tensor, and a per-epoch seed needs nothing saved).
/// </summary>
public interface IEpochNoise
{
    void BeginEpoch(ulong seed);
}

public interface IFreezable
{
    /// <summary>The parts this model can freeze (e.g. "spatial").</summary>
    IReadOnlyList<string> FreezableParts { get; }
    /// <summary>The parameters <paramref name="part"/> freezes; a one-line <see cref="ArgumentException"/> for an unknown part.</summary>
    IEnumerable<Tensor> FrozenBy(string part);
}

/// <summary>Freezing by name (<see cref="IFreezable"/>), with a one-line error for a model or part that has none.</summary>
public static class Freezing
{
    /// <summary>Freezes <paramref name="part"/> of the model ("" freezes nothing); returns how many parameters were frozen.</summary>
    public static int Apply(IMerModel model, string part)
    {
        if (string.IsNullOrEmpty(part)) return 0;
        if (model is not IFreezable f || !f.FreezableParts.Contains(part))
            throw new ArgumentException($"--freeze {part}: {model.Config.Name} has no such part" +
                (model is IFreezable g ? $" (it can freeze: {string.Join(", ", g.FreezableParts)})" : " (only SLSTT-family presets can freeze their spatial encoder)"));
        int n = 0;
        foreach (var p in f.FrozenBy(part))
        {
            p.RequiresGrad = false;
            n++;
        }
        return n;
    }
}


/// <summary>
/// The model contract every MER model follows, so that one trainer (FoldTrainer/LosoRunner), <c>predict</c>,
/// <c>evaluate</c> and <c>bench</c> run any of them:
/// <list type="bullet">
/// <item><b>Inputs.</b> <see cref="IMerModelConfig.Inputs"/> declares the per-clip inputs the model reads (kind and
/// [T, C, S, S]); the trainer checks the cache provides them (<see cref="DataShape.Require"/>, one line naming what is
/// missing) and hands them over as a <see cref="ModelBatch"/> of [B, T, C, S, S] tensors.</item>
/// <item><b>Outputs.</b> <see cref="Forward"/> returns <see cref="ModelOutput"/>: logits [B, classes] (what evaluation and
/// <c>predict</c> read, through a softmax) plus named auxiliary outputs for the loss.</item>
/// <item><b>Loss.</b> <see cref="CreateLoss"/> gives the model's training loss, a <see cref="MerLoss"/> module: class-weighted
/// cross-entropy by default; a loss may have parameters of its own (STT's class centres) which the trainer optimises with
/// the model's and checkpoints under "loss.".</item>
/// <item><b>Config.</b> <see cref="Config"/> is saved with every checkpoint and final model; <see cref="ModelRegistry"/> maps
/// presets and saved configs back to models.</item>
/// </list>
/// Models are <see cref="Nn.Module"/>s: parameters, device moves, training mode and disposal come from there.
/// </summary>
public interface IMerModel : IDisposable
{
    IMerModelConfig Config { get; }
    bool Training { get; set; }
    IEnumerable<(string Name, Tensor Value)> NamedParameters(string prefix = "");
    IEnumerable<Tensor> Parameters();
    /// <summary>Parameters then buffers (e.g. BatchNorm's running statistics): everything a checkpoint holds.</summary>
    IEnumerable<(string Name, Tensor Value)> NamedState();
    void To(Device device);
    long ParameterCount();
    /// <summary>A batch of inputs → logits [B, classes] and auxiliary outputs.</summary>
    ModelOutput Forward(ModelBatch batch);
    /// <summary>A fresh loss module for training this model (parameters, if any, initialised from <paramref name="rng"/>).</summary>
    MerLoss CreateLoss(Rng rng);
}
