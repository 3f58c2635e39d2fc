using MicroExpr.Data.Frames;

namespace MicroExpr.Data.Annotations;

/// <summary>Checks shared by the readers: the frames exist and onset ≤ apex ≤ offset name frames that are there.</summary>
internal static class ClipChecks
{
    /// <summary>
    /// The action-unit cell of a row as written (trimmed; "" when the sheet has no such column, <paramref name="col"/> −1).
    /// A code that does not parse (<see cref="ActionUnitCodes.ActionUnitParser"/>) adds a warning naming the file, the row,
    /// the column and the value; the clip keeps its label and the raw string (its AUs count as uncoded downstream).
    /// </summary>
    public static string ActionUnits(ClipList list, string file, Xlsx.SheetRow row, int col, string column)
    {
        if (col < 0) return "";
        string raw = row[col].Trim();
        if (!ActionUnitCodes.ActionUnitParser.TryParse(raw, out _, out string? error))
            list.Warnings.Add(new SkippedRow(file, row.Number, $"{column} '{raw}' is not an action-unit coding ({error}); the clip is kept, its AUs count as uncoded"));
        return raw;
    }

    /// <summary>True when <paramref name="path"/>, resolved (".." and absolute paths included), is <paramref name="root"/> or lies under it.</summary>
    public static bool Inside(string root, string path)
    {
        string r = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root)) + Path.DirectorySeparatorChar;
        string p = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path)) + Path.DirectorySeparatorChar;
        return p.StartsWith(r, StringComparison.Ordinal);
    }

    /// <summary>
    /// Null when every candidate lies inside <paramref name="root"/> (or <paramref name="allowOutside"/>), else the reason
    /// to refuse the row. Checked before any candidate is looked at, so a row cannot probe whether a folder outside exists.
    /// </summary>
    public static string? OutsideRoot(string root, bool allowOutside, string given, IEnumerable<string> candidates)
    {
        if (given.Contains('\0') || candidates.Any(c => c.Contains('\0'))) return $"path '{given.Replace("\0", "\\0", StringComparison.Ordinal)}' holds a NUL character; not a path";
        if (allowOutside) return null;
        foreach (var c in candidates)
            if (!Inside(root, c))
                return $"path '{given}' leads outside the data root {Path.GetFullPath(root)}; refused (pass --allow-outside-root to read it)";
        return null;
    }

    /// <summary>The first candidate folder that exists, or null.</summary>
    public static string? FirstDir(IEnumerable<string> candidates) => candidates.FirstOrDefault(Directory.Exists);

    /// <summary>
    /// Null when the folder holds frames covering the annotated range, else the reason to skip ("missing frames: ...",
    /// "apex 12 outside onset..offset 20..40"). Unknown (-1) values are not checked, except the apex against the range.
    /// </summary>
    public static string? FrameRange(string? dir, string described, ref int onset, int apex, ref int offset, int firstF = -1)
    {
        if (dir is null) return $"missing frames: folder {described} not found";
        IReadOnlyList<FrameFile> frames;
        try
        {
            frames = FrameFolder.List(dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"missing frames: cannot list {dir}: {e.Message}";
        }
        if (frames.Count == 0) return $"missing frames: no jpg/bmp/png images in {dir}";
        var numbers = frames.Select(f => f.Number).ToHashSet();
        // SMIC's OnsetF/OffsetF may count from the clip's first frame (FirstF): accept them when the absolute reading fails.
        if (firstF > 0 && onset >= 0 && offset >= 0 && !(numbers.Contains(onset) && numbers.Contains(offset))
            && numbers.Contains(firstF + onset - 1) && numbers.Contains(firstF + offset - 1))
        {
            onset = firstF + onset - 1;
            offset = firstF + offset - 1;
        }
        if (onset >= 0 && !numbers.Contains(onset)) return $"missing frames: onset frame {onset} not in {dir} (frames {FrameFolder.Range(frames)})";
        if (offset >= 0 && !numbers.Contains(offset)) return $"missing frames: offset frame {offset} not in {dir} (frames {FrameFolder.Range(frames)})";
        int lo = onset >= 0 ? onset : frames[0].Number, hi = offset >= 0 ? offset : frames[^1].Number;
        if (hi < lo) return $"offset {hi} before onset {lo}";
        if (hi == lo || frames.Count(f => f.Number >= lo && f.Number <= hi) < 2) return ClipLoader.TooShort(dir, 1);
        if (apex >= 0 && (apex < lo || apex > hi)) return $"apex {apex} outside onset..offset {lo}..{hi}";
        return null;
    }

    /// <summary>The single file matching <paramref name="pattern"/> in the first of <paramref name="dirs"/> that has one.</summary>
    public static string FindAnnotation(IEnumerable<string> dirs, string pattern, string what)
    {
        var searched = new List<string>();
        foreach (var d in dirs.Distinct())
        {
            if (!Directory.Exists(d)) continue;
            searched.Add(d);
            var hits = Directory.EnumerateFiles(d, pattern).Where(f => !Path.GetFileName(f).StartsWith("~$", StringComparison.Ordinal)).OrderBy(f => f, StringComparer.Ordinal).ToList();
            if (hits.Count > 0) return hits[^1]; // the newest version sorts last (2014 < 2019)
        }
        throw new FileNotFoundException($"no {what} annotation file ({pattern}) in {string.Join(" or ", searched.DefaultIfEmpty("(no folder)"))}; give it with --annotations FILE");
    }

    /// <summary>The digits of a subject cell ("sub01", "01", "1", "s3" → 1, 1, 1, 3), or -1.</summary>
    public static int SubjectNumber(string cell)
    {
        int n = FrameFolder.LastNumber(cell.Trim());
        return n;
    }
}
