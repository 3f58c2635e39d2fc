using System.Globalization;
using System.Text.Json.Serialization;
using MicroExpr.Nn;
using MicroExpr.Tensors;
using MicroExpr.Tensors.Autograd;

namespace MicroExpr.Models;

/// <summary>
/// Everything that fixes an FDP model's shapes and its loss (papers.md §3, from CYF-cuber/FDP's released <c>fdp.py</c>).
/// Saved beside every checkpoint. Lists compare element by element (<see cref="Equals(FdpConfig?)"/>).
/// </summary>
public sealed record FdpConfig : IMerModelConfig
{
    public const string FamilyName = "fdp";

    /// <summary>Frames per clip: the released code samples 8 (i·⌊L/8⌋) and its reshape hard-codes them.</summary>
    public const int ClipFrames = 8;

    public required string Name { get; init; }
    /// <summary>Side S of the aligned grey frames and of the dynamic image (the released code: 64). A multiple of 32.</summary>
    public int ImageSize { get; init; } = 64;
    /// <summary>The stem's three widths: 3×3 ConvBNReLU 1→c0 /2, c0→c1, c1→c2, c2→c2 /2 (released: 64, 32, 64).</summary>
    public int[] StemChannels { get; init; } = [64, 32, 64];
    /// <summary>LFA blocks per stage (released: 3, 4, 10, 3).</summary>
    public int[] Depths { get; init; } = [3, 4, 10, 3];
    /// <summary>Width of each stage (released: 96, 192, 384, 768); stages 2–4 start at stride 2.</summary>
    public int[] Widths { get; init; } = [96, 192, 384, 768];
    /// <summary>The LFA MLP's hidden width is C·ratio rounded to a multiple of 32 (timm's _make_divisible).</summary>
    public int MlpRatio { get; init; } = 3;
    /// <summary>Stochastic depth rises linearly from 0 (first block) to this (last block).</summary>
    public float DropPathRate { get; init; } = 0.1f;
    /// <summary>Channels of the rank scorer's Conv3d (released: 8).</summary>
    public int RankChannels { get; init; } = 8;
    /// <summary>Hidden width of the MER head (released: 256).</summary>
    public int HeadHidden { get; init; } = 256;
    /// <summary>SegNet widths of its five stages (released, VGG16's: 64, 128, 256, 512, 512).</summary>
    public int[] DecoderWidths { get; init; } = [64, 128, 256, 512, 512];
    /// <summary>3×3 conv + BN + ReLU units per SegNet stage (released: 2, 2, 3, 3, 3), mirrored in the decoder.</summary>
    public int[] DecoderDepths { get; init; } = [2, 2, 3, 3, 3];
    public int Classes { get; init; } = 3;
    /// <summary>Weight of the dynamic-image MSE in the loss (released: 100).</summary>
    public float DynamicImageWeight { get; init; } = 100f;
    /// <summary>BatchNorm eps of the frame encoder (released NORM_EPS 1e-5; SegNet uses PyTorch's default, also 1e-5).</summary>
    public float NormEps { get; init; } = 1e-5f;
    /// <summary>How the rank scorer lays the frame features out for its Conv3d: <see cref="FdpRankLayout.Released"/> (the code's
    /// reshape without a permute) or <see cref="FdpRankLayout.Temporal"/> (the paper's reading: time on the kernel's 8-wide axis).</summary>
    public FdpRankLayout RankLayout { get; init; } = FdpRankLayout.Released;

    [JsonIgnore] public string Family => FamilyName;

    /// <summary>
    /// Frame feature width F = S²: the rank scorer reshapes the T = 8 frame vectors [B, 8, F] to [B, 1, S, S, 8], which
    /// needs 8·F = 8·S² (released: 4096 = 64²). Derived, not free, so the reshape can never mismatch.
    /// </summary>
    [JsonIgnore] public int FeatureDim => ImageSize * ImageSize;

    /// <summary>Grey aligned frames [8, 1, S, S] in [0, 1], the model's input.</summary>
    [JsonIgnore] public IReadOnlyList<InputShape> Inputs => [new(InputKind.GreyFrames, ClipFrames, 1, ImageSize)];

    /// <summary>The dynamic image [1, 1, S, S] in [0, 1], the loss's reconstruction target (training only).</summary>
    [JsonIgnore] public IReadOnlyList<InputShape> Targets => [new(InputKind.DynamicImage, 1, 1, ImageSize)];

