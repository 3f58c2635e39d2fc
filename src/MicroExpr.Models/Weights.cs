using System.Text.Json;
using MicroExpr.Nn;
using MicroExpr.Tensors;

namespace MicroExpr.Models;

/// <summary>What an import matched and what it did not.</summary>
public sealed record ImportReport(IReadOnlyList<string> Loaded, IReadOnlyList<string> UnusedInFile, IReadOnlyList<string> MissingInFile,
    IReadOnlyList<string> Adapted)
{
    public override string ToString() =>
        $"loaded {Loaded.Count} tensors; adapted: {(Adapted.Count == 0 ? "none" : string.Join("; ", Adapted))}\n" +
        $"in the file but not in the model ({UnusedInFile.Count}): {string.Join(", ", UnusedInFile)}\n" +
        $"in the model but not in the file ({MissingInFile.Count}): {string.Join(", ", MissingInFile)}";
}

/// <summary>Checkpoints (safetensors + the model config in the metadata) and ImageNet ViT import in timm's naming.</summary>
public static class Weights
{
    private const string ConfigKey = "microexpr.config";
    private const string FamilyKey = "microexpr.family";

    /// <summary>The metadata entries that identify a model: its family and its config as JSON.</summary>
    public static Dictionary<string, string> ConfigMetadata(IMerModel model) => new()
    {
        [ConfigKey] = ModelRegistry.ConfigToJson(model.Config),
        [FamilyKey] = model.Config.Family,
    };

    /// <summary>Writes every parameter of the model (and its config) atomically.</summary>
    public static void Save(IMerModel model, string path, IReadOnlyDictionary<string, string>? extra = null)
    {
        var meta = ConfigMetadata(model);
        meta["format"] = "pt";
        if (extra != null) foreach (var (k, v) in extra) meta[k] = v;
        Safetensors.Write(path, model.NamedState().Select(st => StateDict.ToArray(st.Name, st.Value)), meta);
    }

    /// <summary>The config stored in a checkpoint (any family).</summary>
    /// <remarks>
    /// Checked before any model is built: an SLSTT config's fields must be in range (<see cref="CheckConfig(SlsttConfig)"/>)
    /// and a model of it must have no more parameters than the file holds values, so a config that claims a huge model
    /// in a small file is refused instead of allocated.
    /// </remarks>
    public static IMerModelConfig ReadConfig(string path)
    {
        var (arrays, meta) = Safetensors.Read(path);
        var config = ReadConfig(meta, path) ?? throw new InvalidDataException($"{path}: not a MicroExpr checkpoint (no model config in its metadata)");
        if (config is SlsttConfig slstt)
        {
            if (CheckConfig(slstt) is string bad) throw new InvalidDataException($"{path}: {ConfigKey}: {bad}");
            long values = arrays.Sum(a => (long)(a.Integers?.Length ?? a.Data.Length));
            long least = MinParameterCount(slstt);
            if (least > values)
                throw new InvalidDataException($"{path}: {ConfigKey} describes a model of at least {least} parameters (width {slstt.Width}, depth {slstt.Depth}), the file holds {values} values; the config does not belong to these weights");
        }
        return config;
    }

    /// <summary>The config in a checkpoint's metadata, or null when it holds none.</summary>
    public static IMerModelConfig? ReadConfig(IReadOnlyDictionary<string, string> meta, string path) =>
        meta.TryGetValue(ConfigKey, out var json) ? ModelRegistry.ConfigFromJson(meta.GetValueOrDefault(FamilyKey), json, path) : null;

    /// <summary>Throws when the checkpoint's saved config differs from the model's, naming the file and the fields.</summary>
    public static void CheckConfig(IReadOnlyDictionary<string, string> meta, IMerModel model, string path, string hint = "")
    {
        if (ReadConfig(meta, path) is { } saved && saved.Differences(model.Config) is { Count: > 0 } diff)
            throw new InvalidDataException($"{path}: checkpoint of '{saved.Name}' does not match model '{model.Config.Name}': {string.Join(", ", diff)}{hint}");
    }

