using MicroExpr.Nn;
using MicroExpr.Tensors;

namespace MicroExpr.Models;

/// <summary>How a ViT turns an image into tokens: <see cref="PatchEmbed"/> or <see cref="ConvStem"/> (<c>--set stem=conv</c>).</summary>
[System.Text.Json.Serialization.JsonConverter(typeof(System.Text.Json.Serialization.JsonStringEnumConverter))]
public enum StemKind
{
    /// <summary>The linear patch embedding (ViT's, and every preset's).</summary>
    Patch,
    /// <summary>A small convolutional stem with the same token grid (<see cref="ConvStem"/>).</summary>
    Conv,
}

/// <summary>An image [B, 3, S, S] → tokens [B, N = Grid², C]: the first layer of a ViT.</summary>
public abstract class TokenEmbed : Module
{
    /// <summary>Tokens per side: S / P.</summary>
    public abstract int Grid { get; }
    public int Tokens => Grid * Grid;
    public abstract Tensor Forward(Tensor x);
}

/// <summary>
/// The convolutional stem of Xiao et al. (2021, "Early convolutions help transformers see better") adapted to any patch size P:
/// conv 3×3 (stride 1, padding 1) → BN → ReLU, conv P×P (stride P) → BN → ReLU, then a 1×1 conv (with bias) to the width C;
/// [B, 3, S, S] → [B, N = (S/P)², C], the same token grid as the patch embedding, so position embeddings and the blocks are
/// unchanged. Both hidden convs have C/2 channels (at least 8). Choice: one stride-1 3×3 conv at full resolution, then a
/// patchifying conv; rejected: Xiao et al.'s stack of stride-2 3×3 convs, which needs P a power of 2 (P = 7 for 28 px images
/// is not) and would drop the finest scale of a 28 px motion image at the first layer. BatchNorm runs on batch statistics in
/// training and on its running statistics in evaluation (deterministic; folded into the conv there, <see cref="ConvBn"/>).
/// </summary>
public sealed class ConvStem : TokenEmbed
{
    public ConvStem(int imageSize, int patchSize, int inChannels, int width, Rng rng)
    {
        if (imageSize % patchSize != 0) throw new ArgumentException($"conv stem: image size {imageSize} is not a multiple of patch size {patchSize}");
        ImageSize = imageSize;
        PatchSize = patchSize;
        InChannels = inChannels;
        Grid = imageSize / patchSize;
        Hidden = Math.Max(8, width / 2);
        Conv1 = Child("conv1", new ConvBnAct2d(inChannels, Hidden, 3, rng, stride: 1, padding: 1));
        Conv2 = Child("conv2", new ConvBnAct2d(Hidden, Hidden, patchSize, rng, stride: patchSize));
        Proj = Child("proj", new Conv2d(Hidden, width, 1, rng));
        Width = width;
    }

    public int ImageSize { get; }
    public int PatchSize { get; }
    public int InChannels { get; }
    public int Width { get; }
    /// <summary>Channels of the two hidden convs.</summary>
    public int Hidden { get; }
    public override int Grid { get; }
    public ConvBnAct2d Conv1 { get; }
    public ConvBnAct2d Conv2 { get; }
    public Conv2d Proj { get; }

    /// <summary>[B, 3, S, S] → [B, N, C] (token n = row·Grid + column, as the patch embedding's).</summary>
    public override Tensor Forward(Tensor x)
    {
        if (x.Rank != 4 || x.Shape[1] != InChannels || x.Shape[2] != ImageSize || x.Shape[3] != ImageSize)
            throw new ShapeException($"conv stem: expected [B, {InChannels}, {ImageSize}, {ImageSize}], got {ShapeUtil.Format(x.Shape)}");
        int b = x.Shape[0];
        var y = Proj.Forward(Conv2.Forward(Conv1.Forward(x)));            // [B, C, g, g]
        return y.Reshape(b, Width, Grid * Grid).Permute(0, 2, 1);         // [B, N, C]
    }
}

/// <summary>
/// Linear patch embedding (no convolution): an image [B, 3, H, W] is cut into P×P patches, each
/// flattened in (channel, row, column) order — the order of timm's conv weight [C, 3, P, P], so a
/// pretrained conv kernel reshapes to this layer's weight [C, 3·P·P] — and mapped to width C.
/// </summary>
public sealed class PatchEmbed : TokenEmbed
{
    public PatchEmbed(int imageSize, int patchSize, int inChannels, int width, Rng rng)
    {
        if (imageSize % patchSize != 0) throw new ArgumentException($"patch embed: image size {imageSize} is not a multiple of patch size {patchSize}");
        ImageSize = imageSize;
        PatchSize = patchSize;
        InChannels = inChannels;
        Grid = imageSize / patchSize;
        Proj = Child("proj", new Linear(inChannels * patchSize * patchSize, width, rng, true, initStd: 0.02f));
    }

    public int ImageSize { get; }
    public int PatchSize { get; }
    public int InChannels { get; }
    public override int Grid { get; }
    public Linear Proj { get; }

