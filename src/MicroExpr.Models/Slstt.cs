using System.Text.Json.Serialization;
using MicroExpr.Nn;
using MicroExpr.Tensors;

namespace MicroExpr.Models;

[JsonConverter(typeof(JsonStringEnumConverter))]
public enum TemporalKind { Mean, Lstm, Gru, Transformer }

/// <summary>What the model does to its [0, 1] input images before the ViT (the cache stores them unnormalised).</summary>
[JsonConverter(typeof(JsonStringEnumConverter))]
public enum InputNormalisation
{
    /// <summary>The images as the cache holds them (every preset before SLSTT's released recipe).</summary>
    None,
    /// <summary>
    /// (x − mean) / std per RGB channel with ImageNet's mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225), as SLSTT's
    /// released code does (torchvision's Normalize) before its ImageNet-pretrained ViT.
    /// </summary>
    ImageNet,
}

/// <summary>
/// Everything that fixes an SLSTT model's shapes. Saved beside every checkpoint, so a checkpoint that
/// does not match a preset is refused with the differing fields named.
/// </summary>
public sealed record SlsttConfig : IMerModelConfig
{
    public const string FamilyName = "slstt";
    public required string Name { get; init; }
    public int ImageSize { get; init; } = 112;
    public int PatchSize { get; init; } = 16;
    public int Width { get; init; } = 192;
    public int Depth { get; init; } = 6;
    public int Heads { get; init; } = 3;
    public int MlpHidden { get; init; } = 768;
    public TemporalKind Temporal { get; init; } = TemporalKind.Lstm;
    public int TemporalLayers { get; init; } = 1;
    public int TemporalHidden { get; init; } = 192;
    public int TemporalHeads { get; init; } = 3;
    public int MaxFrames { get; init; } = 16;
    /// <summary>0: a linear head; otherwise Linear → ReLU → Linear with this hidden width (the paper: 256).</summary>
    public int HeadHidden { get; init; }
    public int Classes { get; init; } = 5;
    public float LayerNormEps { get; init; } = 1e-5f;
    /// <summary>
    /// Input normalisation, applied inside the model (so evaluate and predict apply it too, and the cache stays [0, 1] for
    /// every model): SLSTT's released recipe uses <see cref="InputNormalisation.ImageNet"/>. Rejected: normalising in the cache,
    /// which would tie a cache to one model. (pytorch-pretrained-vit's own example normalises with 0.5 / 0.5; the release uses
    /// ImageNet's statistics and this follows the release.)
    /// </summary>
    public InputNormalisation InputNorm { get; init; } = InputNormalisation.None;

    /// <summary>
    /// Dropout rate in training on every ViT block's attention and MLP outputs (ViT's proj_drop and MLP drop; not on the MLP's
    /// hidden activation, see <see cref="TransformerBlock"/>); <c>--set dropout=0.1</c>. 0 (default): none, and the model is the
    /// one of before. Evaluation never drops.
    /// </summary>
    public float Dropout { get; init; }
    /// <summary>
    /// Dropout rate in training on the clip feature before the head (before its hidden layer when it has one); <c>--set
    /// head-dropout=0.1</c>. 0 (default): none. Rejected: dropout inside the LSTM (the released code has none, and the
    /// aggregator's recurrence is already the smallest part).
    /// </summary>
    public float HeadDropout { get; init; }
    /// <summary>
    /// Stochastic depth of the ViT blocks, 0 → rate linearly over the blocks (<see cref="VisionTransformer.DropPathRate"/>);
    /// <c>--set drop-path=0.1</c>. A branch is dropped per frame (the ViT's batch axis is B·T), chosen over per clip because the
    /// blocks never see the clip axis; rejected: one rate for every block (DeiT found the linear rule better). 0 (default): none.
    /// </summary>
    public float DropPath { get; init; }
    /// <summary>
    /// The ViT's first layer (<c>--set stem=conv</c>): the linear patch embedding (default, every checkpoint of before) or a
    /// small conv stem with the same token grid (<see cref="ConvStem"/>: "a ViT needs a conv stem on little data").
    /// </summary>
    public StemKind Stem { get; init; } = StemKind.Patch;