    /// <summary>Null when every field is in range, else the first field that is not.</summary>
    public static string? CheckConfig(SlsttConfig c)
    {
        static string? Range(string name, int v, int lo, int hi) => v < lo || v > hi ? $"{name} = {v}, expected {lo}..{hi}" : null;
        return Range("ImageSize", c.ImageSize, 1, 4096) ?? Range("PatchSize", c.PatchSize, 1, c.ImageSize)
            ?? (c.ImageSize % c.PatchSize != 0 ? $"ImageSize {c.ImageSize} is not a multiple of PatchSize {c.PatchSize}" : null)
            ?? Range("Width", c.Width, 1, 1 << 14) ?? Range("Depth", c.Depth, 1, 256) ?? Range("Heads", c.Heads, 1, c.Width)
            ?? (c.Width % c.Heads != 0 ? $"Width {c.Width} is not a multiple of Heads {c.Heads}" : null)
            ?? Range("MlpHidden", c.MlpHidden, 1, 1 << 16) ?? Range("TemporalLayers", c.TemporalLayers, 1, 64)
            ?? Range("TemporalHidden", c.TemporalHidden, 1, 1 << 14) ?? Range("TemporalHeads", c.TemporalHeads, 1, 1 << 14)
            ?? (c.Temporal == TemporalKind.Transformer && c.Width % c.TemporalHeads != 0 ? $"Width {c.Width} is not a multiple of TemporalHeads {c.TemporalHeads} (the temporal transformer runs at Width)" : null)
            ?? Range("MaxFrames", c.MaxFrames, 1, 4096) ?? Range("HeadHidden", c.HeadHidden, 0, 1 << 16) ?? Range("Classes", c.Classes, 1, 1 << 16)
            ?? (!Enum.IsDefined(c.Temporal) ? $"Temporal = {(int)c.Temporal}, expected one of {string.Join(", ", Enum.GetNames<TemporalKind>())}" : null)
            ?? (!float.IsFinite(c.LayerNormEps) || c.LayerNormEps <= 0 ? $"LayerNormEps = {c.LayerNormEps}, expected a positive number" : null);
    }

    /// <summary>
    /// A lower bound on the parameters of a model of <paramref name="c"/>: the spatial blocks' weight matrices
    /// (Depth·(4·Width² + 2·Width·MlpHidden)), the patch embedding (3·P²·Width), the position embedding
    /// ((G² + 1)·Width) and the aggregator's (recurrent: TemporalLayers·TemporalHidden²; transformer over Width:
    /// TemporalLayers·4·Width²).
    /// </summary>
    public static long MinParameterCount(SlsttConfig c)
    {
        long w = c.Width, grid = c.ImageSize / c.PatchSize;
        long n = c.Depth * (4 * w * w + 2 * w * c.MlpHidden) + 3L * c.PatchSize * c.PatchSize * w + (grid * grid + 1) * w;
        if (c.Temporal is TemporalKind.Lstm or TemporalKind.Gru) n += (long)c.TemporalLayers * c.TemporalHidden * c.TemporalHidden;
        else if (c.Temporal == TemporalKind.Transformer) n += (long)c.TemporalLayers * 4 * w * w;
        return n;
    }

    /// <summary>Loads a checkpoint into a model of the same config; a mismatch names the file and the differing fields.</summary>
    public static IReadOnlyDictionary<string, string> Load(IMerModel model, string path)
    {
        var (arrays, meta) = Safetensors.Read(path);
        CheckConfig(meta, model, path);
        var byName = arrays.ToDictionary(a => a.Name);
        foreach (var (name, p) in model.NamedState())
        {
            if (!byName.TryGetValue(name, out var a)) throw new InvalidDataException($"{path}: parameter '{name}' is missing");
            if (!ShapeUtil.SameShape(a.Shape, p.Shape))
                throw new InvalidDataException($"{path}: parameter '{name}' has shape {ShapeUtil.Format(a.Shape)}, the model has {ShapeUtil.Format(p.Shape)}");
            StateDict.Load(p, a, path);
        }
        return meta;
    }

