using System.Text.Json.Serialization;

namespace MicroExpr.Data;

/// <summary>
/// The tensor kinds a preprocessing cache can store per clip (<c>preprocess --inputs</c>), one file each. A set of them
/// is a <see cref="PreprocessSettings.Inputs"/> value (flags); a single flag names one kind.
/// <para>
/// Why a Data-side enum and not the model contract's <c>MicroExpr.Models.InputKind</c>: MicroExpr.Data references no
/// engine project (it must not pull tensors into the readers, nor OpenCV into MicroExpr.Models, which restores without
/// it), and a type shared by linked source would be two types. So the cache names what it stores here, and the one
/// mapping to the model's kinds lives in MicroExpr.Training (<c>CacheKinds</c>), which sees both. Action units are not a
/// stored tensor: the raw code string travels on every clip record (<see cref="Annotations.ClipSource.ActionUnits"/>,
/// <see cref="ClipEntry.ActionUnits"/>); turning it into a vector is the AU model's business.
/// </para>
/// </summary>
[Flags]
[JsonConverter(typeof(JsonStringEnumConverter))]
public enum CacheInputs
{
    None = 0,
    /// <summary>Optical-flow motion frames onset → each selected frame, [T, 3, S, S] (<see cref="MotionPipeline"/>): the default.</summary>
    Motion = 1,
    /// <summary>The selected face-cropped frames themselves, RGB in [0, 1], [T, 3, S, S].</summary>
    Rgb = 2,
    /// <summary>The same frames in grey (OpenCV's BGR → grey weights), in [0, 1], [T, 1, S, S].</summary>
    Grey = 4,
    /// <summary>Approximate rank pooling of the selected frames (grey when grey is stored, else RGB), min–max scaled to [0, 1], [1, C, S, S].</summary>
    DynamicImage = 8,
}

/// <summary>Names, parsing and iteration of <see cref="CacheInputs"/>.</summary>
public static class CacheInputNames
{
    /// <summary>Every single kind, in the order files, index entries and names list them.</summary>
    public static IReadOnlyList<CacheInputs> All { get; } = [CacheInputs.Motion, CacheInputs.Rgb, CacheInputs.Grey, CacheInputs.DynamicImage];

    /// <summary>Every bit that names a kind.</summary>
    public const CacheInputs Known = CacheInputs.Motion | CacheInputs.Rgb | CacheInputs.Grey | CacheInputs.DynamicImage;

    /// <summary>The single kinds of a set, in <see cref="All"/>'s order.</summary>
    public static IReadOnlyList<CacheInputs> Each(CacheInputs set) => All.Where(k => (set & k) != 0).ToList();

    /// <summary>The command-line and index name of one kind: motion, rgb, grey, dynamic-image.</summary>
    public static string Name(CacheInputs kind) => kind switch
    {
        CacheInputs.Motion => "motion",
        CacheInputs.Rgb => "rgb",
        CacheInputs.Grey => "grey",
        CacheInputs.DynamicImage => "dynamic-image",
        _ => throw new ArgumentException($"not a single cache input kind: {kind}"),
    };

    /// <summary>"motion,rgb": the names of a set, in <see cref="All"/>'s order.</summary>
    public static string Names(CacheInputs set) => string.Join(",", Each(set).Select(Name));

    /// <summary>One kind from its name (case-insensitive; "gray" accepted for "grey"); null when unknown.</summary>
    public static CacheInputs? Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "motion" => CacheInputs.Motion,
        "rgb" => CacheInputs.Rgb,
        "grey" or "gray" => CacheInputs.Grey,
        "dynamic-image" => CacheInputs.DynamicImage,
        _ => null,
    };

    /// <summary>"motion,rgb,grey" → the set; throws <see cref="ArgumentException"/> naming an unknown or empty entry.</summary>
    public static CacheInputs ParseList(string list)
    {
        var set = CacheInputs.None;
        foreach (var part in list.Split(','))
        {
            if (part.Trim().Length == 0) throw new ArgumentException($"--inputs '{list}': an empty entry (expected a comma-separated list of motion, rgb, grey, dynamic-image)");
            set |= Parse(part) ?? throw new ArgumentException($"--inputs '{list}': unknown kind '{part.Trim()}' (expected motion, rgb, grey or dynamic-image)");
        }
        return set;
    }
}

/// <summary>One computed kind of one clip: [T, C, H, W] float32 (<see cref="MotionPipeline.ProcessInputs"/>).</summary>
public sealed record ClipTensor(CacheInputs Kind, float[] Data, int T, int C, int H, int W);