    [JsonIgnore] public string Family => FamilyName;

    /// <summary>Motion frames [T, 3, S, S] of any T; S = ImageSize (ForData takes the cache's S, a multiple of the patch size).</summary>
    [JsonIgnore] public IReadOnlyList<InputShape> Inputs => [new(InputKind.MotionFrames, 0, 3, ImageSize)];

    /// <summary>The preset fitted to the data: image size S, the classes, position embeddings for at least T frames.</summary>
    public IMerModelConfig ForData(DataShape data)
    {
        var motion = data.Require(Name, Inputs[0]);
        if (motion.Size % PatchSize != 0)
            throw new InvalidDataException($"{data.Source}: {Name}: images of {motion.Size} px are not a multiple of the patch size {PatchSize}; preprocess with --size {Math.Max(PatchSize, motion.Size / PatchSize * PatchSize)}");
        return this with { ImageSize = motion.Size, Classes = data.Classes, MaxFrames = Math.Max(MaxFrames, motion.Frames) };
    }

    public IReadOnlyList<string> Differences(IMerModelConfig other) =>
        other is SlsttConfig s ? Differences(s) : [$"family: {Family} vs {other.Family}"];

    /// <summary>Names of the fields where two configs differ (empty when they match).</summary>
    public IReadOnlyList<string> Differences(SlsttConfig other)
    {
        var d = new List<string>();
        void Cmp<T>(string n, T a, T b) { if (!EqualityComparer<T>.Default.Equals(a, b)) d.Add($"{n}: {a} vs {b}"); }
        Cmp("image_size", ImageSize, other.ImageSize);
        Cmp("patch_size", PatchSize, other.PatchSize);
        Cmp("width", Width, other.Width);
        Cmp("depth", Depth, other.Depth);
        Cmp("heads", Heads, other.Heads);
        Cmp("mlp_hidden", MlpHidden, other.MlpHidden);
        Cmp("temporal", Temporal, other.Temporal);
        Cmp("temporal_layers", TemporalLayers, other.TemporalLayers);
        Cmp("temporal_hidden", TemporalHidden, other.TemporalHidden);
        Cmp("temporal_heads", TemporalHeads, other.TemporalHeads);
        Cmp("max_frames", MaxFrames, other.MaxFrames);
        Cmp("head_hidden", HeadHidden, other.HeadHidden);
        Cmp("classes", Classes, other.Classes);
        Cmp("layer_norm_eps", LayerNormEps, other.LayerNormEps);
        Cmp("input_norm", InputNorm, other.InputNorm);
        Cmp("dropout", Dropout, other.Dropout);
        Cmp("head_dropout", HeadDropout, other.HeadDropout);
        Cmp("drop_path", DropPath, other.DropPath);
        Cmp("stem", Stem, other.Stem);
        return d;
    }
}

/// <summary>The named model configurations.</summary>
public static class SlsttPresets
{
    /// <summary>
    /// The bench model of performance.md, exactly: 112 px, 16×16 patches (49 tokens + class token),
    /// width 192, 6 pre-norm blocks of 3 heads × 64 with MLP 768, one LSTM layer 192→192, Linear(192, 5).
    /// 3,124,421 parameters.
    /// </summary>
    public static SlsttConfig Bench => new() { Name = "slstt-bench" };

    /// <summary>
    /// Small enough for the demo on a 2-core CPU: 32 px motion images, 8×8 patches (16 tokens), width 64,
    /// 2 blocks of 2 heads, MLP 128, one LSTM layer of 64, linear head.
    /// </summary>
    public static SlsttConfig Tiny => new()
    {
        Name = "slstt-tiny", ImageSize = 32, PatchSize = 8, Width = 64, Depth = 2, Heads = 2, MlpHidden = 128,
        Temporal = TemporalKind.Lstm, TemporalLayers = 1, TemporalHidden = 64, TemporalHeads = 2, Classes = 3,
    };