    /// <summary>[B, 3, H, W] → [B, N = (H/P)·(W/P), C].</summary>
    public override Tensor Forward(Tensor x)
    {
        if (x.Rank != 4 || x.Shape[1] != InChannels || x.Shape[2] != ImageSize || x.Shape[3] != ImageSize)
            throw new ShapeException($"patch embed: expected [B, {InChannels}, {ImageSize}, {ImageSize}], got {ShapeUtil.Format(x.Shape)}");
        int b = x.Shape[0], p = PatchSize, g = Grid;
        var patches = x.Reshape(b, InChannels, g, p, g, p).Permute(0, 2, 4, 1, 3, 5).Reshape(b, g * g, InChannels * p * p);
        return Proj.Forward(patches);
    }
}

/// <summary>
/// ViT encoder (timm naming: cls_token, pos_embed, patch_embed.proj, blocks.i.*, norm): patch embedding,
/// class token, learned position embedding, pre-norm blocks with fused attention and GELU MLP, final
/// LayerNorm. <see cref="Forward"/> returns the class token of each image: the frame feature.
/// </summary>
public sealed class VisionTransformer : Module
{
    /// <param name="dropout">dropout on each block's attention and MLP outputs in training (<see cref="TransformerBlock"/>); 0: none</param>
    /// <param name="dropPath">
    /// stochastic depth: block i of D drops its branches with rate dropPath·i/(D − 1), 0 → dropPath linearly over the blocks
    /// (timm's and DeiT's rule, torch.linspace(0, rate, depth)); 0: none
    /// </param>
    public VisionTransformer(int imageSize, int patchSize, int width, int depth, int heads, int mlpHidden, Rng rng, float eps = 1e-5f,
        float dropout = 0f, float dropPath = 0f, StemKind stem = StemKind.Patch)
    {
        Width = width;
        // The conv stem is a child "stem", so a checkpoint of one kind never loads into the other (the names differ).
        Embed = stem == StemKind.Conv
            ? Child("stem", new ConvStem(imageSize, patchSize, 3, width, rng))
            : Child("patch_embed", (TokenEmbed)new PatchEmbed(imageSize, patchSize, 3, width, rng));
        ClsToken = Parameter("cls_token", Tensor.TruncNormal([1, 1, width], rng, 0.02f, -0.04f, 0.04f));
        PosEmbed = Parameter("pos_embed", Tensor.TruncNormal([1, Embed.Tokens + 1, width], rng, 0.02f, -0.04f, 0.04f));
        Blocks = new TransformerBlock[depth];
        for (int i = 0; i < depth; i++)
            Blocks[i] = Child($"blocks.{i}", new TransformerBlock(width, heads, mlpHidden, rng, eps, initStd: 0.02f, dropout: dropout,
                dropPath: DropPathRate(dropPath, i, depth)));
        Norm = Child("norm", new LayerNorm(width, eps));
    }

    /// <summary>Block i's drop-path rate of <paramref name="depth"/> blocks: rate·i/(depth − 1) (0 for a single block).</summary>
    public static float DropPathRate(float rate, int i, int depth) => depth <= 1 ? 0f : rate * i / (depth - 1);

    public int Width { get; }
    /// <summary>The first layer: the patch embedding or the conv stem.</summary>
    public TokenEmbed Embed { get; }
    /// <summary>The linear patch embedding (timm's patch_embed); an error for a ViT with a conv stem.</summary>
    public PatchEmbed PatchEmbed => Embed as PatchEmbed ?? throw new InvalidOperationException("this ViT has a conv stem, not a linear patch embedding");
    public Tensor ClsToken { get; }
    public Tensor PosEmbed { get; }
    public TransformerBlock[] Blocks { get; }
    public LayerNorm Norm { get; }

    /// <summary>[B, 3, H, W] → class-token features [B, C].</summary>
    public Tensor Forward(Tensor images)
    {
        int b = images.Shape[0];
        var x = Norm.Forward(Encode(images));
        return x.Slice(1, 0, 1).Reshape(b, Width);
    }

    /// <summary>[B, 3, H, W] → the class token after the last block, before the final LayerNorm, [B, C] (what <see cref="FrozenFeatureCache"/> keeps).</summary>
    public Tensor ClassTokenBeforeNorm(Tensor images) => Encode(images).Slice(1, 0, 1).Reshape(images.Shape[0], Width);

    /// <summary>The tokens after the last block [B, N+1, C] (class token first), before the final LayerNorm.</summary>
    Tensor Encode(Tensor images)
    {
        int b = images.Shape[0];
        var tokens = Embed.Forward(images);                               // [B, N, C]
        var cls = ClsToken.BroadcastTo(b, 1, Width);                       // [B, 1, C]
        var x = Tensor.Concat(1, cls, tokens) + PosEmbed;                  // [B, N+1, C]
        foreach (var block in Blocks) x = block.Forward(x);
        return x;
    }
}
