using MicroExpr.Nn;
using MicroExpr.Tensors;

namespace MicroExpr.Models;

/// <summary>
/// Linear patch embedding (no convolution): an image [B, 3, H, W] is cut into P×P patches, each
/// flattened in (channel, row, column) order — the order of timm's conv weight [C, 3, P, P], so a
/// pretrained conv kernel reshapes to this layer's weight [C, 3·P·P] — and mapped to width C.
/// </summary>
public sealed class PatchEmbed : Module
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
    public int Grid { get; }
    public int Tokens => Grid * Grid;
    public Linear Proj { get; }

    /// <summary>[B, 3, H, W] → [B, N = (H/P)·(W/P), C].</summary>
    public Tensor Forward(Tensor x)
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
        float dropout = 0f, float dropPath = 0f)
    {
        Width = width;
        PatchEmbed = Child("patch_embed", new PatchEmbed(imageSize, patchSize, 3, width, rng));
        ClsToken = Parameter("cls_token", Tensor.TruncNormal([1, 1, width], rng, 0.02f, -0.04f, 0.04f));
        PosEmbed = Parameter("pos_embed", Tensor.TruncNormal([1, PatchEmbed.Tokens + 1, width], rng, 0.02f, -0.04f, 0.04f));
        Blocks = new TransformerBlock[depth];
        for (int i = 0; i < depth; i++)
            Blocks[i] = Child($"blocks.{i}", new TransformerBlock(width, heads, mlpHidden, rng, eps, initStd: 0.02f, dropout: dropout,
                dropPath: DropPathRate(dropPath, i, depth)));
        Norm = Child("norm", new LayerNorm(width, eps));
    }

    /// <summary>Block i's drop-path rate of <paramref name="depth"/> blocks: rate·i/(depth − 1) (0 for a single block).</summary>
    public static float DropPathRate(float rate, int i, int depth) => depth <= 1 ? 0f : rate * i / (depth - 1);

    public int Width { get; }
    public PatchEmbed PatchEmbed { get; }
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
        var tokens = PatchEmbed.Forward(images);                          // [B, N, C]
        var cls = ClsToken.BroadcastTo(b, 1, Width);                       // [B, 1, C]
        var x = Tensor.Concat(1, cls, tokens) + PosEmbed;                  // [B, N+1, C]
        foreach (var block in Blocks) x = block.Forward(x);
        return x;
    }
}
