namespace MicroExpr.Data;

/// <summary>One stored kind of a cached clip: the tensor file (full path) and its shape [Frames, Channels, Height, Width].</summary>
public sealed record CachedInput(CacheInputs Kind, string File, int Frames, int Channels, int Height, int Width);

/// <summary>
/// One preprocessed clip of a <see cref="PreprocessedCache"/>: who (subject), what (label, its name), where it came from
/// (data set, clip name), one file per stored kind (<see cref="Inputs"/>, every clip of a cache holds the same kinds)
/// and its action units as the data set's coding file writes them ("" when none; not parsed here).
/// </summary>
public sealed record ClipEntry(string Subject, int Label, string LabelName, string Dataset, string Clip, IReadOnlyList<CachedInput> Inputs, string ActionUnits = "")
{
    /// <summary>The stored kind, or null when the cache does not hold it.</summary>
    public CachedInput? Find(CacheInputs kind) => Inputs.FirstOrDefault(i => i.Kind == kind);

    /// <summary>The stored kind; throws naming the clip when the cache does not hold it.</summary>
    public CachedInput this[CacheInputs kind] => Find(kind)
        ?? throw new InvalidDataException($"clip '{Clip}' holds no {CacheInputNames.Name(kind)} tensor (it holds {string.Join(", ", Inputs.Select(i => CacheInputNames.Name(i.Kind)))})");
}