    /// <summary>The preset fitted to a cache: its S (a multiple of 32, for SegNet's five 2×2 poolings) and its classes.</summary>
    public IMerModelConfig ForData(DataShape data)
    {
        var frames = data.Require(Name, Inputs[0]);
        var di = data.Require(Name, Targets[0] with { Size = frames.Size });
        if (di.Size != frames.Size)
            throw new InvalidDataException($"{data.Source}: {Name}: dynamic images of {di.Size} px but frames of {frames.Size} px");
        var fitted = this with { ImageSize = frames.Size, Classes = data.Classes };
        if (fitted.Check() is { } problem) throw new InvalidDataException($"{data.Source}: {problem}");
        return fitted;
    }

    /// <summary>A one-line description of what is wrong with this config, or null.</summary>
    public string? Check()
    {
        int pools = DecoderWidths.Length;
        if (ImageSize < 1 << pools || ImageSize % (1 << pools) != 0)
            return $"{Name}: images of {ImageSize} px are not a multiple of {1 << pools} (the decoder's {pools} 2×2 poolings); preprocess with --size {Math.Max(1 << pools, ImageSize >> pools << pools)}";
        if (StemChannels.Length != 3) return $"{Name}: stem_channels needs 3 widths, got {StemChannels.Length}";
        if (Depths.Length != Widths.Length || Depths.Length == 0) return $"{Name}: depths ({Depths.Length}) and widths ({Widths.Length}) must name the same stages";
        if (DecoderDepths.Length != DecoderWidths.Length) return $"{Name}: decoder_depths ({DecoderDepths.Length}) and decoder_widths ({DecoderWidths.Length}) must name the same stages";
        if (Depths.Any(d => d < 1) || DecoderDepths.Any(d => d < 1)) return $"{Name}: every stage needs at least one block";
        if (ImageSize / 3 < 1) return $"{Name}: images of {ImageSize} px are too small for the head's 3×3 max pool";
        return null;
    }

    public IReadOnlyList<string> Differences(IMerModelConfig other)
    {
        if (other is not FdpConfig o) return [$"family: {Family} vs {other.Family}"];
        var d = new List<string>();
        void Cmp<T>(string n, T a, T b) { if (!EqualityComparer<T>.Default.Equals(a, b)) d.Add($"{n}: {a} vs {b}"); }
        void Seq(string n, int[] a, int[] b) { if (!a.SequenceEqual(b)) d.Add($"{n}: [{string.Join(", ", a)}] vs [{string.Join(", ", b)}]"); }
        Cmp("image_size", ImageSize, o.ImageSize);
        Seq("stem_channels", StemChannels, o.StemChannels);
        Seq("depths", Depths, o.Depths);
        Seq("widths", Widths, o.Widths);
        Cmp("mlp_ratio", MlpRatio, o.MlpRatio);
        Cmp("drop_path_rate", DropPathRate, o.DropPathRate);
        Cmp("rank_channels", RankChannels, o.RankChannels);
        Cmp("head_hidden", HeadHidden, o.HeadHidden);
        Seq("decoder_widths", DecoderWidths, o.DecoderWidths);
        Seq("decoder_depths", DecoderDepths, o.DecoderDepths);
        Cmp("classes", Classes, o.Classes);
        Cmp("dynamic_image_weight", DynamicImageWeight, o.DynamicImageWeight);
        Cmp("norm_eps", NormEps, o.NormEps);
        Cmp("rank_layout", RankLayout, o.RankLayout);
        return d;
    }

    public bool Equals(FdpConfig? other) => other is not null && Name == other.Name && Differences(other).Count == 0;

    public override int GetHashCode() => HashCode.Combine(Name, ImageSize, Classes, Widths.Length > 0 ? Widths[^1] : 0);
}

/// <summary>The rank scorer's layout of the frame features [B, T = 8, F] before its Conv3d (kernel (3, 3, 8) over (D, H, W)).</summary>
[JsonConverter(typeof(JsonStringEnumConverter))]
public enum FdpRankLayout
{
    /// <summary>As released: <c>reshape(-1, 1, S, S, 8)</c> with no permute, so W spans 8 consecutive features of one frame.</summary>
    Released,
    /// <summary>
    /// The paper's reading, offered as an option: features over (D, H) = (S, S), the T = 8 frames over W
    /// (<c>permute(0, 2, 1).reshape(-1, 1, S, S, 8)</c>), so each output is a learned temporal filter over all 8 frames of
    /// a 3×3 neighbourhood of features, as the "rank scorer" is described.
    /// </summary>
    Temporal,
}

