namespace MicroExpr.Data;

/// <summary>
/// One preprocessed clip of a <see cref="PreprocessedCache"/>: who (subject), what (label, its name), where it came from
/// (data set, clip name), the tensor file (full path) and its shape [Frames, Channels, Height, Width].
/// </summary>
public sealed record ClipEntry(string Subject, int Label, string LabelName, string Dataset, string Clip, string File, int Frames, int Channels, int Height, int Width);
