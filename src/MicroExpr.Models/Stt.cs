using System.Text.Json.Serialization;
using MicroExpr.Nn;
using MicroExpr.Tensors;

namespace MicroExpr.Models;

/// <summary>How a frame becomes visual tokens in STT.</summary>
[JsonConverter(typeof(JsonStringEnumConverter))]
public enum SttBackbone
{
    /// <summary>The ViT's linear patch embedding (no convolution): P×P patches → width C.</summary>
    Patch,
    /// <summary>ResNet-18 truncated after a stage; its H′×W′ grid of C′ channels, projected to width C.</summary>
    ResNet18,
}

/// <summary>How one STT block combines its spatial and temporal attention ("jointly", see <see cref="SttModel"/>).</summary>
[JsonConverter(typeof(JsonStringEnumConverter))]
public enum SttJoint
{
    /// <summary>x ← x + S(norm(x)); x ← x + T(norm(x)): spatial then temporal (divided space-time attention). Default.</summary>
    Sequential,
    /// <summary>x ← x + S(norm_s(x)) + T(norm_t(x)): both read the block's input and their outputs are summed.</summary>
    Parallel,
}

/// <summary>Everything that fixes an STT model's shapes and its loss. Saved beside every checkpoint.</summary>
public sealed record SttConfig : IMerModelConfig
{
    public const string FamilyName = "stt";

    public required string Name { get; init; }
    public SttBackbone Backbone { get; init; } = SttBackbone.Patch;
    /// <summary>The cache input the frames come from: motion frames for stt-tiny, RGB face frames for stt-r18.</summary>
    public InputKind Input { get; init; } = InputKind.MotionFrames;
    public int ImageSize { get; init; } = 32;
    /// <summary>Patch side P of the linear patch embedding (Backbone = Patch).</summary>
    public int PatchSize { get; init; } = 8;
    /// <summary>ResNet-18 stage (1..4, torchvision's layer1..layer4) after which the backbone is cut (Backbone = ResNet18).</summary>
    public int ResNetStage { get; init; } = 3;
    public int Width { get; init; } = 64;
    public int Depth { get; init; } = 2;
    public int Heads { get; init; } = 2;
    public int MlpHidden { get; init; } = 128;
    /// <summary>Temporal position embeddings exist for this many frames.</summary>
    public int MaxFrames { get; init; } = 16;
    public SttJoint Joint { get; init; } = SttJoint.Sequential;
    public int Classes { get; init; } = 3;
    public float LayerNormEps { get; init; } = 1e-5f;
    /// <summary>The compactness term of the loss (<see cref="CompactSoftmaxLoss"/>); None trains with plain cross-entropy.</summary>
    public CompactKind Compact { get; init; } = CompactKind.Centre;
    /// <summary>λ of the compactness term.</summary>
    public float CompactWeight { get; init; } = 0.01f;

    [JsonIgnore] public string Family => FamilyName;

    /// <summary>
    /// Frames [T, 3, S, S] of <see cref="Input"/>, any T, S = ImageSize; the patch embedding takes the cache's S (a multiple
    /// of P), the ResNet-18 backbone needs S = ImageSize exactly.
    /// </summary>
    [JsonIgnore] public IReadOnlyList<InputShape> Inputs => [new(Input, 0, 3, ImageSize)];

    public IMerModelConfig ForData(DataShape data)
    {
        var frames = data.Require(Name, Inputs[0], exactSize: Backbone != SttBackbone.Patch);
        if (Backbone == SttBackbone.Patch && frames.Size % PatchSize != 0)
            throw new InvalidDataException($"{data.Source}: {Name}: images of {frames.Size} px are not a multiple of the patch size {PatchSize}; preprocess with --size {Math.Max(PatchSize, frames.Size / PatchSize * PatchSize)}");
        return this with { ImageSize = frames.Size, Classes = data.Classes, MaxFrames = Math.Max(MaxFrames, frames.Frames) };
    }

