using System.Text.Json;
using System.Text.Json.Serialization;
using MicroExpr.IO;

namespace MicroExpr.Data.Cache;

/// <summary>index.json of a cache folder: the settings, the class names and one entry per finished clip (file relative to the folder).</summary>
internal sealed class CacheIndex
{
    public const string FileName = "index.json";
    public const string FormatName = "microexpr-preprocessed-cache";

    public string Format { get; set; } = FormatName;
    public int Version { get; set; } = 2;
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
    public string File { get; set; } = "";
    public int Frames { get; set; }
    public int Channels { get; set; }
    public int Height { get; set; }
    public int Width { get; set; }
    public string Source { get; set; } = "";
    public int Onset { get; set; }
    public int Apex { get; set; }
    public int Offset { get; set; }
    /// <summary>"xxh3:" and 16 hex digits: the tensor file's data checksum (<see cref="TensorFile"/>).</summary>
    public string Checksum { get; set; } = "";
}

internal sealed class IndexSkip
{
    public string File { get; set; } = "";
    public int Row { get; set; }
    public string Reason { get; set; } = "";
}
