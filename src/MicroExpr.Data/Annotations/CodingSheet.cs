namespace MicroExpr.Data.Annotations;

/// <summary>
/// A coding workbook with one row per clip (Subject, Filename, onset, apex and offset frames, emotion, action units) over
/// a folder of frame folders: CASME II, SAMM and CAS(ME)³ part A. Those data sets differ only in what this record holds
/// (column names, how a Subject cell names a subject, where a row's frames may lie, which unknown frames a row may have,
/// how a clip is named); <see cref="Read"/> is the one row loop they share, with one skip reason per unusable row naming
/// the file and the row.
/// <para>Choice: a data record read by one loop, not a base class with virtual hooks: each reader is then its layout and
/// nothing else, and the order of the checks (subject, label, frame numbers, what the data set needs, root, frames) is
/// written once. SMIC's sheet keeps its own loop (<see cref="SmicReader"/>): it has no apex column, may count frames from
/// FirstF and finds a clip's folder through its emotion, so a spec covering it would be mostly exceptions.</para>
/// </summary>
internal sealed record CodingSheet
{
    /// <summary>The data set's key: <see cref="ClipSource.Dataset"/> and the label map's name ("casme2").</summary>
    public required string Dataset { get; init; }

    /// <summary>The data set as messages name it ("CASME II").</summary>
    public required string Title { get; init; }

    /// <summary>The coding file's name pattern, looked for in ROOT and its parent when no file is given.</summary>
    public required string Pattern { get; init; }

    /// <summary>The worksheet to read, matched ignoring case; the first sheet when null or when no sheet has this name.</summary>
    public string? SheetName { get; init; }

    /// <summary>Column names, each list in order of preference; the first name is the one messages use.</summary>
    public required string[] Onset { get; init; }
    public required string[] Apex { get; init; }
    public required string[] Offset { get; init; }
    public required string[] Emotion { get; init; }
    public required string[] ActionUnits { get; init; }

    /// <summary>What a Subject cell must look like, for the skip reason ("a subject (1, 01 or sub01)").</summary>
    public required string SubjectExpected { get; init; }

    /// <summary>The subject a (trimmed, non-empty) Subject cell names, or null when it names none (the row is skipped).</summary>
    public required Func<string, string?> Subject { get; init; }

    /// <summary>
    /// (root, Subject cell, subject, filename) → the folders that may hold the row's frames, the likeliest first (the one a
    /// "missing frames" reason names). All are checked to lie under the root before any is looked at.
    /// </summary>
    public required Func<string, string, string, string, string[]> Folders { get; init; }

    /// <summary>(onset, offset), −1 for unknown → why the row cannot be used, or null. By default unknown frames are accepted.</summary>
    public Func<int, int, string?> Needs { get; init; } = static (_, _) => null;

    /// <summary>(filename, onset) → the clip's name. By default the filename.</summary>
    public Func<string, int, string> ClipName { get; init; } = static (file, _) => file;

    public ClipList Read(string root, string? annotations, ClassScheme scheme, string subjectPrefix, bool allowOutsideRoot)
    {
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"{Title} root folder {root} not found");
        string file = annotations ?? ClipChecks.FindAnnotation([root, Path.GetDirectoryName(Path.GetFullPath(root)) ?? root], Pattern, Title);
        string? sheet = SheetName is null ? null
            : Xlsx.XlsxReader.SheetNames(file).FirstOrDefault(s => s.Equals(SheetName, StringComparison.OrdinalIgnoreCase));
        var table = SheetTable.Read(file, sheet, ["Subject"], ["Filename"], Onset, Apex, Offset, Emotion);
        var (classes, map) = LabelMaps.For(Dataset, scheme);
        var list = new ClipList(Dataset, classes);
        int cSub = table.Col("Subject"), cFile = table.Col("Filename"), cOn = table.Col(Onset), cApex = table.Col(Apex),
            cOff = table.Col(Offset), cEmo = table.Col(Emotion), cAu = table.Col(ActionUnits);
        foreach (var row in table.Rows)
        {
            string subjectCell = row[cSub].Trim(), filename = row[cFile].Trim();
            if (subjectCell.Length == 0 && filename.Length == 0) continue;
            string? subject = subjectCell.Length == 0 ? null : Subject(subjectCell);
            if (subject is null || filename.Length == 0)
            {
                list.Skip(file, row.Number, $"expected {SubjectExpected} and a filename, got '{subjectCell}', '{filename}'");
                continue;
            }
            string emotion = LabelMaps.Normalise(row[cEmo]);
            if (!map.TryGetValue(emotion, out int label))
            {
                list.Skip(file, row.Number, $"label '{row[cEmo]}' outside the mapping ({string.Join(", ", map.Keys)})");
                continue;
            }
            if (!SheetTable.TryFrame(row[cOn], Onset[0], out int onset, out string err)
                || !SheetTable.TryFrame(row[cApex], Apex[0], out int apex, out err)
                || !SheetTable.TryFrame(row[cOff], Offset[0], out int offset, out err))
            {
                list.Skip(file, row.Number, err);
                continue;
            }
            if (Needs(onset, offset) is string needed)
            {
                list.Skip(file, row.Number, needed);
                continue;
            }
            string[] candidates = Folders(root, subjectCell, subject, filename);
            if (ClipChecks.OutsideRoot(root, allowOutsideRoot, Path.Combine(subjectCell, filename), candidates) is string outside)
            {
                list.Skip(file, row.Number, outside);
                continue;
            }
            string? dir = ClipChecks.FirstDir(candidates);
            string? reason = ClipChecks.FrameRange(dir, candidates[0], ref onset, apex, ref offset);
            if (reason != null)
            {
                list.Skip(file, row.Number, reason);
                continue;
            }
            list.Clips.Add(new ClipSource(Dataset, subjectPrefix + subject, ClipName(filename, onset), label, classes[label], dir!,
                SourceKind.FrameFolder, onset, apex, offset, file, row.Number, ClipChecks.ActionUnits(list, file, row, cAu, ActionUnits[0])));
        }
        return list;
    }
}