    /// <summary>
    /// The paper's model: ViT-B/16 (12 blocks, width 768, 12 heads, MLP 3072; 224 px here, 384 in the paper),
    /// a 3-layer LSTM of 512, head 512 → 256 → classes. LayerNorm eps 1e-6 as in timm's ViT.
    /// </summary>
    public static SlsttConfig B16 => new()
    {
        Name = "slstt-b16", ImageSize = 224, PatchSize = 16, Width = 768, Depth = 12, Heads = 12, MlpHidden = 3072,
        Temporal = TemporalKind.Lstm, TemporalLayers = 3, TemporalHidden = 512, HeadHidden = 256, Classes = 3,
        LayerNormEps = 1e-6f,
    };

    public static IReadOnlyList<string> Names => ["slstt-bench", "slstt-tiny", "slstt-b16"];

    public static SlsttConfig Get(string name) => name switch
    {
        "slstt-bench" => Bench,
        "slstt-tiny" => Tiny,
        "slstt-b16" => B16,
        _ => throw new ArgumentException($"unknown model preset '{name}'; known: {string.Join(", ", Names)}"),
    };
}

/// <summary>
/// SLSTT (Zhang et al., 2022): a ViT spatial encoder applied to every frame's motion image (the class
/// token is the frame feature), a temporal aggregator over the T frame features, and a head.
/// Input [B, T, 3, H, W] → logits [B, classes].
/// </summary>
public sealed class SlsttModel : Module, IAttentionModel, IFreezable, IEpochNoise
{
    public SlsttModel(SlsttConfig config, Rng rng)
    {
        Config = config;
        foreach (var (name, rate) in new[] { ("dropout", config.Dropout), ("head-dropout", config.HeadDropout), ("drop-path", config.DropPath) })
            if (!(rate >= 0f && rate < 1f)) throw new ArgumentException($"{config.Name}: {name} {rate.ToString(System.Globalization.CultureInfo.InvariantCulture)} is outside [0, 1)");
        Spatial = Child("spatial", new VisionTransformer(config.ImageSize, config.PatchSize, config.Width, config.Depth, config.Heads,
            config.MlpHidden, rng, config.LayerNormEps, config.Dropout, config.DropPath, config.Stem));
        Temporal = Child("temporal", config.Temporal switch
        {
            TemporalKind.Mean => (TemporalAggregator)new MeanAggregator(config.Width),
            TemporalKind.Lstm => new LstmAggregator(config.Width, config.TemporalHidden, config.TemporalLayers, rng),
            TemporalKind.Gru => new GruAggregator(config.Width, config.TemporalHidden, config.TemporalLayers, rng),
            TemporalKind.Transformer => new TemporalTransformer(config.Width, config.TemporalLayers, config.TemporalHeads,
                2 * config.Width, config.MaxFrames, rng),
            _ => throw new ArgumentOutOfRangeException(nameof(config)),
        });
        // Registered after every parameter, and drawing nothing from rng: a model without it has the same weights and names.
        if (config.HeadDropout > 0f) HeadDrop = Child("head_drop", new Dropout(config.HeadDropout));
        if (config.HeadHidden > 0)
        {
            HeadHidden = Child("head.0", new Linear(Temporal.OutFeatures, config.HeadHidden, rng));
            Head = Child("head.2", new Linear(config.HeadHidden, config.Classes, rng));
        }
        else
        {
            Head = Child("head", new Linear(Temporal.OutFeatures, config.Classes, rng));
        }
    }

    public SlsttConfig Config { get; }
    IMerModelConfig IMerModel.Config => Config;
    public VisionTransformer Spatial { get; }
    public TemporalAggregator Temporal { get; }
    public Linear? HeadHidden { get; }
    public Linear Head { get; }
    public Dropout? HeadDrop { get; }

