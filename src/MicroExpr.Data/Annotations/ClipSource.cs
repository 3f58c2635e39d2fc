using System.Globalization;
using System.Text;

namespace MicroExpr.Data.Annotations;

/// <summary>Where a clip's pixels are.</summary>
public enum SourceKind
{
    /// <summary>A folder of frame images (jpg, bmp, png), in numeric order of the numbers in their names.</summary>
    FrameFolder,
    /// <summary>A video file (mp4, avi) read through OpenCV; frames are numbered 1, 2, ...</summary>
    Video,
    /// <summary>One precomputed motion image: the clip's tensor is that image (T = 1).</summary>
    MotionImage,
}

/// <summary>
/// One clip as an annotation file describes it. <see cref="Onset"/>, <see cref="Apex"/> and <see cref="Offset"/> are frame
/// numbers as the file names carry them (1-based positions when names carry no number, and for videos); -1 is unknown
/// (onset: first frame, offset: last frame, apex: estimated as the frame of largest motion). <see cref="ActionUnits"/> is
/// the coding file's action-unit string as written ("4+L10"), "" when the data set has none; it is carried into the
/// cache's index unparsed (<c>ActionUnitCodes</c> parses it).
/// </summary>
public sealed record ClipSource(
    string Dataset, string Subject, string Clip, int Label, string LabelName,
    string Path, SourceKind Kind, int Onset, int Apex, int Offset,
    string AnnotationFile, int Row, string ActionUnits = "")
{
    /// <summary>"file row N" or the source path when the clip did not come from a row.</summary>
    public string Where => Row > 0 ? $"{AnnotationFile} row {Row}" : Path;

    /// <summary>Identity of the clip's pixels and frame range (not its label): part of the cache file name's hash.</summary>
    public string Identity => string.Create(CultureInfo.InvariantCulture, $"{Dataset}|{Subject}|{Clip}|{Path}|{Kind}|{Onset}|{Apex}|{Offset}");
}

/// <summary>A row or clip left out, with the reason: the file, its 1-based row (0 when not a row) and what was expected.</summary>
public sealed record SkippedRow(string File, int Row, string Reason)
{
    public override string ToString() => Row > 0 ? $"{File} row {Row}: {Reason}" : $"{File}: {Reason}";
}

/// <summary>What a reader loaded: the clips, the class names (index = label) and every row it skipped.</summary>
public sealed class ClipList(string dataset, IReadOnlyList<string> classNames)
{
    public string Dataset { get; } = dataset;
    public IReadOnlyList<string> ClassNames { get; } = classNames;
    public List<ClipSource> Clips { get; } = [];
    public List<SkippedRow> Skipped { get; } = [];
    /// <summary>Rows kept with a remark, e.g. an action-unit code that does not parse (the clip keeps its label; its AUs count as uncoded).</summary>
    public List<SkippedRow> Warnings { get; } = [];

    public void Skip(string file, int row, string reason) => Skipped.Add(new SkippedRow(file, row, reason));

    /// <summary>Clips per class name, in label order (classes without clips included, with 0).</summary>
    public IReadOnlyList<(string Class, int Count)> PerClass() =>
        ClassNames.Select((name, i) => (name, Clips.Count(c => c.Label == i))).ToList();

    /// <summary>Clips per subject, subjects in natural order (sub2 before sub10).</summary>
    public IReadOnlyList<(string Subject, int Count)> PerSubject() =>
        Clips.GroupBy(c => c.Subject).Select(g => (g.Key, g.Count())).OrderBy(p => p.Key, NaturalComparer.Instance).ToList();

    /// <summary>The reader's summary: clips, classes, subjects, counts per class and subject, every skipped row.</summary>
    public string Summary()
    {
        var sb = new StringBuilder();
        var subjects = PerSubject();
        string warnings = Warnings.Count > 0 ? string.Create(CultureInfo.InvariantCulture, $", {Warnings.Count} warnings") : "";
        sb.AppendLine(CultureInfo.InvariantCulture, $"{Dataset}: {Clips.Count} clips, {ClassNames.Count} classes, {subjects.Count} subjects, {Skipped.Count} skipped{warnings}");
        sb.AppendLine("  per class:   " + string.Join(", ", PerClass().Select(p => $"{p.Class} {p.Count}")));
        sb.AppendLine("  per subject: " + string.Join(", ", subjects.Select(p => $"{p.Subject} {p.Count}")));
        if (Skipped.Count > 0)
        {
            sb.AppendLine("  skipped:");
            foreach (var s in Skipped) sb.AppendLine("    " + s);
        }
        if (Warnings.Count > 0)
        {
            sb.AppendLine("  warnings (clips kept):");
            foreach (var w in Warnings) sb.AppendLine("    " + w);
        }
        return sb.ToString();
    }
}

/// <summary>Orders strings with embedded numbers by value: "s2" &lt; "s10", "img9" &lt; "img10".</summary>
public sealed class NaturalComparer : IComparer<string>
{
    public static readonly NaturalComparer Instance = new();

    public int Compare(string? x, string? y)
    {
        if (x is null || y is null) return string.CompareOrdinal(x, y);
        int i = 0, j = 0;
        while (i < x.Length && j < y.Length)
        {
            if (char.IsAsciiDigit(x[i]) && char.IsAsciiDigit(y[j]))
            {
                int si = i, sj = j;
                while (i < x.Length && char.IsAsciiDigit(x[i])) i++;
                while (j < y.Length && char.IsAsciiDigit(y[j])) j++;
                string a = x[si..i].TrimStart('0'), b = y[sj..j].TrimStart('0');
                if (a.Length != b.Length) return a.Length.CompareTo(b.Length);
                int c = string.CompareOrdinal(a, b);
                if (c != 0) return c;
            }
            else
            {
                int c = x[i].CompareTo(y[j]);
                if (c != 0) return c;
                i++; j++;
            }
        }
        return (x.Length - i).CompareTo(y.Length - j);
    }
}