    /// <summary>A model rebuilt from a checkpoint: its saved config, its weights (on the CPU; move it with To).</summary>
    public static IMerModel LoadModel(string path)
    {
        var model = ModelRegistry.Create(ReadConfig(path), new Rng(0));
        try
        {
            Load(model, path);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Imports an ImageNet ViT saved in timm's naming (patch_embed.proj.weight [C, 3, P, P], cls_token,
    /// pos_embed [1, 1 + G², C], blocks.i.*, norm.*) into the spatial encoder: the conv patch kernel is
    /// reshaped to the linear patch embedding [C, 3·P·P]; position embeddings are resized bilinearly
    /// when the grid differs (timm uses bicubic; bilinear is the documented choice here); the
    /// classifier head and any other name without a counterpart are listed, not guessed.
    /// </summary>
    public static ImportReport ImportTimmVit(SlsttModel model, IReadOnlyList<NamedArray> arrays)
    {
        var target = model.Spatial.NamedParameters().ToDictionary(p => p.Name, p => p.Value);
        var loaded = new List<string>();
        var unused = new List<string>();
        var adapted = new List<string>();
        foreach (var a in arrays)
        {
            if (!target.TryGetValue(a.Name, out var p))
            {
                unused.Add(a.Name);
                continue;
            }
            var data = a.Data;
            var shape = a.Shape;
            if (a.Name == "patch_embed.proj.weight" && shape.Length == 4)
            {
                shape = [shape[0], shape[1] * shape[2] * shape[3]]; // (c, kh, kw) flattening matches PatchEmbed's patch order
                adapted.Add($"patch_embed.proj.weight {ShapeUtil.Format(a.Shape)} → {ShapeUtil.Format(shape)}");
            }
            else if (a.Name == "pos_embed" && !ShapeUtil.SameShape(shape, p.Shape) && shape.Length == p.Shape.Length && shape[^1] == p.Shape[^1]) // another width: a mismatch, listed below
            {
                data = ResizePositionEmbedding(data, shape, p.Shape);
                adapted.Add($"pos_embed {ShapeUtil.Format(shape)} → {ShapeUtil.Format(p.Shape)} (bilinear)");
                shape = p.Shape;
            }
            if (!ShapeUtil.SameShape(shape, p.Shape))
            {
                unused.Add($"{a.Name} (shape {ShapeUtil.Format(a.Shape)}, model {ShapeUtil.Format(p.Shape)})");
                continue;
            }
            p.Backend.Upload(p.Storage, data);
            loaded.Add(a.Name);
        }
        var missing = target.Keys.Where(k => !loaded.Contains(k)).Select(k => "spatial." + k).ToList();
        return new ImportReport(loaded, unused, missing, adapted);
    }

    public static ImportReport ImportTimmVit(SlsttModel model, string path) => ImportTimmVit(model, Safetensors.Read(path).Arrays);

    /// <summary>
    /// A pretrained ViT as users have it (<see cref="PyTorch.PretrainedFile.Read"/>: <c>B_16_imagenet1k.pth</c> in
    /// pytorch-pretrained-vit's naming, a timm <c>.pth</c>, or a safetensors file) into the model's spatial encoder. Strict:
    /// every spatial parameter must come from the file (a file of another shape is the users' most common problem, so it is
    /// refused in one line naming the first missing or mismatched tensors), and a model without a ViT is refused.
    /// </summary>
    public static ImportReport ImportPretrainedVit(IMerModel model, string path)
    {
        if (model is not SlsttModel slstt)
            throw new ArgumentException($"--pretrained {path}: a pretrained ViT fits the slstt presets' spatial encoder, not {model.Config.Name}");
        var read = PyTorch.PretrainedFile.Read(path);
        var report = ImportTimmVit(slstt, read.Arrays);
        if (report.MissingInFile.Count > 0)
        {
            var mismatched = report.UnusedInFile.Where(u => u.Contains("(shape", StringComparison.Ordinal)).Take(3);
            throw new InvalidDataException($"{path}: does not fit {slstt.Config.Name} (width {slstt.Config.Width}, depth {slstt.Config.Depth}, patch {slstt.Config.PatchSize}): " +
                $"{report.MissingInFile.Count} parameters not in the file ({string.Join(", ", report.MissingInFile.Take(3))}{(report.MissingInFile.Count > 3 ? ", …" : "")})" +
                (mismatched.Any() ? $"; mismatched: {string.Join(", ", mismatched)}" : ""));
        }
        return report;
    }

    /// <summary>[1, 1 + G0², C] → [1, 1 + G1², C]: the class token's row is kept, the grid resized bilinearly (align_corners = false).</summary>
    public static float[] ResizePositionEmbedding(float[] src, int[] srcShape, int[] dstShape)
    {
        int c = srcShape[^1];
        int g0 = (int)Math.Round(Math.Sqrt(srcShape[1] - 1)), g1 = (int)Math.Round(Math.Sqrt(dstShape[1] - 1));
        if (g0 * g0 != srcShape[1] - 1 || g1 * g1 != dstShape[1] - 1 || dstShape[^1] != c)
            throw new InvalidDataException($"pos_embed: cannot resize {ShapeUtil.Format(srcShape)} to {ShapeUtil.Format(dstShape)} (needs square grids and equal width)");
        var dst = new float[dstShape[1] * c];
        Array.Copy(src, dst, c);
        for (int y = 0; y < g1; y++)
            for (int x = 0; x < g1; x++)
            {
                double sy = Math.Clamp((y + 0.5) * g0 / g1 - 0.5, 0, g0 - 1), sx = Math.Clamp((x + 0.5) * g0 / g1 - 0.5, 0, g0 - 1);
                int y0 = (int)sy, x0 = (int)sx, y1 = Math.Min(y0 + 1, g0 - 1), x1 = Math.Min(x0 + 1, g0 - 1);
                double fy = sy - y0, fx = sx - x0;
                for (int k = 0; k < c; k++)
                {
                    double v = (1 - fy) * ((1 - fx) * src[(1 + y0 * g0 + x0) * c + k] + fx * src[(1 + y0 * g0 + x1) * c + k])
                             + fy * ((1 - fx) * src[(1 + y1 * g0 + x0) * c + k] + fx * src[(1 + y1 * g0 + x1) * c + k]);
                    dst[(1 + y * g1 + x) * c + k] = (float)v;
                }
            }
        return dst;
    }
}
