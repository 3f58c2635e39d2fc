using MicroExpr.Data.Annotations;

namespace MicroExpr.Data.Frames;

/// <summary>One frame file and its number: the last run of digits in its name ("img46.jpg" → 46, "006_05562.jpg" → 5562).</summary>
public sealed record FrameFile(int Number, string Path);

/// <summary>Lists the frames of a folder (jpg, jpeg, bmp, png) in numeric order.</summary>
public static class FrameFolder
{
    public static readonly string[] ImageExtensions = [".jpg", ".jpeg", ".bmp", ".png"];
    public static readonly string[] VideoExtensions = [".mp4", ".avi", ".mov", ".mkv"];

    public static bool IsImage(string path) => ImageExtensions.Contains(System.IO.Path.GetExtension(path).ToLowerInvariant());
    public static bool IsVideo(string path) => VideoExtensions.Contains(System.IO.Path.GetExtension(path).ToLowerInvariant());

    /// <summary>
    /// The frames of <paramref name="dir"/> ordered by number. When a name carries no number (or two names carry the same
    /// number) every frame is numbered by its 1-based position in natural name order instead.
    /// </summary>
    public static IReadOnlyList<FrameFile> List(string dir)
    {
        var files = Directory.EnumerateFiles(dir).Where(IsImage).ToList();
        var numbered = files.Select(f => (Number: LastNumber(System.IO.Path.GetFileNameWithoutExtension(f)), Path: f)).ToList();
        bool usable = numbered.All(n => n.Number >= 0) && numbered.Select(n => n.Number).Distinct().Count() == numbered.Count;
        if (usable) return numbered.OrderBy(n => n.Number).Select(n => new FrameFile(n.Number, n.Path)).ToList();
        return files.OrderBy(f => System.IO.Path.GetFileName(f), NaturalComparer.Instance).Select((f, i) => new FrameFile(i + 1, f)).ToList();
    }

    /// <summary>The value of the last run of ASCII digits in <paramref name="name"/>, or -1 when it has none (or it overflows).</summary>
    public static int LastNumber(string name)
    {
        int end = name.Length - 1;
        while (end >= 0 && !char.IsAsciiDigit(name[end])) end--;
        if (end < 0) return -1;
        int start = end;
        while (start > 0 && char.IsAsciiDigit(name[start - 1])) start--;
        return int.TryParse(name.AsSpan(start, end - start + 1), out int n) ? n : -1;
    }

    /// <summary>"1..40" or "none" for messages.</summary>
    public static string Range(IReadOnlyList<FrameFile> frames) => frames.Count == 0 ? "none" : $"{frames[0].Number}..{frames[^1].Number}";
}