/// <summary>The FDP presets.</summary>
public static class FdpPresets
{
    /// <summary>As released (CYF-cuber/FDP): 64 px, the widths and depths of <see cref="FdpConfig"/>'s defaults; about 85 M parameters.</summary>
    public static FdpConfig Released => new() { Name = "fdp" };

    /// <summary>
    /// For the 2-core demo machine: the same structure (stem, four LFA stages, rank scorer, head, five-stage SegNet) at
    /// 32 px (F = 1024) with narrow widths (stem 8, 8, 16; stages 16, 24, 32, 48), one LFA block per stage and one
    /// conv unit per SegNet stage (widths 8, 8, 16, 16, 16), sized so that the demo's 12 LOSO folds and final model fit
    /// its budget.
    /// </summary>
    public static FdpConfig Tiny => new()
    {
        Name = "fdp-tiny", ImageSize = 32, StemChannels = [8, 8, 16], Depths = [1, 1, 1, 1], Widths = [16, 24, 32, 48],
        HeadHidden = 64, DecoderWidths = [8, 8, 16, 16, 16], DecoderDepths = [1, 1, 1, 1, 1],
    };
}

/// <summary>
/// The released PatchEmbed: at stride 2, a 2×2 average pool (ceil mode, padding not counted) + 1×1 conv (no bias) + BN;
/// at stride 1 with a change of width, 1×1 conv + BN; otherwise the identity.
/// </summary>
public sealed class FdpPatchEmbed : Module
{
    public FdpPatchEmbed(int inChannels, int outChannels, int stride, float eps, Rng rng)
    {
        Stride = stride;
        if (stride == 2 || inChannels != outChannels)
        {
            Conv = Child("conv", new Conv2d(inChannels, outChannels, 1, rng, bias: false));
            Norm = Child("norm", new BatchNorm2d(outChannels, eps));
        }
    }

    public int Stride { get; }
    public Conv2d? Conv { get; }
    public BatchNorm2d? Norm { get; }

    public Tensor Forward(Tensor x)
    {
        if (Stride == 2) x = x.AvgPool2d(2, 2, 0, ceilMode: true, countIncludePad: false);
        return Conv is null ? x : ConvBn.Forward(Conv, Norm!, x, relu: false);
    }
}

/// <summary>
/// The released LFA block ("Next Convolution Block"): x ← PatchEmbed(x); x ← x + DropPath(conv3×3(x)) (the code's MHCA:
/// a full 3×3 conv, no bias — not grouped, whatever its name says); x ← x + DropPath(MLP(BN(x))), MLP = 1×1 conv C→H
/// (bias), ReLU, 1×1 conv H→C (bias), H = C·ratio rounded to a multiple of 32. Names follow the released module
/// (<c>patch_embed</c>, <c>mhca.group_conv3x3</c>, <c>norm</c>, <c>mlp.conv1</c>, <c>mlp.conv2</c>).
/// </summary>
public sealed class LfaBlock : Module
{
    public LfaBlock(int inChannels, int outChannels, int stride, float dropPath, int mlpRatio, float eps, Rng rng)
    {
        PatchEmbed = Child("patch_embed", new FdpPatchEmbed(inChannels, outChannels, stride, eps, rng));
        Mhca = Child("mhca", new ConvHolder("group_conv3x3", new Conv2d(outChannels, outChannels, 3, rng, 1, 1, bias: false)));
        DropAttention = Child("attention_path_dropout", new DropPath(dropPath, rng.Fork(1)));
        Norm = Child("norm", new BatchNorm2d(outChannels, eps));
        int hidden = MakeDivisible(outChannels * mlpRatio, 32);
        Mlp = Child("mlp", new ConvMlp(outChannels, hidden, rng));
        DropMlp = Child("mlp_path_dropout", new DropPath(dropPath, rng.Fork(2)));
    }

    public FdpPatchEmbed PatchEmbed { get; }
    public ConvHolder Mhca { get; }
    public DropPath DropAttention { get; }
    public BatchNorm2d Norm { get; }
    public ConvMlp Mlp { get; }
    public DropPath DropMlp { get; }

