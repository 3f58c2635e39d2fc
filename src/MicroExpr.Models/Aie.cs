using System.Text.Json.Serialization;
using MicroExpr.Nn;
using MicroExpr.Tensors;

namespace MicroExpr.Models;

/// <summary>How AIE-CCL's attribute encoder turns an AU set into its embedding t (<see cref="AuSetEncoder"/>).</summary>
[JsonConverter(typeof(JsonStringEnumConverter))]
public enum AuTextKind
{
    /// <summary>The FACS descriptions of the set's AUs as words → word embeddings → transformer blocks (<see cref="AuWordEncoder"/>). Default.</summary>
    Words,
    /// <summary>One learned embedding per AU, averaged over the set (<see cref="AuTableEncoder"/>): no words.</summary>
    Table,
}

/// <summary>One action unit of a data set's vocabulary: its FACS number and description ("brow lowerer").</summary>
public sealed record AuVocabularyEntry(int Number, string Description);

/// <summary>Everything that fixes an AIE-CCL model's shapes and its loss. Saved beside every checkpoint.</summary>
public sealed record AieConfig : IMerModelConfig
{
    public const string FamilyName = "aie";

    public required string Name { get; init; }
    public int Classes { get; init; } = 3;
    /// <summary>Size S of the RGB face frames and of the motion frames (fitted to the cache; each stream pools globally).</summary>
    public int RgbSize { get; init; } = 32;
    public int MotionSize { get; init; } = 32;
    /// <summary>Output channels of each Conv3d + BatchNorm3d + ReLU + MaxPool3d stage of each stream.</summary>
    public IReadOnlyList<int> StreamChannels { get; init; } = [8, 16];
    /// <summary>Spatial stride of each stream's first convolution (2 on the demo machine: a quarter of the work).</summary>
    public int FirstStride { get; init; } = 2;
    /// <summary>Width D of the visual embedding v and of the AU-set embedding t.</summary>
    public int EmbedDim { get; init; } = 32;
    public AuTextKind Text { get; init; } = AuTextKind.Words;
    /// <summary>Width E of the word (or AU) embeddings and of the attribute encoder's transformer blocks.</summary>
    public int TextWidth { get; init; } = 32;
    public int TextDepth { get; init; } = 1;
    public int TextHeads { get; init; } = 2;
    public int TextMlpHidden { get; init; } = 64;
    /// <summary>The data set's AU vocabulary (fitted to the cache): the order of the multi-hot action-unit input.</summary>
    public IReadOnlyList<AuVocabularyEntry> ActionUnits { get; init; } = [];
    /// <summary>λ of the contrastive term: L = CE + λ·L_con (0: the same model trained with cross-entropy alone).</summary>
    public float ContrastiveWeight { get; init; } = 1f;
    /// <summary>The InfoNCE temperature τ at the start (learned from there).</summary>
    public float InitTemperature { get; init; } = 0.07f;

    [JsonIgnore] public string Family => FamilyName;

    /// <summary>RGB face frames and motion frames, [T, 3, S, S] each, any T (one T for both).</summary>
    [JsonIgnore]
    public IReadOnlyList<InputShape> Inputs => [new(InputKind.RgbFrames, 0, 3, RgbSize), new(InputKind.MotionFrames, 0, 3, MotionSize)];

    /// <summary>The clip's action units, multi-hot [1, A, 1, 1] over <see cref="ActionUnits"/>: read by the loss only.</summary>
    [JsonIgnore]
    public IReadOnlyList<InputShape> Targets => ContrastiveWeight == 0f ? [] : [new(InputKind.ActionUnits, 1, ActionUnits.Count, 1)];