    public IReadOnlyList<string> Differences(IMerModelConfig other)
    {
        if (other is not SttConfig o) return [$"family: {Family} vs {other.Family}"];
        var d = new List<string>();
        void Cmp<T>(string n, T a, T b) { if (!EqualityComparer<T>.Default.Equals(a, b)) d.Add($"{n}: {a} vs {b}"); }
        Cmp("backbone", Backbone, o.Backbone);
        Cmp("input", Input, o.Input);
        Cmp("image_size", ImageSize, o.ImageSize);
        Cmp("patch_size", PatchSize, o.PatchSize);
        Cmp("resnet_stage", ResNetStage, o.ResNetStage);
        Cmp("width", Width, o.Width);
        Cmp("depth", Depth, o.Depth);
        Cmp("heads", Heads, o.Heads);
        Cmp("mlp_hidden", MlpHidden, o.MlpHidden);
        Cmp("max_frames", MaxFrames, o.MaxFrames);
        Cmp("joint", Joint, o.Joint);
        Cmp("classes", Classes, o.Classes);
        Cmp("compact", Compact, o.Compact);
        Cmp("compact_weight", CompactWeight, o.CompactWeight);
        return d;
    }
}

/// <summary>The STT presets.</summary>
public static class SttPresets
{
    /// <summary>
    /// For the demo machine: the existing motion cache (32 px, any T), 8×8 linear patches (16 tokens + class token),
    /// width 64, 2 blocks of 2 heads, MLP 128; compact softmax CE with λ = 0.01.
    /// </summary>
    public static SttConfig Tiny => new() { Name = "stt-tiny" };

    /// <summary>
    /// As in the paper's description: RGB face frames at 112 px through ResNet-18 cut after layer3 (256 channels at
    /// stride 16: a 7×7 grid, 49 tokens + class token), projected to width 256; 4 blocks of 4 heads × 64, MLP 1024.
    /// The transformer's width and depth are not given by the paper (unverified): ours.
    /// </summary>
    public static SttConfig R18 => new()
    {
        Name = "stt-r18", Backbone = SttBackbone.ResNet18, Input = InputKind.RgbFrames, ImageSize = 112, ResNetStage = 3,
        Width = 256, Depth = 4, Heads = 4, MlpHidden = 1024,
    };
}

/// <summary>Turns frames [F, 3, S, S] into visual tokens [F, N, C] (STT's pluggable backbone).</summary>
public abstract class FrameTokenizer : Module
{
    /// <summary>Tokens per frame N.</summary>
    public abstract int Tokens { get; }
    /// <summary>[F, 3, S, S] → [F, N, C].</summary>
    public abstract Tensor Forward(Tensor frames);
}

/// <summary>The ViT's linear patch embedding as a frame tokenizer (stt-tiny).</summary>
public sealed class PatchTokenizer : FrameTokenizer
{
    public PatchTokenizer(int imageSize, int patchSize, int width, Rng rng) =>
        Embed = Child("patch_embed", new PatchEmbed(imageSize, patchSize, 3, width, rng));

    public PatchEmbed Embed { get; }
    public override int Tokens => Embed.Tokens;
    public override Tensor Forward(Tensor frames) => Embed.Forward(frames);
}

/// <summary>
/// ResNet-18 (torchvision's layout, <see cref="ResNet18"/>) truncated after stage <c>layer{stage}</c> as a frame tokenizer
/// (stt-r18): [F, 3, S, S] → feature map [F, C′, S/s, S/s] (s = 4·2^(stage−1), C′ = 64·2^(stage−1)) → its H′·W′ cells as
/// tokens in row-major order [F, H′·W′, C′] → a linear projection to the transformer width C. BatchNorm follows the
/// model's training mode (batch statistics in training, running statistics in evaluation); its running statistics are
/// buffers, saved with every checkpoint.
/// </summary>
public sealed class ResNetTokenizer : FrameTokenizer
{
    public ResNetTokenizer(int imageSize, int stage, int width, Rng rng)
    {
        if (stage is < 1 or > 4) throw new ArgumentOutOfRangeException(nameof(stage), stage, "stt: the ResNet-18 cut must be after stage 1..4 (layer1..layer4)");
        Backbone = Child("backbone", new ResNet18(new ResNet18Config { Until = (ResNetStage)stage, Seed = (ulong)rng.NextUInt() << 32 | rng.NextUInt() }));
        if (imageSize % Backbone.OutStride != 0)
            throw new ArgumentException($"stt: images of {imageSize} px are not a multiple of the ResNet-18 stride {Backbone.OutStride} after layer{stage}");
        Grid = imageSize / Backbone.OutStride;
        Proj = Child("proj", new Linear(Backbone.OutChannels, width, rng, true, initStd: 0.02f));
    }

    public ResNet18 Backbone { get; }
    public int Grid { get; }
    public Linear Proj { get; }
    public override int Tokens => Grid * Grid;