    public Tensor Forward(Tensor x)
    {
        x = PatchEmbed.Forward(x);
        x = x + DropAttention.Forward(Mhca.Conv.Forward(x));
        return x + DropMlp.Forward(Mlp.Forward(Norm.Forward(x)));
    }

    /// <summary>timm's _make_divisible: v rounded to the nearest multiple of d (at least d), never more than 10 % below v.</summary>
    public static int MakeDivisible(int v, int d)
    {
        int n = Math.Max(d, (int)(v + d / 2.0) / d * d);
        return n < 0.9 * v ? n + d : n;
    }

    /// <summary>One named conv (the released MHCA module holds only its <c>group_conv3x3</c>).</summary>
    public sealed class ConvHolder : Module
    {
        public ConvHolder(string name, Conv2d conv) => Conv = Child(name, conv);
        public Conv2d Conv { get; }
    }

    /// <summary>1×1 conv C→H (bias), ReLU, 1×1 conv H→C (bias): the first conv and its ReLU run as one fused op.</summary>
    public sealed class ConvMlp : Module
    {
        public ConvMlp(int channels, int hidden, Rng rng)
        {
            Conv1 = Child("conv1", new Conv2d(channels, hidden, 1, rng));
            Conv2 = Child("conv2", new Conv2d(hidden, channels, 1, rng));
        }

        public Conv2d Conv1 { get; }
        public Conv2d Conv2 { get; }

        public Tensor Forward(Tensor x) => Conv2.Forward(Tensor.FusedConv2d(x, Conv1.Weight, Conv1.Bias!, true, 1, 1, 0, 0));
    }
}

/// <summary>
/// FDP's frame encoder (the released <c>Local_Global_Feature_Aware_Transformer</c>, of which only the LFA blocks are ever
/// built: the code lists a GFA block after each stage but builds <c>depths[i]</c> blocks, all LFA): one grey frame
/// [N, 1, S, S] → stem (3×3 ConvBNReLU, pad 1, no bias: 1→c0 /2, c0→c1, c1→c2, c2→c2 /2) → LFA stages (stage 1 at
/// stride 1, stages 2–4 starting at stride 2) with drop path linearly 0 → rate over all blocks → BN → global average pool
/// → Linear → F. [N, 1, S, S] → [N, F]. Initialised as released: conv and linear weights truncated normal, std 0.02
/// (timm's trunc_normal_, whose bounds ±2 are absolute, so effectively untruncated), biases 0, BN γ = 1, β = 0.
/// </summary>
public sealed class FdpFrameEncoder : Module
{
    public FdpFrameEncoder(FdpConfig c, Rng rng)
    {
        var stem = new StemHolder();
        int[] sc = c.StemChannels;
        (int In, int Out, int Stride)[] units = [(1, sc[0], 2), (sc[0], sc[1], 1), (sc[1], sc[2], 1), (sc[2], sc[2], 2)];
        for (int i = 0; i < units.Length; i++)
            stem.Add(i, new StemUnit(units[i].In, units[i].Out, units[i].Stride, c.NormEps, rng));
        Stem = Child("stem", stem);
        int total = c.Depths.Sum(), idx = 0, ch = sc[2];
        var blocks = new List<LfaBlock>();
        var features = new BlockList();
        for (int s = 0; s < c.Depths.Length; s++)
            for (int j = 0; j < c.Depths[s]; j++, idx++)
            {
                float dpr = total == 1 ? 0f : c.DropPathRate * idx / (total - 1);   // torch.linspace(0, rate, total)
                var block = new LfaBlock(ch, c.Widths[s], s > 0 && j == 0 ? 2 : 1, dpr, c.MlpRatio, c.NormEps, rng.Fork((ulong)idx + 100));
                features.Add(idx, block);
                blocks.Add(block);
                ch = c.Widths[s];
            }
        Features = Child("features", features);
        Blocks = blocks.ToArray();
        Norm = Child("norm", new BatchNorm2d(ch, c.NormEps));
        Head = Child("proj_head", new LinearHolder(new Linear(ch, c.FeatureDim, rng)));
        // As released: conv and linear weights N(0, 0.02²) (truncated at ±2, absolute), their biases 0; BN keeps γ = 1, β = 0.
        foreach (var (name, p) in NamedParameters())
        {
            if (p.Rank is 4 or 2)
            {
                using var init = Tensor.TruncNormal(p.Shape, rng, 0.02f);
                p.Backend.Upload(p.Storage, init.ToArray());
            }
            else if (name.EndsWith("bias", StringComparison.Ordinal)) p.Backend.Upload(p.Storage, new float[p.Numel]);
        }
    }