    public IMerModelConfig ForData(DataShape data)
    {
        var rgb = data.Require(Name, Inputs[0]);
        var motion = data.Require(Name, Inputs[1]);
        if (rgb.Frames != motion.Frames)
            throw new InvalidDataException($"{data.Source}: {Name} reads RGB and motion frames of one T; the cache holds T={rgb.Frames} and T={motion.Frames}");
        var fitted = this with { Classes = data.Classes, RgbSize = rgb.Size, MotionSize = motion.Size };
        if (ContrastiveWeight == 0f) return fitted with { ActionUnits = data.ActionUnits };
        var aus = data.Find(InputKind.ActionUnits) ?? throw new InvalidDataException(
            $"{data.Source}: {Name} (contrastive weight {ContrastiveWeight}) reads the clips' action units, but the cache holds only {string.Join(", ", data.Inputs)}; " +
            "preprocess a data set whose annotations have an action-unit column, or train with --con-weight 0");
        if (aus.Channels != data.ActionUnits.Count || aus.Channels == 0)
            throw new InvalidDataException($"{data.Source}: the action-unit input has {aus.Channels} channels but the AU vocabulary {data.ActionUnits.Count} entries");
        return fitted with { ActionUnits = data.ActionUnits };
    }

    public IReadOnlyList<string> Differences(IMerModelConfig other)
    {
        if (other is not AieConfig o) return [$"family: {Family} vs {other.Family}"];
        var d = new List<string>();
        void Cmp<T>(string n, T a, T b) { if (!EqualityComparer<T>.Default.Equals(a, b)) d.Add($"{n}: {a} vs {b}"); }
        Cmp("classes", Classes, o.Classes);
        Cmp("rgb_size", RgbSize, o.RgbSize);
        Cmp("motion_size", MotionSize, o.MotionSize);
        Cmp("stream_channels", string.Join(",", StreamChannels), string.Join(",", o.StreamChannels));
        Cmp("first_stride", FirstStride, o.FirstStride);
        Cmp("embed_dim", EmbedDim, o.EmbedDim);
        Cmp("text", Text, o.Text);
        Cmp("text_width", TextWidth, o.TextWidth);
        Cmp("text_depth", TextDepth, o.TextDepth);
        Cmp("text_heads", TextHeads, o.TextHeads);
        Cmp("text_mlp_hidden", TextMlpHidden, o.TextMlpHidden);
        Cmp("action_units", string.Join(",", ActionUnits.Select(a => $"{a.Number}:{a.Description}")), string.Join(",", o.ActionUnits.Select(a => $"{a.Number}:{a.Description}")));
        Cmp("contrastive_weight", ContrastiveWeight, o.ContrastiveWeight);
        Cmp("init_temperature", InitTemperature, o.InitTemperature);
        return d;
    }

    // Lists compare by content (a record's default equality would compare the list references).
    public bool Equals(AieConfig? other) => other is not null && Name == other.Name && Differences(other).Count == 0;
    public override int GetHashCode() => HashCode.Combine(Name, Classes, RgbSize, EmbedDim);
}

/// <summary>The AIE-CCL presets.</summary>
public static class AiePresets
{
    /// <summary>
    /// For the 2-core demo machine: the demo cache (T = 4, 32 px RGB and motion frames), streams of 2 stages (8, 16
    /// channels, first conv at stride 2), D = 32, the word encoder at width 32 with one block of 2 heads.
    /// </summary>
    public static AieConfig Tiny => new() { Name = "aie-tiny" };

    /// <summary>
    /// As in the paper's description, with the depths it leaves open (unverified; ours): 112 px face frames, streams of 4
    /// stages (32, 64, 128, 256 channels, first conv at stride 1), the 256-d embedding v, the word encoder at width 128
    /// with 2 blocks of 4 heads (BERT in the paper: we train a small encoder in-engine, no downloaded weights).
    /// </summary>
    public static AieConfig Full => new()
    {
        Name = "aie", RgbSize = 112, MotionSize = 112, StreamChannels = [32, 64, 128, 256], FirstStride = 1, EmbedDim = 256,
        TextWidth = 128, TextDepth = 2, TextHeads = 4, TextMlpHidden = 512,
    };
}

