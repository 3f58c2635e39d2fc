using System.Text.RegularExpressions;

namespace MicroExpr.Models.PyTorch;

/// <summary>The parameter naming a ViT checkpoint uses.</summary>
public enum VitNamingKind
{
    /// <summary>Not recognised as a ViT: names are kept.</summary>
    Unknown,
    /// <summary>timm's (<c>cls_token</c>, <c>pos_embed</c>, <c>patch_embed.proj</c>, <c>blocks.i.attn.qkv</c>, …): our own naming.</summary>
    Timm,
    /// <summary>pytorch-pretrained-vit's (<c>B_16_imagenet1k.pth</c>, which SLSTT's code loads): <c>class_token</c>,
    /// <c>positional_embedding.pos_embedding</c>, <c>patch_embedding</c>, <c>transformer.blocks.i.attn.proj_q/k/v</c>,
    /// <c>transformer.blocks.i.proj</c>, <c>pwff.fc1/fc2</c>, <c>norm</c>, <c>fc</c>.</summary>
    PytorchPretrainedVit,
}

/// <summary>
/// Maps pytorch-pretrained-vit's names onto timm's, which <see cref="Weights.ImportTimmVit(SlsttModel, IReadOnlyList{NamedArray})"/>
/// reads: q, k and v ([C, C] and [C] each) are fused into <c>qkv</c> ([3C, C], [3C]) in that order, the order of
/// timm's qkv rows and of our attention's [N, 3, H, D] layout; <c>fc</c> becomes timm's classifier <c>head</c>.
/// </summary>
public static partial class VitNaming
{
    public static VitNamingKind Detect(IEnumerable<string> names)
    {
        var set = names.ToHashSet();
        if (set.Contains("class_token") || set.Any(n => n.StartsWith("transformer.blocks.", StringComparison.Ordinal)))
            return VitNamingKind.PytorchPretrainedVit;
        if (set.Contains("cls_token") || set.Any(n => n.StartsWith("blocks.", StringComparison.Ordinal))) return VitNamingKind.Timm;
        return VitNamingKind.Unknown;
    }

    [GeneratedRegex(@"^transformer\.blocks\.(\d+)\.(.+)$")]
    private static partial Regex BlockName();

    /// <summary>pytorch-pretrained-vit → timm. Names it does not know are kept and listed in <paramref name="notes"/>.</summary>
    public static List<NamedArray> PytorchPretrainedVitToTimm(IReadOnlyList<NamedArray> arrays, List<string> notes)
    {
        var byName = arrays.ToDictionary(a => a.Name);
        var outList = new List<NamedArray>();
        var fused = new HashSet<int>();
        foreach (var a in arrays)
        {
            string? mapped = a.Name switch
            {
                "class_token" => "cls_token",
                "positional_embedding.pos_embedding" => "pos_embed",
                "patch_embedding.weight" => "patch_embed.proj.weight",
                "patch_embedding.bias" => "patch_embed.proj.bias",
                "norm.weight" or "norm.bias" => a.Name,
                "fc.weight" => "head.weight",
                "fc.bias" => "head.bias",
                _ => null,
            };
            if (mapped != null)
            {
                outList.Add(a with { Name = mapped });
                continue;
            }
            var m = BlockName().Match(a.Name);
            if (!m.Success)
            {
                notes.Add($"kept as is (no pytorch-pretrained-vit counterpart): {a.Name}");
                outList.Add(a);
                continue;
            }
            int i = int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            string rest = m.Groups[2].Value;
            if (rest.StartsWith("attn.proj_", StringComparison.Ordinal))
            {
                if (fused.Add(i)) outList.AddRange(FuseQkv(byName, i, notes));
                continue;
            }
            string? blockMapped = rest switch
            {
                "proj.weight" or "proj.bias" => "attn." + rest,
                "norm1.weight" or "norm1.bias" or "norm2.weight" or "norm2.bias" => rest,
                "pwff.fc1.weight" or "pwff.fc1.bias" or "pwff.fc2.weight" or "pwff.fc2.bias" => "mlp." + rest["pwff.".Length..],
                _ => null,
            };
            if (blockMapped == null)
            {
                notes.Add($"kept as is (unknown block parameter): {a.Name}");
                outList.Add(a);
            }
            else outList.Add(a with { Name = $"blocks.{i}.{blockMapped}" });
        }
        return outList;
    }

    private static IEnumerable<NamedArray> FuseQkv(Dictionary<string, NamedArray> byName, int i, List<string> notes)
    {
        foreach (string kind in new[] { "weight", "bias" })
        {
            var parts = new[] { "q", "k", "v" }.Select(p =>
                byName.TryGetValue($"transformer.blocks.{i}.attn.proj_{p}.{kind}", out var a)
                    ? a
                    : throw new InvalidDataException($"block {i}: transformer.blocks.{i}.attn.proj_{p}.{kind} is missing, so q, k and v cannot be fused")).ToArray();
            var shape = parts[0].Shape;
            if (parts.Any(p => !p.Shape.SequenceEqual(shape)))
                throw new InvalidDataException($"block {i}: proj_q/k/v.{kind} have different shapes ({string.Join(", ", parts.Select(p => MicroExpr.Tensors.ShapeUtil.Format(p.Shape)))})");
            var data = new float[3 * parts[0].Data.Length];
            for (int p = 0; p < 3; p++) parts[p].Data.CopyTo(data, p * parts[0].Data.Length);
            int[] fusedShape = [3 * shape[0], .. shape[1..]];
            notes.Add($"blocks.{i}.attn.qkv.{kind} {MicroExpr.Tensors.ShapeUtil.Format(fusedShape)} ← proj_q, proj_k, proj_v");
            yield return new NamedArray($"blocks.{i}.attn.qkv.{kind}", fusedShape, data);
        }
    }
}