    public StemHolder Stem { get; }
    public BlockList Features { get; }
    public LfaBlock[] Blocks { get; }
    public BatchNorm2d Norm { get; }
    public LinearHolder Head { get; }

    /// <summary>frames [N, 1, S, S] → features [N, F].</summary>
    public Tensor Forward(Tensor x)
    {
        foreach (var u in Stem.Units) x = u.Forward(x);
        foreach (var b in Blocks) x = b.Forward(x);
        return Head.Linear.Forward(Norm.Forward(x).GlobalAvgPool());
    }

    /// <summary>The released ConvBNReLU (children <c>conv</c>, <c>norm</c>): 3×3 conv, pad 1, no bias → BN → ReLU.</summary>
    public sealed class StemUnit : Module
    {
        public StemUnit(int inChannels, int outChannels, int stride, float eps, Rng rng)
        {
            Conv = Child("conv", new Conv2d(inChannels, outChannels, 3, rng, stride, 1, bias: false));
            Norm = Child("norm", new BatchNorm2d(outChannels, eps));
        }

        public Conv2d Conv { get; }
        public BatchNorm2d Norm { get; }
        public Tensor Forward(Tensor x) => ConvBn.Forward(Conv, Norm, x, relu: true);
    }

    /// <summary>nn.Sequential of stem units (children <c>0</c>..<c>3</c>).</summary>
    public sealed class StemHolder : Module
    {
        private readonly List<StemUnit> units = new();
        public IReadOnlyList<StemUnit> Units => units;
        public void Add(int i, StemUnit u) => units.Add(Child(i.ToString(CultureInfo.InvariantCulture), u));
    }

    /// <summary>nn.Sequential of LFA blocks (children <c>0</c>..).</summary>
    public sealed class BlockList : Module
    {
        public void Add(int i, LfaBlock b) => Child(i.ToString(CultureInfo.InvariantCulture), b);
    }

    /// <summary>nn.Sequential(Linear) (child <c>0</c>).</summary>
    public sealed class LinearHolder : Module
    {
        public LinearHolder(Linear l) => Linear = Child("0", l);
        public Linear Linear { get; }
    }
}

/// <summary>
/// The released CLS_Net: the "rank scorer" Conv3d and the MER head. The rank scorer reads the frame features [B, 8, F]
/// <b>reshaped without a permute</b> to [B, 1, S, S, 8] (S² = F) and convolves it with a Conv3d 1 → 8, kernel (3, 3, 8),
/// padding (1, 1, 0), giving R [B, 8, S, S, 1] = [B, 8, S, S]. The head max-pools R by (3, 3) (stride 3, floor) →
/// 8·⌊S/3⌋² (3528 at S = 64) → Linear → 256 → ReLU → Linear → classes.
/// </summary>
public sealed class FdpRankScorer : Module
{
    public FdpRankScorer(FdpConfig c, Rng rng)
    {
        Size = c.ImageSize;
        Layout = c.RankLayout;
        Conv3d = Child("conv3d", new Conv3d(1, c.RankChannels, (3, 3, FdpConfig.ClipFrames), rng, padding: (1, 1, 0)));
        int pooled = c.ImageSize / 3;
        Fc1 = Child("fc1", new Linear(c.RankChannels * pooled * pooled, c.HeadHidden, rng));
        Fc2 = Child("fc2", new Linear(c.HeadHidden, c.Classes, rng));
    }

    public int Size { get; }
    public FdpRankLayout Layout { get; }
    public Conv3d Conv3d { get; }
    public Linear Fc1 { get; }
    public Linear Fc2 { get; }