    public override Tensor Forward(Tensor frames)
    {
        var map = Backbone.Forward(frames);                                       // [F, C′, H′, W′]
        int f = map.Shape[0], c = map.Shape[1];
        return Proj.Forward(map.Permute(0, 2, 3, 1).Reshape(f, Grid * Grid, c));  // [F, N, C]
    }
}

/// <summary>
/// One STT block on time-major tokens x [T, B, N, C] (N includes the class token): pre-norm spatial attention over the N
/// tokens of each frame ([T·B, N, C], <see cref="Tensor.SelfAttention"/>), pre-norm temporal attention over the T frames
/// of each token position ([T, B·N, C], <see cref="Tensor.SelfAttentionAcross"/>), combined as <see cref="SttJoint"/>
/// says, then a pre-norm GELU MLP. Both attentions read the same storage through reshapes (views): no token is copied.
/// x [T, B, N, C] → [T, B, N, C]; without the tape the block's intermediates are freed when it returns (<see cref="ScopedBlock"/>).
/// </summary>
public sealed class SttBlock : ScopedBlock
{
    public SttBlock(int dim, int heads, int mlpHidden, SttJoint joint, Rng rng, float eps = 1e-5f, float? initStd = 0.02f)
    {
        Joint = joint;
        NormSpatial = Child("norm_s", new LayerNorm(dim, eps));
        Spatial = Child("attn_s", new MultiHeadSelfAttention(dim, heads, rng, initStd));
        NormTemporal = Child("norm_t", new LayerNorm(dim, eps));
        Temporal = Child("attn_t", new MultiHeadSelfAttention(dim, heads, rng, initStd, acrossFirstAxis: true));
        NormMlp = Child("norm2", new LayerNorm(dim, eps));
        Mlp = Child("mlp", new Mlp(dim, mlpHidden, rng, initStd));
    }

    public SttJoint Joint { get; }
    public LayerNorm NormSpatial { get; }
    public MultiHeadSelfAttention Spatial { get; }
    public LayerNorm NormTemporal { get; }
    /// <summary>Attention along the time axis of [T, B·N, C] (<see cref="Tensor.SelfAttentionAcross"/>).</summary>
    public MultiHeadSelfAttention Temporal { get; }
    public LayerNorm NormMlp { get; }
    public Mlp Mlp { get; }

    protected override Tensor ForwardCore(Tensor x)
    {
        if (x.Rank != 4) throw new ShapeException($"stt block: expected tokens [T, B, N, C], got {ShapeUtil.Format(x.Shape)}");
        int t = x.Shape[0], b = x.Shape[1], n = x.Shape[2], c = x.Shape[3];
        var frames = x.Reshape(t * b, n, c);                                                  // [T·B, N, C]: one frame per row block
        Tensor h;
        if (Joint == SttJoint.Sequential)
        {
            var s = Spatial.Forward(NormSpatial.Forward(frames), residual: frames).Reshape(t, b * n, c);
            h = Temporal.Forward(NormTemporal.Forward(s), residual: s);                      // [T, B·N, C]
        }
        else
        {
            var s = Spatial.Forward(NormSpatial.Forward(frames), residual: frames).Reshape(t, b * n, c);
            h = Temporal.Forward(NormTemporal.Forward(x.Reshape(t, b * n, c)), residual: s); // x + S(x) + T(x)
        }
        return Mlp.Forward(NormMlp.Forward(h), residual: h).Reshape(t, b, n, c);
    }
}

