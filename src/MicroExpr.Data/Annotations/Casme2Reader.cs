using System.Globalization;

namespace MicroExpr.Data.Annotations;

/// <summary>
/// CASME II as distributed: <c>CASME2-coding-*.xlsx</c> (2014 and 2019 versions; columns Subject, Filename, OnsetFrame,
/// ApexFrame, OffsetFrame, Action Units, Estimated Emotion, found by name wherever the header row is) and frames at
/// <c>ROOT/sub01/EP02_01f/img46.jpg</c> (the raw or the cropped set: any name whose last number is the frame number).
/// The Subject cell may be <c>1</c>, <c>01</c> or <c>sub01</c>. An apex of "/" (one row of the 2014 file) is unknown and
/// is estimated.
/// </summary>
public static class Casme2Reader
{
    public const string Pattern = "CASME2-coding-*.xlsx";

    public static ClipList Read(string root, string? annotations = null, ClassScheme scheme = ClassScheme.Native, string subjectPrefix = "", bool allowOutsideRoot = false)
    {
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"CASME II root folder {root} not found");
        string file = annotations ?? ClipChecks.FindAnnotation([root, Path.GetDirectoryName(Path.GetFullPath(root)) ?? root], Pattern, "CASME II");
        var table = SheetTable.Read(file, null, ["Subject"], ["Filename"], ["OnsetFrame", "Onset"], ["ApexFrame", "Apex"], ["OffsetFrame", "Offset"], ["Estimated Emotion", "Emotion"]);
        var (classes, map) = LabelMaps.For("casme2", scheme);
        var list = new ClipList("casme2", classes);
        int cSub = table.Col("Subject"), cFile = table.Col("Filename"), cOn = table.Col("OnsetFrame", "Onset"),
            cApex = table.Col("ApexFrame", "Apex"), cOff = table.Col("OffsetFrame", "Offset"), cEmo = table.Col("Estimated Emotion", "Emotion");
        int cAu = table.Col("Action Units", "ActionUnits");
        foreach (var row in table.Rows)
        {
            string subjectCell = row[cSub].Trim(), clip = row[cFile].Trim();
            if (subjectCell.Length == 0 && clip.Length == 0) continue;
            int n = ClipChecks.SubjectNumber(subjectCell);
            if (n < 0 || clip.Length == 0)
            {
                list.Skip(file, row.Number, $"expected a subject (1, 01 or sub01) and a filename, got '{subjectCell}', '{clip}'");
                continue;
            }
            string emotion = LabelMaps.Normalise(row[cEmo]);
            if (!map.TryGetValue(emotion, out int label))
            {
                list.Skip(file, row.Number, $"label '{row[cEmo]}' outside the mapping ({string.Join(", ", map.Keys)})");
                continue;
            }
            if (!SheetTable.TryFrame(row[cOn], "OnsetFrame", out int onset, out string err)
                || !SheetTable.TryFrame(row[cApex], "ApexFrame", out int apex, out err)
                || !SheetTable.TryFrame(row[cOff], "OffsetFrame", out int offset, out err))
            {
                list.Skip(file, row.Number, err);
                continue;
            }
            string subject = "sub" + n.ToString("00", CultureInfo.InvariantCulture);
            string[] candidates = [Path.Combine(root, subject, clip), Path.Combine(root, "sub" + n.ToString(CultureInfo.InvariantCulture), clip), Path.Combine(root, subjectCell, clip)];
            if (ClipChecks.OutsideRoot(root, allowOutsideRoot, Path.Combine(subjectCell, clip), candidates) is string outside)
            {
                list.Skip(file, row.Number, outside);
                continue;
            }
            string? dir = ClipChecks.FirstDir(candidates);
            string? reason = ClipChecks.FrameRange(dir, Path.Combine(root, subject, clip), ref onset, apex, ref offset);
            if (reason != null)
            {
                list.Skip(file, row.Number, reason);
                continue;
            }
            list.Clips.Add(new ClipSource("casme2", subjectPrefix + subject, clip, label, classes[label], dir!, SourceKind.FrameFolder, onset, apex, offset, file, row.Number, ClipChecks.ActionUnits(list, file, row, cAu, "Action Units")));
        }
        return list;
    }
}
