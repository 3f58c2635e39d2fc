using System.Globalization;

namespace MicroExpr.Data.Annotations;

/// <summary>
/// SAMM as distributed: <c>SAMM_*_Micro_FACS_Codes*.xlsx</c> (title rows above the header are skipped: the header is the
/// first row naming Subject, Filename, Onset Frame, Apex Frame, Offset Frame and Estimated Emotion) and frames at
/// <c>ROOT/006/006_1_2/006_05562.jpg</c>. An apex or offset of -1 or blank is unknown: the offset becomes the last frame
/// of the folder, the apex is estimated.
/// </summary>
public static class SammReader
{
    public const string Pattern = "*Micro_FACS_Codes*.xlsx";

    public static ClipList Read(string root, string? annotations = null, ClassScheme scheme = ClassScheme.Native, string subjectPrefix = "", bool allowOutsideRoot = false)
    {
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"SAMM root folder {root} not found");
        string file = annotations ?? ClipChecks.FindAnnotation([root, Path.GetDirectoryName(Path.GetFullPath(root)) ?? root], Pattern, "SAMM");
        var table = SheetTable.Read(file, null, ["Subject"], ["Filename"], ["Onset Frame", "Onset"], ["Apex Frame", "Apex"], ["Offset Frame", "Offset"], ["Estimated Emotion", "Emotion"]);
        var (classes, map) = LabelMaps.For("samm", scheme);
        var list = new ClipList("samm", classes);
        int cSub = table.Col("Subject"), cFile = table.Col("Filename"), cOn = table.Col("Onset Frame", "Onset"),
            cApex = table.Col("Apex Frame", "Apex"), cOff = table.Col("Offset Frame", "Offset"), cEmo = table.Col("Estimated Emotion", "Emotion");
        int cAu = table.Col("Action Units", "ActionUnits");
        foreach (var row in table.Rows)
        {
            string subjectCell = row[cSub].Trim(), clip = row[cFile].Trim();
            if (subjectCell.Length == 0 && clip.Length == 0) continue;
            int n = ClipChecks.SubjectNumber(subjectCell);
            if (n < 0 || clip.Length == 0)
            {
                list.Skip(file, row.Number, $"expected a subject number (6 or 006) and a filename, got '{subjectCell}', '{clip}'");
                continue;
            }
            string emotion = LabelMaps.Normalise(row[cEmo]);
            if (!map.TryGetValue(emotion, out int label))
            {
                list.Skip(file, row.Number, $"label '{row[cEmo]}' outside the mapping ({string.Join(", ", map.Keys)})");
                continue;
            }
            if (!SheetTable.TryFrame(row[cOn], "Onset Frame", out int onset, out string err)
                || !SheetTable.TryFrame(row[cApex], "Apex Frame", out int apex, out err)
                || !SheetTable.TryFrame(row[cOff], "Offset Frame", out int offset, out err))
            {
                list.Skip(file, row.Number, err);
                continue;
            }
            if (onset < 0)
            {
                list.Skip(file, row.Number, "onset frame missing (expected a frame number)");
                continue;
            }
            string subject = n.ToString("000", CultureInfo.InvariantCulture);
            string[] candidates = [Path.Combine(root, subject, clip), Path.Combine(root, subjectCell, clip), Path.Combine(root, clip)];
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
            list.Clips.Add(new ClipSource("samm", subjectPrefix + subject, clip, label, classes[label], dir!, SourceKind.FrameFolder, onset, apex, offset, file, row.Number, ClipChecks.ActionUnits(list, file, row, cAu, "Action Units")));
        }
        return list;
    }
}