    /// <summary>
    /// frame features [B, 8, F] → R [B, 8, S, S]. What the reshape does (it is odd, but it is what <c>fdp.py</c> does:
    /// <c>dynamic_rep.reshape(-1, 1, 64, 64, 8)</c> with no permute): the flat index t·F + f of frame t's feature f lands at
    /// (d, h, w) = (⌊(t·F + f)/(8S)⌋, ⌊(t·F + f)/8⌋ mod S, f mod 8) of Conv3d's (D, H, W) axes. So the kernel's 8-wide W axis
    /// spans 8 consecutive features of <b>one</b> frame, never 8 frames; each frame fills S/8 consecutive rows of D (8 rows
    /// at S = 64), and the 3-row D kernel mixes two frames only at the boundaries between those row bands. The "rank
    /// scorer" is therefore mostly a per-frame feature filter, not a temporal one; time enters through the padding-free
    /// layout and the dynamic-image target. Rejected: a permute to [B, 1, S, S, T] (features over D·H, time over W), which
    /// would make the kernel temporal as the paper describes but is not the released model.
    /// </summary>
    public Tensor Scores(Tensor features)
    {
        int b = features.Shape[0], s = Size;
        if (Layout == FdpRankLayout.Temporal) features = features.Transpose(1, 2);  // [B, F, 8]: time on W (the paper's reading)
        var grid = features.Reshape(b, 1, s, s, FdpConfig.ClipFrames);   // [B, 1, D = S, H = S, W = 8], released: no permute
        return Conv3d.Forward(grid).Reshape(b, Conv3d.OutChannels, s, s); // [B, 8, S, S, 1] → [B, 8, S, S]
    }

    /// <summary>R [B, 8, S, S] → logits [B, classes] (MaxPool3d (3, 3, 1) on [B, 8, S, S, 1] is this 2-d pool).</summary>
    public Tensor Classify(Tensor r)
    {
        var pooled = r.MaxPool2d(3, 3);
        return Fc2.Forward(Fc1.Forward(pooled.Reshape(r.Shape[0], -1)).Relu());
    }
}

/// <summary>
/// The released SegNet decoder (input R [B, 8, S, S] → D̂ [B, 1, S, S], before the sigmoid): a VGG16-like encoder of five
/// stages (3×3 conv with bias + BN + ReLU, depth units per stage; 2×2 max pool keeping the indices), then the mirror
/// image: per stage from the deepest, max-unpooling with that stage's indices, then its units in reverse (conv{k}{j}d),
/// the last unit of each decoder stage narrowing to the next stage's width; the very last conv (conv11d) goes 64 → 1 with
/// no BN or ReLU. Names as released (<c>conv11</c>, <c>bn11</c>, …, <c>conv53d</c>, …, <c>conv11d</c>). PyTorch's default
/// initialisation (SegNet's convs are not re-initialised by the released code).
/// </summary>
public sealed class FdpSegNet : Module
{
    private readonly (Conv2d Conv, BatchNorm2d Bn)[][] down;
    private readonly (Conv2d Conv, BatchNorm2d? Bn)[][] up;

    public FdpSegNet(int inChannels, int outChannels, int[] widths, int[] depths, Rng rng)
    {
        int stages = widths.Length;
        down = new (Conv2d, BatchNorm2d)[stages][];
        for (int k = 0; k < stages; k++)
        {
            down[k] = new (Conv2d, BatchNorm2d)[depths[k]];
            for (int j = 0; j < depths[k]; j++)
            {
                int cin = j == 0 ? (k == 0 ? inChannels : widths[k - 1]) : widths[k];
                string n = $"{k + 1}{j + 1}";
                down[k][j] = (Child("conv" + n, new Conv2d(cin, widths[k], 3, rng, 1, 1)), Child("bn" + n, new BatchNorm2d(widths[k])));
            }
        }
        up = new (Conv2d, BatchNorm2d?)[stages][];
        for (int k = stages - 1; k >= 0; k--)
        {
            up[k] = new (Conv2d, BatchNorm2d?)[depths[k]];
            for (int j = depths[k] - 1; j >= 0; j--)
            {
                int cout = j > 0 ? widths[k] : k > 0 ? widths[k - 1] : outChannels;
                bool last = k == 0 && j == 0;
                string n = $"{k + 1}{j + 1}d";
                var conv = Child("conv" + n, new Conv2d(widths[k], cout, 3, rng, 1, 1));
                up[k][depths[k] - 1 - j] = (conv, last ? null : Child("bn" + n, new BatchNorm2d(cout)));
            }
        }
    }