/// <summary>
/// One visual stream of AIE-CCL: clips [B, T, 3, S, S] → stages of Conv3d 3×3×3 (padding 1, no bias) + BatchNorm3d +
/// ReLU + MaxPool3d, then global average pooling → [B, C_last]. Stage i's pool halves H and W (while they are ≥ 2) and,
/// from the second stage on, T (while T ≥ 2): C3D's schedule (time kept by the first pool so that early filters see
/// the motion's onset and apex apart). The pools are chosen per call from the input's T and S, so one set of weights
/// reads any T (no weight depends on T or S). The first convolution may stride in space (<see cref="AieConfig.FirstStride"/>).
/// BatchNorm follows the training mode; in eval the BatchNorm is folded into the convolution (<see cref="ConvBn"/>).
/// </summary>
public sealed class Cnn3dStream : Module
{
    private readonly Conv3d[] convs;
    private readonly BatchNorm3d[] norms;

    public Cnn3dStream(IReadOnlyList<int> channels, int firstStride, Rng rng)
    {
        if (channels.Count == 0) throw new ArgumentException("aie: a stream needs at least one stage");
        convs = new Conv3d[channels.Count];
        norms = new BatchNorm3d[channels.Count];
        int cin = 3;
        for (int i = 0; i < channels.Count; i++)
        {
            int stride = i == 0 ? firstStride : 1;
            convs[i] = Child($"stages.{i}.conv", new Conv3d(cin, channels[i], (3, 3, 3), rng, (1, stride, stride), (1, 1, 1), bias: false));
            norms[i] = Child($"stages.{i}.bn", new BatchNorm3d(channels[i]));
            cin = channels[i];
        }
        OutChannels = cin;
    }

    public int OutChannels { get; }

    /// <summary>clips [B, T, 3, S, S] → [B, C_last].</summary>
    public Tensor Forward(Tensor clips)
    {
        var x = clips.Permute(0, 2, 1, 3, 4);                                    // [B, 3, T, S, S]: Conv3d's [N, C, D, H, W]
        for (int i = 0; i < convs.Length; i++)
        {
            x = ConvBn.Forward(convs[i], norms[i], x, relu: true);
            int pt = i > 0 && x.Shape[2] >= 2 ? 2 : 1, ps = x.Shape[3] >= 2 && x.Shape[4] >= 2 ? 2 : 1;
            if (pt > 1 || ps > 1) x = x.MaxPool3d((pt, ps, ps), (pt, ps, ps), (0, 0, 0));
        }
        return x.GlobalAvgPool();                                                 // [B, C_last]
    }
}

/// <summary>
/// AIE-CCL (Song et al. 2022, arXiv 2205.14643; papers.md §4; no public code): two 3D-CNN streams, over the RGB face
/// frames and over the motion (optical-flow) frames, fused into the visual embedding v; a classifier on it; and, in
/// training only, a cross-modal contrastive loss that aligns v with the embedding t of the clip's action-unit set
/// (<see cref="AieLoss"/>, which owns the attribute encoder). Inputs [B, T, 3, S, S] twice → logits [B, classes] and
/// <see cref="Embedding"/> v [B, D] (L2-normalised).
/// <para>Choices where the paper is silent (each with the alternative we rejected):</para>
/// <list type="bullet">
/// <item><b>Fusion.</b> The two streams' globally pooled features are concatenated and projected by one Linear to D:
/// f = W·[g_rgb; g_flow] + b; v = f / ‖f‖. Rejected: fusing the feature maps before pooling (the streams would need one
/// size, and the RGB and flow caches may differ in S), and summing the streams (it forces one width on both).</item>
/// <item><b>The classifier reads f, not v.</b> logits = Linear(f): the contrastive term shapes the direction of f, the
/// cross-entropy its whole vector. Rejected: the classifier on v (unit-norm features cap the logits' range, so the
/// cross-entropy would need a scale of its own), and a classifier on the concatenation (the contrastive term would then
/// shape a layer the classifier never reads).</item>
/// <item><b>The text branch lives in the loss.</b> The attribute encoder and the temperature are parameters of
/// <see cref="AieLoss"/> (trained with the model's, checkpointed under "loss."), so the model that <c>predict</c> loads
/// holds only what it needs at test time and reads no action units. Rejected: the encoder inside the model (every
/// saved model would carry weights that inference never runs).</item>
/// </list>
/// </summary>
public sealed class AieModel : Module, IMerModel
{
    /// <summary>The aux output holding v [B, D].</summary>
    public const string Embedding = "embedding";