    /// <summary>
    /// Restarts every dropout and drop-path generator from <paramref name="seed"/> (one stream per module, in a fixed order),
    /// so an epoch's masks depend on (seed, fold, epoch) only and a resumed fold draws what an uninterrupted one does.
    /// </summary>
    public void BeginEpoch(ulong seed)
    {
        var noise = Spatial.Blocks.SelectMany(b => b.Noise).ToList();
        if (HeadDrop != null) noise.Add(HeadDrop);
        for (int i = 0; i < noise.Count; i++) noise[i].Reseed(seed ^ ((ulong)(i + 1) * 0xD1B54A32D192ED03UL));
    }

    /// <summary>The contract's forward: the batch's motion frames → logits (no auxiliary outputs).</summary>
    public ModelOutput Forward(ModelBatch batch) => new(Forward(batch[InputKind.MotionFrames]));

    public IReadOnlyList<string> FreezableParts { get; } = ["spatial"];

    /// <summary>
    /// "spatial": the ViT's patch embedding, class token, position embedding and blocks, i.e. every spatial parameter but
    /// the final LayerNorm, which trains with the temporal aggregator and the head (SLSTT's released code: only the last
    /// norm, the LSTM and the classifier have requires_grad). Rejected: freezing the final norm too (the released code
    /// trains it, and it rescales frozen features for the aggregator at 2·C parameters).
    /// </summary>
    public IEnumerable<Tensor> FrozenBy(string part) => part == "spatial"
        ? Spatial.NamedParameters().Where(p => !p.Name.StartsWith("norm.", StringComparison.Ordinal)).Select(p => p.Value)
        : throw new ArgumentException($"--freeze {part}: {Config.Name} can freeze: spatial");

    /// <summary>SLSTT trains with plain (class-weighted) cross-entropy, as the released code.</summary>
    public MerLoss CreateLoss(Rng rng) => new CrossEntropyLoss();

    /// <summary>
    /// The ViT's attention on each frame of one clip (<see cref="AttentionMaps.Of"/>) and, with a temporal transformer,
    /// its attention over the frame features (its class token at 0); the LSTM, GRU and mean aggregators have none.
    /// </summary>
    public ClipAttention Attention(ModelBatch batch)
    {
        var clips = ClipAttention.One(batch, InputKind.MotionFrames, Config.Name);
        using var _ = Tensors.Autograd.GradMode.NoGrad();
        int t = clips.Shape[1], s = Config.ImageSize;
        var frames = clips.Reshape(t, 3, s, s);
        var spatial = Enumerable.Range(0, t).Select(f => AttentionMaps.Of(Spatial, frames.Slice(0, f, 1))).ToList();
        AttentionMaps? temporal = null;
        if (Temporal is TemporalTransformer tt) temporal = tt.Attention(Spatial.Forward(frames).Reshape(1, t, Config.Width));
        return new ClipAttention(Config.Name, Spatial.Embed.Grid, spatial, temporal, TemporalClassToken: true);
    }

    /// <summary>clips [B, T, 3, H, W] → logits [B, classes].</summary>
    public Tensor Forward(Tensor clips)
    {
        if (clips.Rank != 5 || clips.Shape[2] != 3 || clips.Shape[3] != Config.ImageSize || clips.Shape[4] != Config.ImageSize)
            throw new ShapeException($"{Config.Name}: expected clips [B, T, 3, {Config.ImageSize}, {Config.ImageSize}], got {ShapeUtil.Format(clips.Shape)}");
        int b = clips.Shape[0], t = clips.Shape[1];
        if (Config.InputNorm == InputNormalisation.ImageNet) clips = NormaliseImageNet(clips);
        var frames = FrameFeatures(clips.Reshape(b * t, 3, Config.ImageSize, Config.ImageSize)).Reshape(b, t, Config.Width);
        var clip = Temporal.Forward(frames);
        if (HeadDrop != null) clip = HeadDrop.Forward(clip);
        if (HeadHidden != null) clip = HeadHidden.Forward(clip).Relu();
        return Head.Forward(clip);
    }

