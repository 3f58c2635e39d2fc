using System.Globalization;

namespace MicroExpr.Data.Annotations;

/// <summary>
/// CAS(ME)³ part A: the workbook's sheet "label" (Subject spNO.x, Filename, Onset, Apex, Offset, AU, Objective class,
/// emotion; the first sheet when none is called "label") and frames at <c>ROOT/spNO.1/b/color/175.jpg</c>. One video
/// folder holds several micro-expressions, so a clip is named Filename_Onset.
/// </summary>
public static class Casme3Reader
{
    public const string Pattern = "*.xlsx";

    public static ClipList Read(string root, string? annotations = null, ClassScheme scheme = ClassScheme.Native, string subjectPrefix = "", bool allowOutsideRoot = false)
    {
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"CAS(ME)³ root folder {root} not found");
        string file = annotations ?? ClipChecks.FindAnnotation([root, Path.GetDirectoryName(Path.GetFullPath(root)) ?? root], Pattern, "CAS(ME)³");
        string? sheet = Xlsx.XlsxReader.SheetNames(file).FirstOrDefault(s => s.Equals("label", StringComparison.OrdinalIgnoreCase));
        var table = SheetTable.Read(file, sheet, ["Subject"], ["Filename"], ["Onset"], ["Apex"], ["Offset"], ["emotion"]);
        var (classes, map) = LabelMaps.For("casme3", scheme);
        var list = new ClipList("casme3", classes);
        int cSub = table.Col("Subject"), cFile = table.Col("Filename"), cOn = table.Col("Onset"), cApex = table.Col("Apex"),
            cOff = table.Col("Offset"), cEmo = table.Col("emotion");
        int cAu = table.Col("AU", "Action Units");
        foreach (var row in table.Rows)
        {
            string subject = row[cSub].Trim(), video = row[cFile].Trim();
            if (subject.Length == 0 && video.Length == 0) continue;
            if (subject.Length == 0 || video.Length == 0)
            {
                list.Skip(file, row.Number, $"expected a subject (spNO.1) and a filename, got '{subject}', '{video}'");
                continue;
            }
            string emotion = LabelMaps.Normalise(row[cEmo]);
            if (!map.TryGetValue(emotion, out int label))
            {
                list.Skip(file, row.Number, $"label '{row[cEmo]}' outside the mapping ({string.Join(", ", map.Keys)})");
                continue;
            }
            if (!SheetTable.TryFrame(row[cOn], "Onset", out int onset, out string err)
                || !SheetTable.TryFrame(row[cApex], "Apex", out int apex, out err)
                || !SheetTable.TryFrame(row[cOff], "Offset", out int offset, out err))
            {
                list.Skip(file, row.Number, err);
                continue;
            }
            if (onset < 0 || offset < 0)
            {
                list.Skip(file, row.Number, "onset and offset are needed: a part-A folder holds a whole recording");
                continue;
            }
            string[] candidates = [Path.Combine(root, subject, video, "color"), Path.Combine(root, subject, video)];
            if (ClipChecks.OutsideRoot(root, allowOutsideRoot, Path.Combine(subject, video), candidates) is string outside)
            {
                list.Skip(file, row.Number, outside);
                continue;
            }
            string? dir = ClipChecks.FirstDir(candidates);
            string? reason = ClipChecks.FrameRange(dir, Path.Combine(root, subject, video, "color"), ref onset, apex, ref offset);
            if (reason != null)
            {
                list.Skip(file, row.Number, reason);
                continue;
            }
            string clip = video + "_" + onset.ToString(CultureInfo.InvariantCulture);
            list.Clips.Add(new ClipSource("casme3", subjectPrefix + subject, clip, label, classes[label], dir!, SourceKind.FrameFolder, onset, apex, offset, file, row.Number, ClipChecks.ActionUnits(list, file, row, cAu, "AU")));
        }
        return list;
    }
}
