using System.Text.Json;
using System.Text.Json.Serialization;
using MicroExpr.IO;

namespace MicroExpr.Data.Cache;

/// <summary>
/// index.json of a cache folder: the settings, the class names and one entry per finished clip (files relative to the
/// folder). Version 3 lists each clip's stored kinds in <see cref="IndexClip.Inputs"/> (one file, shape and checksum per
/// kind) and carries its action-unit string; version 2 (motion only) held the one motion file in the clip's own
/// file/shape/checksum fields, and is still read that way.
/// </summary>
internal sealed class CacheIndex
{
    public const string FileName = "index.json";
    public const string FormatName = "microexpr-preprocessed-cache";

    public string Format { get; set; } = FormatName;
    public int Version { get; set; } = CurrentVersion;
    public const int CurrentVersion = 3;
    /// <summary>The last version whose clips hold their one (motion) file in their own fields.</summary>
    public const int LegacyVersion = 2;
    public string Settings { get; set; } = "";
    public string SettingsHash { get; set; } = "";
    /// <summary>The settings themselves, so 'predict' can process a new clip exactly as the training clips were.</summary>
    public PreprocessSettings? Parameters { get; set; }
    public string Description { get; set; } = "";
    public string Dataset { get; set; } = "";
    public List<string> ClassNames { get; set; } = [];
    public List<IndexClip> Clips { get; set; } = [];
    public List<IndexSkip> Skipped { get; set; } = [];

    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    /// <summary>Written to a temporary file and renamed: a reader never sees half an index.</summary>
    public void Save(string dir)
    {
        AtomicFile.WriteText(Path.Combine(dir, FileName), JsonSerializer.Serialize(this, Json));
    }
}

internal sealed class IndexClip
{
    public string Subject { get; set; } = "";
    public int Label { get; set; }
    public string LabelName { get; set; } = "";
    public string Dataset { get; set; } = "";
    public string Clip { get; set; } = "";
    /// <summary>Version 2 only: the motion file (version 3: <see cref="Inputs"/>); omitted when writing version 3.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public string? File { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public int Frames { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public int Channels { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public int Height { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public int Width { get; set; }
    public string Source { get; set; } = "";
    public int Onset { get; set; }
    public int Apex { get; set; }
    public int Offset { get; set; }
    /// <summary>Version 2 only: "xxh3:" and 16 hex digits, the motion file's data checksum (<see cref="TensorFile"/>).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public string? Checksum { get; set; }
    /// <summary>The clip's action units as the data set's coding file writes them ("4+L10"; "" when it has none), unparsed.</summary>
    public string ActionUnits { get; set; } = "";
    /// <summary>Version 3: one entry per stored kind, in <see cref="CacheInputNames.All"/>'s order.</summary>
    public List<IndexInput>? Inputs { get; set; }
}

/// <summary>One stored kind of one clip: its name (<see cref="CacheInputNames.Name"/>), file, shape and checksum.</summary>
internal sealed class IndexInput
{
    public string Kind { get; set; } = "";
    public string File { get; set; } = "";
    public int Frames { get; set; }
    public int Channels { get; set; }
    public int Height { get; set; }
    public int Width { get; set; }
    /// <summary>"xxh3:" and 16 hex digits: the tensor file's data checksum (<see cref="TensorFile"/>).</summary>
    public string Checksum { get; set; } = "";
}

internal sealed class IndexSkip
{
    public string File { get; set; } = "";
    public int Row { get; set; }
    public string Reason { get; set; } = "";
}
