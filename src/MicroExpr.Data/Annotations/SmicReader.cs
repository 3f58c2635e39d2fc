using System.Globalization;

namespace MicroExpr.Data.Annotations;

/// <summary>
/// SMIC-HS: frames at <c>ROOT/s{n}/{negative|positive|surprise}/s{n}_{ne|po|sur}_{k}/image######.bmp</c>. Without an
/// annotation sheet every clip folder is a clip (onset = first frame, offset = last frame) labelled by its emotion folder;
/// with one (columns Subject, Filename, OnsetF, OffsetF, Emotion, FirstF) the rows name the clips. OnsetF/OffsetF are
/// read as frame numbers; when those are not in the folder but FirstF + OnsetF − 1 are, they are read as counted from
/// FirstF. SMIC has no apex: it is estimated as the frame of largest motion.
/// </summary>
public static class SmicReader
{
    static readonly string[] EmotionFolders = ["negative", "positive", "surprise"];

    public static ClipList Read(string root, string? annotations = null, string subjectPrefix = "", bool allowOutsideRoot = false)
    {
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"SMIC root folder {root} not found");
        // SMIC-E ships HS, VIS and NIR side by side: accept the parent of HS as the root.
        if (!Directory.EnumerateDirectories(root, "s*").Any() && Directory.Exists(Path.Combine(root, "HS"))) root = Path.Combine(root, "HS");
        var (classes, map) = LabelMaps.For("smic", ClassScheme.Three);
        var list = new ClipList("smic", classes);
        return annotations is null ? FromFolders(root, subjectPrefix, list, map) : FromSheet(root, annotations, subjectPrefix, list, map, allowOutsideRoot);
    }

    static ClipList FromFolders(string root, string prefix, ClipList list, Dictionary<string, int> map)
    {
        var subjects = Directory.EnumerateDirectories(root).Where(d => IsSubjectFolder(Path.GetFileName(d))).OrderBy(d => d, NaturalComparer.Instance).ToList();
        if (subjects.Count == 0) throw new InvalidDataException($"{root}: no subject folders s1, s2, ... (expected s{{n}}/{{negative|positive|surprise}}/s{{n}}_{{ne|po|sur}}_{{k}}/)");
        foreach (var sdir in subjects)
        {
            string subject = Path.GetFileName(sdir).ToLowerInvariant();
            foreach (var edir in Directory.EnumerateDirectories(sdir).OrderBy(d => d, StringComparer.Ordinal))
            {
                string emotion = LabelMaps.Normalise(Path.GetFileName(edir));
                if (!map.TryGetValue(emotion, out int label))
                {
                    list.Skip(edir, 0, $"label folder '{Path.GetFileName(edir)}' outside the mapping (negative, positive, surprise)");
                    continue;
                }
                foreach (var cdir in Directory.EnumerateDirectories(edir).OrderBy(d => d, NaturalComparer.Instance))
                {
                    int onset = -1, offset = -1;
                    string? reason = ClipChecks.FrameRange(cdir, cdir, ref onset, -1, ref offset);
                    if (reason != null)
                    {
                        list.Skip(cdir, 0, reason);
                        continue;
                    }
                    list.Clips.Add(new ClipSource("smic", prefix + subject, Path.GetFileName(cdir), label, list.ClassNames[label], cdir, SourceKind.FrameFolder, -1, -1, -1, cdir, 0));
                }
            }
        }
        return list;
    }

    static bool IsSubjectFolder(string name) => name.Length > 1 && (name[0] == 's' || name[0] == 'S') && name.Skip(1).All(char.IsAsciiDigit);

    static ClipList FromSheet(string root, string file, string prefix, ClipList list, Dictionary<string, int> map, bool allowOutsideRoot)
    {
        var table = SheetTable.Read(file, null, ["Subject"], ["Filename"], ["OnsetF", "Onset"], ["OffsetF", "Offset"], ["Emotion"]);
        int cSub = table.Col("Subject"), cFile = table.Col("Filename"), cOn = table.Col("OnsetF", "Onset"), cOff = table.Col("OffsetF", "Offset"),
            cEmo = table.Col("Emotion"), cFirst = table.Col("FirstF", "First");
        foreach (var row in table.Rows)
        {
            string subjectCell = row[cSub].Trim(), clip = row[cFile].Trim();
            if (subjectCell.Length == 0 && clip.Length == 0) continue;
            int n = ClipChecks.SubjectNumber(subjectCell);
            if (n < 0 || clip.Length == 0)
            {
                list.Skip(file, row.Number, $"expected a subject (1 or s1) and a filename, got '{subjectCell}', '{clip}'");
                continue;
            }
            string emotion = LabelMaps.Normalise(row[cEmo]);
            if (!map.TryGetValue(emotion, out int label))
            {
                list.Skip(file, row.Number, $"label '{row[cEmo]}' outside the mapping (negative, positive, surprise)");
                continue;
            }
            int firstF = -1;
            if (!SheetTable.TryFrame(row[cOn], "OnsetF", out int onset, out string err)
                || !SheetTable.TryFrame(row[cOff], "OffsetF", out int offset, out err)
                || (cFirst >= 0 && !SheetTable.TryFrame(row[cFirst], "FirstF", out firstF, out err)))
            {
                list.Skip(file, row.Number, err);
                continue;
            }
            string subject = "s" + n.ToString(CultureInfo.InvariantCulture);
            var candidates = new List<string> { Path.Combine(root, subject, list.ClassNames[label], clip) };
            candidates.AddRange(EmotionFolders.Select(e => Path.Combine(root, subject, e, clip)));
            candidates.Add(Path.Combine(root, subject, clip));
            if (ClipChecks.OutsideRoot(root, allowOutsideRoot, Path.Combine(subjectCell, clip), candidates) is string outside)
            {
                list.Skip(file, row.Number, outside);
                continue;
            }
            string? dir = ClipChecks.FirstDir(candidates);
            string? reason = ClipChecks.FrameRange(dir, candidates[0], ref onset, -1, ref offset, firstF);
            if (reason != null)
            {
                list.Skip(file, row.Number, reason);
                continue;
            }
            list.Clips.Add(new ClipSource("smic", prefix + subject, clip, label, list.ClassNames[label], dir!, SourceKind.FrameFolder, onset, -1, offset, file, row.Number));
        }
        return list;
    }
}