    /// <summary>x [B, Cin, S, S] → [B, Cout, S, S]. S must be a multiple of 2^stages.</summary>
    public Tensor Forward(Tensor x)
    {
        var indices = new Tensor[down.Length];
        for (int k = 0; k < down.Length; k++)
        {
            foreach (var (conv, bn) in down[k]) x = ConvBn.Forward(conv, bn, x, relu: true);
            (x, indices[k]) = x.MaxPool2dWithIndices(2, 2);
        }
        for (int k = up.Length - 1; k >= 0; k--)
        {
            x = Tensor.MaxUnpool2d(x, indices[k], 2, 2);
            foreach (var (conv, bn) in up[k]) x = bn is null ? conv.Forward(x) : ConvBn.Forward(conv, bn, x, relu: true);
        }
        return x;
    }
}

/// <summary>
/// A model whose inputs are standardised by statistics of its training data, kept as buffers so that the test fold,
/// <c>predict</c> and a resumed run use the same ones (FDP: the released code's mean and max of the split).
/// </summary>
public interface IFitsInputStatistics
{
    /// <summary>The input the statistics are taken over.</summary>
    InputKind StatisticsInput { get; }
    /// <summary>Sets the statistics from every clip's values of <see cref="StatisticsInput"/> (as the cache holds them).</summary>
    void FitInputStatistics(IEnumerable<float[]> clips);
}

/// <summary>
/// FDP (Shao, Cheng, Zhang et al.; papers.md §3), as in its released code CYF-cuber/FDP, which differs from the paper:
/// 8 grey aligned frames [B, 8, 1, S, S] → the shared frame encoder per frame → [B, 8, F] → the rank scorer (Conv3d on
/// the un-permuted reshape, see <see cref="FdpRankScorer.Scores"/>) → R [B, 8, S, S] → (a) the MER head → logits, (b) the
/// SegNet decoder → D̂ [B, 1, S, S] (aux <see cref="DynamicImageLogits"/>, before the sigmoid; <see cref="FdpLoss"/>
/// applies it, as the released loss sees σ(D̂)). Trained with <see cref="FdpLoss"/>.
/// <para>Input normalisation (choice where the release differs from honest LOSO): the released code maps grey [0, 1] to
/// x' = (x − 0.5)/0.5, then subtracts the mean of x' over the whole split and divides by the max of the centred split —
/// with the test split's own statistics. Here the two scalars are buffers (<c>input_mean</c>, <c>input_max</c>), fitted on
/// the training subjects' clips (<see cref="FitInputStatistics"/>) and saved with every checkpoint; the trainer's
/// transductive option fits them on the test split as released, labelled as such.</para>
/// </summary>
public sealed class FdpModel : Module, IMerModel, IFitsInputStatistics
{
    /// <summary>Aux output: the decoder's D̂ [B, 1, S, S] before the sigmoid.</summary>
    public const string DynamicImageLogits = "dynamic_image_logits";

    public FdpModel(FdpConfig config, Rng rng)
    {
        if (config.Check() is { } problem) throw new ArgumentException(problem);
        Config = config;
        Encoder = Child("frame_rep", new FdpFrameEncoder(config, rng.Fork(1)));
        Scorer = Child("mer", new FdpRankScorer(config, rng.Fork(2)));
        Decoder = Child("dyimg_net", new FdpSegNet(config.RankChannels, 1, config.DecoderWidths, config.DecoderDepths, rng.Fork(3)));
        InputMean = Buffer("input_mean", Tensor.Zeros(1));
        InputMax = Buffer("input_max", Tensor.Ones(1));
    }

    public FdpConfig Config { get; }
    IMerModelConfig IMerModel.Config => Config;
    public FdpFrameEncoder Encoder { get; }
    public FdpRankScorer Scorer { get; }
    public FdpSegNet Decoder { get; }
    /// <summary>Mean of (x − 0.5)/0.5 over the fitted clips' pixels, [1].</summary>
    public Tensor InputMean { get; }
    /// <summary>Max of (x − 0.5)/0.5 − mean over the fitted clips' pixels, [1].</summary>
    public Tensor InputMax { get; }

    public InputKind StatisticsInput => InputKind.GreyFrames;

