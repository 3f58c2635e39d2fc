using System.Text.Json;
using MicroExpr.Data.Annotations;
using MicroExpr.Data.Cache;

namespace MicroExpr.Data;

/// <summary>
/// A folder written by <c>microexpr preprocess</c> (<see cref="Preprocessor"/>): <c>index.json</c> plus one tensor file
/// per clip. <see cref="Load"/> returns [T, C, H, W] float32 with C = 3, values as <see cref="Motion.MotionEncoder"/>
/// documents: uvs → u, v in [-1, 1] (divided by the clip's largest flow magnitude), strain in [0, 1] (divided by the
/// clip's largest strain); hsv → RGB in [0, 1]; precomputed motion images (T = 1) → RGB / 255 in [0, 1]. No ImageNet
/// mean/std is applied: a model that wants it applies it.
/// </summary>
public sealed class PreprocessedCache
{
    public string Directory { get; }
    public IReadOnlyList<ClipEntry> Clips { get; }
    /// <summary>Class names; index = label.</summary>
    public IReadOnlyList<string> ClassNames { get; }
    /// <summary>Human-readable settings (flow, T, size, encoding, selection, face detection).</summary>
    public string SettingsDescription { get; }
    /// <summary>Hash of the settings the clips were made with (<see cref="PreprocessSettings.Hash"/>).</summary>
    public string SettingsHash { get; }
    /// <summary>The settings the clips were made with (null for a cache written before they were recorded).</summary>
    public PreprocessSettings? Settings { get; private init; }
    /// <summary>Rows and clips the run left out, with reasons.</summary>
    public IReadOnlyList<SkippedRow> Skipped { get; }

    PreprocessedCache(string dir, IReadOnlyList<ClipEntry> clips, IReadOnlyList<string> classes, string description, string hash, IReadOnlyList<SkippedRow> skipped)
    {
        Directory = dir;
        Clips = clips;
        ClassNames = classes;
        SettingsDescription = description;
        SettingsHash = hash;
        Skipped = skipped;
    }

    /// <summary>Reads <c>DIR/index.json</c>. Throws <see cref="FileNotFoundException"/> or <see cref="InvalidDataException"/> naming the file.</summary>
    public static PreprocessedCache Open(string dir)
    {
        string path = Path.Combine(dir, CacheIndex.FileName);
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: cache index not found; run 'microexpr preprocess ... --out {dir}' first", path);
        CacheIndex? index;
        try
        {
            index = JsonSerializer.Deserialize<CacheIndex>(File.ReadAllText(path), CacheIndex.Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: corrupt cache index (not valid JSON: {e.Message}); rerun preprocess", e);
        }
        if (index is null || index.Format != CacheIndex.FormatName)
            throw new InvalidDataException($"{path}: not a MicroExpr cache index (expected \"format\": \"{CacheIndex.FormatName}\")");
        var clips = new List<ClipEntry>();
        foreach (var c in index.Clips)
        {
            if (c.Label < 0 || c.Label >= index.ClassNames.Count || c.File.Length == 0)
                throw new InvalidDataException($"{path}: corrupt entry for clip '{c.Clip}' (label {c.Label} of {index.ClassNames.Count} classes, file '{c.File}')");
            clips.Add(new ClipEntry(c.Subject, c.Label, c.LabelName, c.Dataset, c.Clip, Path.GetFullPath(Path.Combine(dir, c.File)), c.Frames, c.Channels, c.Height, c.Width));
        }
        return new PreprocessedCache(Path.GetFullPath(dir), clips, index.ClassNames, index.Description, index.SettingsHash,
            index.Skipped.Select(s => new SkippedRow(s.File, s.Row, s.Reason)).ToList()) { Settings = index.Parameters };
    }

    /// <summary>The clip's tensor, [T, C, H, W] float32 (see the class summary for the value ranges).</summary>
    public float[] Load(ClipEntry clip)
    {
        var data = TensorFile.Read(clip.File, out int t, out int c, out int h, out int w);
        if (t != clip.Frames || c != clip.Channels || h != clip.Height || w != clip.Width)
            throw new InvalidDataException($"{clip.File}: holds [{t}, {c}, {h}, {w}], the index says [{clip.Frames}, {clip.Channels}, {clip.Height}, {clip.Width}]; rerun preprocess");
        return data;
    }
}
