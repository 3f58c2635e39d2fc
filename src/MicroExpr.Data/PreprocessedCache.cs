using System.Text.Json;
using System.Globalization;
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
    /// <summary>Each clip file's checksum as the index records it ("xxh3:…"), by full path.</summary>
    readonly Dictionary<string, string> checksums = new(StringComparer.Ordinal);

    PreprocessedCache(string dir, IReadOnlyList<ClipEntry> clips, IReadOnlyList<string> classes, string description, string hash, IReadOnlyList<SkippedRow> skipped)
    {
        Directory = dir;
        Clips = clips;
        ClassNames = classes;
        SettingsDescription = description;
        SettingsHash = hash;
        Skipped = skipped;
    }

    /// <summary>A name from the index as a message shows it: control characters (a newline in a hostile index) as '?'.</summary>
    static string Show(string? s) => s is null ? "" : string.Concat(s.Select(ch => char.IsControl(ch) ? '?' : ch));

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
        catch (Exception e) when (e is JsonException or NotSupportedException)
        {
            throw new InvalidDataException($"{path}: corrupt cache index (not valid JSON: {Show(e.Message)}); rerun preprocess", e);
        }
        if (index is null || index.Format != CacheIndex.FormatName)
            throw new InvalidDataException($"{path}: not a MicroExpr cache index (expected \"format\": \"{CacheIndex.FormatName}\")");
        if (index.Clips is null || index.ClassNames is null)
            throw new InvalidDataException($"{path}: corrupt cache index (\"{(index.Clips is null ? "clips" : "class_names")}\" is missing or null); rerun preprocess");
        if (index.ClassNames.Any(n => n is null)) throw new InvalidDataException($"{path}: corrupt cache index (a class name is null); rerun preprocess");
        string full = Path.GetFullPath(dir);
        var clips = new List<ClipEntry>();
        var sums = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < index.Clips.Count; i++)
        {
            var c = index.Clips[i];
            string where = string.Create(CultureInfo.InvariantCulture, $"{path}: clip entry {i + 1}");
            if (c is null) throw new InvalidDataException($"{where} is null; rerun preprocess");
            if (c.Label < 0 || c.Label >= index.ClassNames.Count || string.IsNullOrEmpty(c.File) || c.File.Any(char.IsControl))
                throw new InvalidDataException($"{where} ('{Show(c.Clip)}') is corrupt (label {c.Label} of {index.ClassNames.Count} classes, file '{Show(c.File)}')");
            if (c.Frames < 1 || c.Channels < 1 || c.Height < 1 || c.Width < 1)
                throw new InvalidDataException($"{where} ('{Show(c.Clip)}') has shape [{c.Frames}, {c.Channels}, {c.Height}, {c.Width}]; expected positive sizes");
            string file = Path.GetFullPath(Path.Combine(full, c.File));
            if (!ClipChecks.Inside(Path.Combine(full, Cache.Preprocessor.ClipFolder), file))
                throw new InvalidDataException($"{where} ('{Show(c.Clip)}') points outside the cache's {Cache.Preprocessor.ClipFolder} folder ('{Show(c.File)}'); rerun preprocess");
            if (string.IsNullOrEmpty(c.Checksum))
                throw new InvalidDataException($"{where} ('{Show(c.Clip)}') has no checksum (a cache made by an older version); rerun preprocess");
            if (!sums.TryAdd(file, c.Checksum))
                throw new InvalidDataException($"{where} ('{Show(c.Clip)}') names the file '{Show(c.File)}' of an earlier entry; rerun preprocess");
            clips.Add(new ClipEntry(c.Subject ?? "", c.Label, c.LabelName ?? "", c.Dataset ?? "", c.Clip ?? "", file, c.Frames, c.Channels, c.Height, c.Width));
        }
        var cache = new PreprocessedCache(full, clips, index.ClassNames, index.Description ?? "", index.SettingsHash ?? "",
            (index.Skipped ?? []).Where(s => s != null).Select(s => new SkippedRow(s.File ?? "", s.Row, s.Reason ?? "")).ToList()) { Settings = index.Parameters };
        foreach (var (k, v) in sums) cache.checksums[k] = v;
        return cache;
    }

    /// <summary>
    /// The clip's tensor, [T, C, H, W] float32 (see the class summary for the value ranges). The file's data must match
    /// its own checksum and the one the index records for this entry, and hold only finite values; otherwise an
    /// <see cref="InvalidDataException"/> names the file.
    /// </summary>
    public float[] Load(ClipEntry clip)
    {
        var data = TensorFile.Read(clip.File, out TensorFileInfo info);
        if (checksums.TryGetValue(clip.File, out var expected) && expected != info.ChecksumText)
            throw new InvalidDataException($"{clip.File}: its checksum {info.ChecksumText} is not the one the index records for clip '{Show(clip.Clip)}' ({expected}): the index entry points at another clip's file; rerun preprocess");
        var (t, c, h, w) = (info.T, info.C, info.H, info.W);
        if (t != clip.Frames || c != clip.Channels || h != clip.Height || w != clip.Width)
            throw new InvalidDataException($"{clip.File}: holds [{t}, {c}, {h}, {w}], the index says [{clip.Frames}, {clip.Channels}, {clip.Height}, {clip.Width}]; rerun preprocess");
        return data;
    }
}