/// <summary>
/// STT (Ma, Sun, Li 2022; papers.md §2; no public code): a frame tokenizer per frame, learnable spatio-temporal position
/// embeddings and a class token, blocks of joint spatial and temporal attention, and the class token's logits; trained
/// with <see cref="CompactSoftmaxLoss"/>. Input [B, T, 3, S, S] → logits [B, classes], features [B, C].
/// <para>Choices where the paper is silent (each with the alternative we rejected):</para>
/// <list type="bullet">
/// <item><b>"Jointly"</b> is read as <b>sequential spatial → temporal within one block</b> (divided space-time attention
/// as in TimeSformer, but spatial first as the issue describes): every token first attends to the N tokens of its
/// frame ([B·T, N, C]), then to its own position across the T frames ([B·N, T, C]), each pre-norm with a residual, then
/// the MLP. Option <see cref="SttJoint.Parallel"/>: both attentions read the block input and their outputs are summed.
/// Rejected: full joint attention over all T·N tokens (quadratic in T·N, and not what "spatial and temporal attention"
/// describes).</item>
/// <item><b>The class token</b> is token 0 of <b>every frame</b>: one learned vector, copied to the T frames and given each
/// frame's temporal position embedding. In spatial attention it attends to (and is attended by) the tokens of its frame;
/// in temporal attention the T class tokens attend to each other like any token position. The clip feature is the
/// mean over T of the class tokens after the final LayerNorm. Rejected: a single clip-level class token attending to
/// all T·N tokens (TimeSformer's), which fits neither attention's shape and would need a third attention call.</item>
/// <item><b>Position embeddings</b> are factorised: a spatial table [N + 1, C] (class token included) plus a temporal
/// table [MaxFrames, C], summed by broadcasting. Rejected: one joint table [T·(N + 1), C], T times as many parameters
/// with nothing shared between frames, and tied to one T.</item>
/// <item><b>Layout.</b> Tokens are kept time-major, [T, B, N, C] in storage (logically the [B, T, N, C] of the paper),
/// so both attentions are single-stride layouts of the same buffer: spatial = [T·B, N, 3C] (the packed-QKV layout),
/// temporal = [T, B·N, 3C] read along its first axis. With batch-major storage the temporal operand's sequence index
/// (b, n) would need two strides, which the attention layout does not have, so every block would copy. The one permute
/// is of the input clips.</item>
/// <item>T = 1: temporal attention over one token returns its own value, so the block adds proj(v) and mixes nothing
/// across frames.</item>
/// </list>
/// </summary>
public sealed class SttModel : Module, IAttentionModel
{
    public SttModel(SttConfig config, Rng rng)
    {
        Config = config;
        Tokenizer = Child("tokenizer", config.Backbone switch
        {
            SttBackbone.Patch => (FrameTokenizer)new PatchTokenizer(config.ImageSize, config.PatchSize, config.Width, rng),
            SttBackbone.ResNet18 => new ResNetTokenizer(config.ImageSize, config.ResNetStage, config.Width, rng),
            _ => throw new ArgumentOutOfRangeException(nameof(config)),
        });
        int n = Tokenizer.Tokens + 1;
        ClsToken = Parameter("cls_token", Tensor.TruncNormal([1, 1, 1, config.Width], rng, 0.02f, -0.04f, 0.04f));
        PosSpatial = Parameter("pos_spatial", Tensor.TruncNormal([1, 1, n, config.Width], rng, 0.02f, -0.04f, 0.04f));
        PosTemporal = Parameter("pos_temporal", Tensor.TruncNormal([config.MaxFrames, 1, 1, config.Width], rng, 0.02f, -0.04f, 0.04f));
        Blocks = new SttBlock[config.Depth];
        for (int i = 0; i < config.Depth; i++)
            Blocks[i] = Child($"blocks.{i}", new SttBlock(config.Width, config.Heads, config.MlpHidden, config.Joint, rng, config.LayerNormEps));
        Norm = Child("norm", new LayerNorm(config.Width, config.LayerNormEps));
        Head = Child("head", new Linear(config.Width, config.Classes, rng));
    }

    public SttConfig Config { get; }
    IMerModelConfig IMerModel.Config => Config;
    public FrameTokenizer Tokenizer { get; }
    public Tensor ClsToken { get; }
    public Tensor PosSpatial { get; }
    public Tensor PosTemporal { get; }
    public SttBlock[] Blocks { get; }
    public LayerNorm Norm { get; }
    public Linear Head { get; }

    public ModelOutput Forward(ModelBatch batch)
    {
        var (logits, features) = Forward(batch[Config.Input]);
        return new ModelOutput(logits, new Dictionary<string, Tensor> { [ModelOutput.Features] = features });
    }

    /// <summary>Compact softmax cross-entropy over the clip features (or plain cross-entropy with Compact = None).</summary>
    public MerLoss CreateLoss(Rng rng) => Config.Compact switch
    {
        CompactKind.None => new CrossEntropyLoss(),
        CompactKind.Centre => new CompactSoftmaxLoss(Config.Classes, Config.Width, rng, Config.CompactWeight),
        CompactKind.SymmetricKl => new NonTargetKlLoss(Config.CompactWeight),
        _ => throw new ArgumentOutOfRangeException(nameof(rng)),
    };

