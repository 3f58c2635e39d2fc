using System.Text.Json;
using System.Globalization;
using MicroExpr.Data.Annotations;
using MicroExpr.Data.Cache;

namespace MicroExpr.Data;

/// <summary>
/// A folder written by <c>microexpr preprocess</c> (<see cref="Preprocessor"/>): <c>index.json</c> plus one tensor file
/// per clip and stored kind (<see cref="Stored"/>). <see cref="Load"/> returns [T, C, H, W] float32. Motion (C = 3), values as
/// <see cref="Motion.MotionEncoder"/> documents: uvs → u, v in [-1, 1] (divided by the clip's largest flow magnitude), strain in [0, 1] (divided by the
/// clip's largest strain); hsv → RGB in [0, 1]; precomputed motion images (T = 1) → RGB / 255 in [0, 1]. RGB face frames [T, 3, S, S] and grey ones [T, 1, S, S] in [0, 1]; the dynamic image [1, C, S, S] in
/// [0, 1]. No ImageNet mean/std is applied: a model that wants it applies it.
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
    /// <summary>The kinds every clip holds (motion for a version-2 index).</summary>
    public CacheInputs Stored { get; private init; }
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
        if (index.Version > CacheIndex.CurrentVersion)
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"{path}: cache index version {index.Version} was written by a newer MicroExpr (this one reads up to {CacheIndex.CurrentVersion}); rerun preprocess with this version"));
        bool legacy = index.Version <= CacheIndex.LegacyVersion;
        string full = Path.GetFullPath(dir);
        var clips = new List<ClipEntry>();
        var sums = new Dictionary<string, string>(StringComparer.Ordinal);
        CacheInputs? stored = null;
        for (int i = 0; i < index.Clips.Count; i++)
        {
            var c = index.Clips[i];
            string where = string.Create(CultureInfo.InvariantCulture, $"{path}: clip entry {i + 1}");
            if (c is null) throw new InvalidDataException($"{where} is null; rerun preprocess");
            if (c.Label < 0 || c.Label >= index.ClassNames.Count)
                throw new InvalidDataException($"{where} ('{Show(c.Clip)}') is corrupt (label {c.Label} of {index.ClassNames.Count} classes)");
            // Version 2: the clip's own fields are its one motion file; version 3: one entry per stored kind.
            var files = legacy
                ? [new IndexInput { Kind = CacheInputNames.Name(CacheInputs.Motion), File = c.File ?? "", Frames = c.Frames, Channels = c.Channels, Height = c.Height, Width = c.Width, Checksum = c.Checksum ?? "" }]
                : c.Inputs ?? throw new InvalidDataException($"{where} ('{Show(c.Clip)}') has no \"inputs\" (a version-{index.Version} index lists each stored kind); rerun preprocess");
            if (files.Count == 0) throw new InvalidDataException($"{where} ('{Show(c.Clip)}') lists no stored input; rerun preprocess");
            var inputs = new List<CachedInput>();
            var kinds = CacheInputs.None;
            foreach (var f in files)
            {
                if (f is null) throw new InvalidDataException($"{where} ('{Show(c.Clip)}') has a null input entry; rerun preprocess");
                var kind = CacheInputNames.Parse(f.Kind ?? "") is { } k && CacheInputNames.Name(k) == f.Kind ? k
                    : throw new InvalidDataException($"{where} ('{Show(c.Clip)}') names an unknown input kind '{Show(f.Kind)}' (expected {string.Join(", ", CacheInputNames.All.Select(CacheInputNames.Name))})");
                string what = $"{where} ('{Show(c.Clip)}', {f.Kind})";
                if ((kinds & kind) != 0) throw new InvalidDataException($"{what} lists that kind twice; rerun preprocess");
                kinds |= kind;
                if (string.IsNullOrEmpty(f.File) || f.File.Any(char.IsControl))
                    throw new InvalidDataException($"{what} is corrupt (file '{Show(f.File)}')");
                if (f.Frames < 1 || f.Channels < 1 || f.Height < 1 || f.Width < 1)
                    throw new InvalidDataException($"{what} has shape [{f.Frames}, {f.Channels}, {f.Height}, {f.Width}]; expected positive sizes");
                string file = Path.GetFullPath(Path.Combine(full, f.File));
                if (!ClipChecks.Inside(Path.Combine(full, Cache.Preprocessor.ClipFolder), file))
                    throw new InvalidDataException($"{what} points outside the cache's {Cache.Preprocessor.ClipFolder} folder ('{Show(f.File)}'); rerun preprocess");
                if (string.IsNullOrEmpty(f.Checksum))
                    throw new InvalidDataException($"{what} has no checksum (a cache made by an older version); rerun preprocess");
                if (!sums.TryAdd(file, f.Checksum))
                    throw new InvalidDataException($"{what} names the file '{Show(f.File)}' of an earlier entry; rerun preprocess");
                inputs.Add(new CachedInput(kind, file, f.Frames, f.Channels, f.Height, f.Width));
            }
            if (stored is { } s0 && s0 != kinds)
                throw new InvalidDataException($"{where} ('{Show(c.Clip)}') holds {CacheInputNames.Names(kinds)}, the first clip {CacheInputNames.Names(s0)}; rerun preprocess");
            stored = kinds;
            clips.Add(new ClipEntry(c.Subject ?? "", c.Label, c.LabelName ?? "", c.Dataset ?? "", c.Clip ?? "",
                inputs.OrderBy(x => x.Kind).ToList(), c.ActionUnits ?? ""));
        }
        var cache = new PreprocessedCache(full, clips, index.ClassNames, index.Description ?? "", index.SettingsHash ?? "",
            (index.Skipped ?? []).Where(s => s != null).Select(s => new SkippedRow(s.File ?? "", s.Row, s.Reason ?? "")).ToList()) { Settings = index.Parameters, Stored = stored ?? index.Parameters?.StoredInputs ?? CacheInputs.Motion };
        foreach (var (k, v) in sums) cache.checksums[k] = v;
        return cache;
    }

    /// <summary>
    /// The clip's tensor of one stored kind (motion by default), [T, C, H, W] float32 (see the class summary for the value
    /// ranges). The file's data must match its own checksum and the one the index records for this entry, and hold only
    /// finite values; otherwise an <see cref="InvalidDataException"/> names the file.
    /// </summary>
    public float[] Load(ClipEntry clip, CacheInputs kind = CacheInputs.Motion)
    {
        var entry = clip.Find(kind) ?? throw new InvalidDataException(
            $"{Directory}: clip '{Show(clip.Clip)}' holds no {CacheInputNames.Name(kind)} tensor (the cache stores {CacheInputNames.Names(Stored)}); preprocess with --inputs {CacheInputNames.Names(Stored | kind)}");
        var data = TensorFile.Read(entry.File, out TensorFileInfo info);
        if (checksums.TryGetValue(entry.File, out var expected) && expected != info.ChecksumText)
            throw new InvalidDataException($"{entry.File}: its checksum {info.ChecksumText} is not the one the index records for clip '{Show(clip.Clip)}' ({expected}): the index entry points at another clip's file; rerun preprocess");
        var (t, c, h, w) = (info.T, info.C, info.H, info.W);
        if (t != entry.Frames || c != entry.Channels || h != entry.Height || w != entry.Width)
            throw new InvalidDataException($"{entry.File}: holds [{t}, {c}, {h}, {w}], the index says [{entry.Frames}, {entry.Channels}, {entry.Height}, {entry.Width}]; rerun preprocess");
        return data;
    }
}