    /// <summary>The released statistics over the given clips' grey values x ∈ [0, 1]: m = mean(2x − 1), M = max(2x − 1 − m).</summary>
    public void FitInputStatistics(IEnumerable<float[]> clips)
    {
        double sum = 0, max = double.NegativeInfinity;
        long n = 0;
        var all = clips as IReadOnlyCollection<float[]> ?? clips.ToList();
        foreach (var c in all)
            foreach (float v in c) { sum += 2.0 * v - 1; n++; }
        if (n == 0) throw new ArgumentException($"{Config.Name}: no frames to fit the input statistics on");
        double mean = sum / n;
        foreach (var c in all)
            foreach (float v in c) max = Math.Max(max, 2.0 * v - 1 - mean);
        if (!(max > 0)) throw new ArgumentException($"{Config.Name}: the frames are constant (max of the centred values {max}); nothing to normalise by");
        SetInputStatistics((float)mean, (float)max);
    }

    /// <summary>Sets the two normalisation scalars directly (a loaded checkpoint carries them).</summary>
    public void SetInputStatistics(float mean, float max)
    {
        InputMean.Backend.Upload(InputMean.Storage, [mean]);
        InputMax.Backend.Upload(InputMax.Storage, [max]);
    }

    public (float Mean, float Max) InputStatistics => (InputMean.ToArray()[0], InputMax.ToArray()[0]);

    public ModelOutput Forward(ModelBatch batch)
    {
        var (logits, di) = Forward(batch[InputKind.GreyFrames]);
        return new ModelOutput(logits, new Dictionary<string, Tensor> { [DynamicImageLogits] = di });
    }

    public MerLoss CreateLoss(Rng rng) => new FdpLoss(Config.DynamicImageWeight);

    /// <summary>grey clips [B, 8, 1, S, S] in [0, 1] → logits [B, classes] and D̂ [B, 1, S, S] (before the sigmoid).</summary>
    public (Tensor Logits, Tensor DynamicImageLogits) Forward(Tensor clips)
    {
        int s = Config.ImageSize, t = FdpConfig.ClipFrames;
        if (clips.Rank != 5 || clips.Shape[1] != t || clips.Shape[2] != 1 || clips.Shape[3] != s || clips.Shape[4] != s)
            throw new ShapeException($"{Config.Name}: expected grey clips [B, {t}, 1, {s}, {s}], got {ShapeUtil.Format(clips.Shape)}");
        int b = clips.Shape[0];
        Tensor x;
        using (GradMode.NoGrad())
            x = (clips.Reshape(b * t, 1, s, s).Scale(2f).AddScalar(-1f) - InputMean) / InputMax;   // ((x − .5)/.5 − m)/M
        var features = Encoder.Forward(x).Reshape(b, t, Config.FeatureDim);                     // [B, 8, F], frame-major per clip
        var r = Scorer.Scores(features);                                                        // [B, 8, S, S]
        return (Scorer.Classify(r), Decoder.Forward(r));
    }
}

/// <summary>
/// FDP's loss as released: NLL(log-softmax(z), y) + w · MSE(σ(D̂), DI), w = 100, the MSE the mean over B·S·S pixels, DI the
/// cache's dynamic image in [0, 1] (<see cref="InputKind.DynamicImage"/>, read from the batch). Class weights and label
/// smoothing, when the trainer passes them, apply to the cross-entropy (the released code uses neither).
/// </summary>
public sealed class FdpLoss(float dynamicImageWeight = 100f) : MerLoss
{
    public float DynamicImageWeight { get; } = dynamicImageWeight;

    public override Tensor Forward(ModelOutput output, ModelBatch batch, int[] labels, float[]? classWeights = null, float labelSmoothing = 0f)
    {
        var ce = Tensor.CrossEntropy(output.Logits, labels, classWeights, labelSmoothing);
        if (DynamicImageWeight == 0f) return ce;
        return ce + Reconstruction(output.Get(FdpModel.DynamicImageLogits), batch[InputKind.DynamicImage]).Scale(DynamicImageWeight);
    }

    /// <summary>MSE(σ(D̂), DI): D̂ [B, 1, S, S] logits, DI [B, 1, 1, S, S] (the batch's [B, T = 1, C = 1, S, S]) or [B, 1, S, S].</summary>
    public static Tensor Reconstruction(Tensor logits, Tensor target)
    {
        if (logits.Numel != target.Numel || logits.Shape[0] != target.Shape[0])
            throw new ShapeException($"fdp loss: the reconstruction {ShapeUtil.Format(logits.Shape)} and the dynamic image {ShapeUtil.Format(target.Shape)} differ in size");
        var diff = logits.Sigmoid() - target.Reshape(logits.Shape);
        return (diff * diff).Mean();
    }
}