    /// <summary>
    /// The spatial encoder's class tokens [B·T, C] of the frames [B·T, 3, S, S]: the full forward, or, while every spatial
    /// parameter before the final LayerNorm is frozen (none requires a gradient), the cached class tokens before that
    /// LayerNorm (<see cref="FrozenFeatureCache"/>; missing frames computed and stored) followed by the LayerNorm, which trains.
    /// </summary>
    Tensor FrameFeatures(Tensor images)
    {
        // Dropout or drop-path inside the ViT make its training output random, and a conv stem's BatchNorm normalises by the
        // batch in training: nothing to cache then.
        if (!FrozenFeatureCache.Enabled || !SpatialFrozen || (Training && (Config.Dropout > 0f || Config.DropPath > 0f || Config.Stem == StemKind.Conv))) return Spatial.Forward(images);
        frozenWeights ??= FrozenWeightsKey();
        int n = images.Shape[0], c = Config.Width;
        var host = images.ToArray();
        int per = host.Length / n;
        var features = new float[n * c];
        var keys = new string[n];
        var missing = new List<int>();
        for (int f = 0; f < n; f++)
        {
            keys[f] = FrozenFeatureCache.Hash(host.AsSpan(f * per, per));
            if (FrozenFeatureCache.TryGet(frozenWeights, keys[f], out var cached)) cached.CopyTo(features, f * c);
            else missing.Add(f);
        }
        if (missing.Count > 0)
        {
            // Nothing here needs a gradient (frozen weights, data input), so no tape is recorded for the blocks.
            var subset = missing.Count == n ? images : images.IndexSelect(0, missing.ToArray());
            var computed = Spatial.ClassTokenBeforeNorm(subset).ToArray();
            for (int i = 0; i < missing.Count; i++)
            {
                var row = computed.AsSpan(i * c, c).ToArray();
                row.CopyTo(features, missing[i] * c);
                FrozenFeatureCache.Add(frozenWeights, keys[missing[i]], row);
            }
        }
        return Spatial.Norm.Forward(Tensor.FromSpan(features, [n, c], images.Device));
    }

    string? frozenWeights;

    /// <summary>True when no spatial parameter before the final LayerNorm requires a gradient (the ViT is frozen).</summary>
    bool SpatialFrozen => Spatial.NamedParameters().Where(p => !p.Name.StartsWith("norm.", StringComparison.Ordinal)).All(p => !p.Value.RequiresGrad);

    /// <summary>SHA-256 over the frozen spatial weights (names, shapes, values) and the config fields that change their output.</summary>
    string FrozenWeightsKey()
    {
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        sha.AppendData(System.Text.Encoding.UTF8.GetBytes(FormattableString.Invariant(
            $"S={Config.ImageSize};P={Config.PatchSize};C={Config.Width};depth={Config.Depth};heads={Config.Heads};mlp={Config.MlpHidden};eps={Config.LayerNormEps:R}{(Config.Stem == StemKind.Patch ? "" : ";stem=" + Config.Stem)}")));
        foreach (var (name, p) in Spatial.NamedParameters().Where(p => !p.Name.StartsWith("norm.", StringComparison.Ordinal)))
        {
            sha.AppendData(System.Text.Encoding.UTF8.GetBytes($"{name}{ShapeUtil.Format(p.Shape)}"));
            sha.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(p.ToArray().AsSpan()));
        }
        return Convert.ToHexString(sha.GetHashAndReset());
    }

    public static readonly float[] ImageNetMean = [0.485f, 0.456f, 0.406f];
    public static readonly float[] ImageNetStd = [0.229f, 0.224f, 0.225f];

    /// <summary>clips [B, T, 3, H, W] in [0, 1] → (x − mean_c) / std_c per channel c (broadcast over [1, 1, 3, 1, 1]).</summary>
    public static Tensor NormaliseImageNet(Tensor clips)
    {
        var mean = Tensor.FromSpan(ImageNetMean, [1, 1, 3, 1, 1], clips.Device);
        var invStd = Tensor.FromSpan(ImageNetStd.Select(s => 1f / s).ToArray(), [1, 1, 3, 1, 1], clips.Device);
        return (clips - mean) * invStd;
    }
}