    public AieModel(AieConfig config, Rng rng)
    {
        Config = config;
        Rgb = Child("rgb", new Cnn3dStream(config.StreamChannels, config.FirstStride, rng));
        Motion = Child("motion", new Cnn3dStream(config.StreamChannels, config.FirstStride, rng));
        Fuse = Child("fuse", new Linear(Rgb.OutChannels + Motion.OutChannels, config.EmbedDim, rng));
        Head = Child("head", new Linear(config.EmbedDim, config.Classes, rng));
    }

    public AieConfig Config { get; }
    IMerModelConfig IMerModel.Config => Config;
    public Cnn3dStream Rgb { get; }
    public Cnn3dStream Motion { get; }
    public Linear Fuse { get; }
    public Linear Head { get; }

    public ModelOutput Forward(ModelBatch batch)
    {
        var (logits, v) = Forward(batch[InputKind.RgbFrames], batch[InputKind.MotionFrames]);
        return new ModelOutput(logits, new Dictionary<string, Tensor> { [Embedding] = v });
    }

    /// <summary>rgb [B, T, 3, S, S], motion [B, T, 3, S′, S′] → logits [B, classes], v [B, D] (unit rows).</summary>
    public (Tensor Logits, Tensor Embedding) Forward(Tensor rgb, Tensor motion)
    {
        Check(rgb, Config.RgbSize, "RGB frames");
        Check(motion, Config.MotionSize, "motion frames");
        if (rgb.Shape[0] != motion.Shape[0] || rgb.Shape[1] != motion.Shape[1])
            throw new ShapeException($"{Config.Name}: RGB clips {ShapeUtil.Format(rgb.Shape)} and motion clips {ShapeUtil.Format(motion.Shape)} differ in B or T");
        var f = Fuse.Forward(Tensor.Concat(1, Rgb.Forward(rgb), Motion.Forward(motion)));   // [B, D]
        return (Head.Forward(f), L2Normalize(f));
    }

    private void Check(Tensor x, int s, string what)
    {
        if (x.Rank != 5 || x.Shape[1] < 1 || x.Shape[2] != 3 || x.Shape[3] != s || x.Shape[4] != s)
            throw new ShapeException($"{Config.Name}: expected {what} [B, T, 3, {s}, {s}], got {ShapeUtil.Format(x.Shape)}");
    }

    /// <summary>CE + λ·InfoNCE(v, AU-set prototypes) (<see cref="AieLoss"/>), or cross-entropy alone when λ = 0.</summary>
    public MerLoss CreateLoss(Rng rng) => Config.ContrastiveWeight == 0f ? new CrossEntropyLoss() : new AieLoss(Config, rng);

    /// <summary>x [R, D] → x / √(Σ x² + ε) per row (ε = 1e-12: a zero row stays finite).</summary>
    public static Tensor L2Normalize(Tensor x)
    {
        if (x.Rank != 2) throw new ShapeException($"l2 normalise: expected [R, D], got {ShapeUtil.Format(x.Shape)}");
        return x / (x * x).Sum([1], keepDim: true).AddScalar(1e-12f).Sqrt();
    }
}