    /// <summary>clips [B, T, 3, S, S] → logits [B, classes] and clip features [B, C].</summary>
    /// <summary>
    /// One clip's attention: per block, the spatial attention of each frame ([H, N, N], the frame's class token at 0) and the
    /// temporal attention of the class-token position across the T frames ([H, T, T]); recomputed from each block's own
    /// q and k (<see cref="AttentionMaps.Probabilities"/>) as the block's forward runs. See <see cref="ClipAttention"/> for
    /// what is drawn from them.
    /// </summary>
    public ClipAttention Attention(ModelBatch batch)
    {
        var clips = ClipAttention.One(batch, Config.Input, Config.Name);
        using var _ = Tensors.Autograd.GradMode.NoGrad();
        int s = Config.ImageSize, c = Config.Width, t = clips.Shape[1];
        if (t > Config.MaxFrames) throw new ShapeException($"{Config.Name}: {t} frames, but temporal position embeddings exist for {Config.MaxFrames}");
        var tokens = Tokenizer.Forward(clips.Reshape(t, 3, s, s));                                // [T, N−1, C] (B = 1: time-major is frame order)
        int n = tokens.Shape[1] + 1;
        var x = Tensor.Concat(2, ClsToken.BroadcastTo(t, 1, 1, c), tokens.Reshape(t, 1, n - 1, c)) + PosSpatial + PosTemporal.Slice(0, 0, t);
        var spatial = Enumerable.Range(0, t).Select(_ => new List<double[]>()).ToArray();
        var temporal = new List<double[]>();
        foreach (var block in Blocks)
        {
            int h = block.Spatial.Heads, d = block.Spatial.HeadDim;
            var frames = x.Reshape(t, n, c);
            var qkv = block.Spatial.Qkv.Forward(block.NormSpatial.Forward(frames)).ToArray();    // [T, N, 3C]
            for (int f = 0; f < t; f++) spatial[f].Add(AttentionMaps.Probabilities(qkv[(f * n * 3 * c)..((f + 1) * n * 3 * c)], n, h, d));
            var temporalIn = block.Joint == SttJoint.Sequential ? block.Spatial.Forward(block.NormSpatial.Forward(frames), residual: frames) : frames;
            var tq = block.Temporal.Qkv.Forward(block.NormTemporal.Forward(temporalIn)).ToArray(); // [T, N, 3C]
            var cls = new float[t * 3 * c];                                                      // the class-token position of each frame
            for (int f = 0; f < t; f++) Array.Copy(tq, f * n * 3 * c, cls, f * 3 * c, 3 * c);
            temporal.Add(AttentionMaps.Probabilities(cls, t, block.Temporal.Heads, block.Temporal.HeadDim));
            x = block.Forward(x);
        }
        int grid = (int)Math.Round(Math.Sqrt(n - 1));
        return new ClipAttention(Config.Name, grid, spatial.Select(l => new AttentionMaps(Config.Heads, n, l)).ToList(),
            new AttentionMaps(Config.Heads, t, temporal), TemporalClassToken: false);
    }

    public (Tensor Logits, Tensor Features) Forward(Tensor clips)
    {
        int s = Config.ImageSize, c = Config.Width;
        if (clips.Rank != 5 || clips.Shape[2] != 3 || clips.Shape[3] != s || clips.Shape[4] != s)
            throw new ShapeException($"{Config.Name}: expected clips [B, T, 3, {s}, {s}], got {ShapeUtil.Format(clips.Shape)}");
        int b = clips.Shape[0], t = clips.Shape[1];
        if (t > Config.MaxFrames) throw new ShapeException($"{Config.Name}: {t} frames, but temporal position embeddings exist for {Config.MaxFrames}");
        var frames = clips.Permute(1, 0, 2, 3, 4).Reshape(t * b, 3, s, s);                       // time-major [T·B, 3, S, S]
        var tokens = Tokenizer.Forward(frames);                                                   // [T·B, N, C]
        int n = tokens.Shape[1] + 1;
        var x = Tensor.Concat(2, ClsToken.BroadcastTo(t, b, 1, c), tokens.Reshape(t, b, n - 1, c)) // [T, B, N+1, C]
                + PosSpatial + PosTemporal.Slice(0, 0, t);
        foreach (var block in Blocks) x = block.Forward(x);
        var cls = Norm.Forward(x.Slice(2, 0, 1)).Reshape(t, b, c);                                // the class token of each frame
        var features = cls.Mean([0]);                                                             // [B, C]
        return (Head.Forward(features), features);
    }
}
