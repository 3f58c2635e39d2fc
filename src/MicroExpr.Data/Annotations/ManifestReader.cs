using System.Globalization;
using System.Text;
using MicroExpr.Data.Frames;

namespace MicroExpr.Data.Annotations;

/// <summary>
/// A generic manifest CSV: header <c>subject,label,path</c> plus optional <c>dataset,clip,onset,apex,offset</c> (any
/// order, case-insensitive). <c>path</c> is a folder of frames, a video, or one precomputed motion image (T = 1);
/// relative paths resolve against the manifest's folder. Fields may be quoted ("a, b" and "say ""hi"""), so paths may
/// hold spaces and commas. Labels are all integers, dense from 0 (classes "0".."K-1", each used; a gap such as 0, 1, 2,
/// 1000 is refused, so a typo cannot make a 1001-class model), or all names (MEGC order when they are among
/// negative/positive/surprise, natural order otherwise; a name outside those three beside them is refused as a typo).
/// Onset/apex/offset are frame numbers as in the file names, or 1-based positions when names carry no number; blank is
/// unknown. Every path must lie in the manifest's folder (the data root) unless <paramref name="allowOutsideRoot"/>.
/// The CSV is split by our own 30-line RFC 4180 splitter rather than a CSV library: one record per line keeps every
/// message's row number the file's line number, and a library would not shorten this reader.
/// </summary>
public static class ManifestReader
{
    public static ClipList Read(string manifest, bool allowOutsideRoot = false)
    {
        if (!File.Exists(manifest)) throw new FileNotFoundException($"{manifest}: manifest not found", manifest);
        string baseDir = Path.GetDirectoryName(Path.GetFullPath(manifest))!;
        var lines = File.ReadAllLines(manifest, Encoding.UTF8);
        int headerAt = Array.FindIndex(lines, l => l.Trim().Length > 0);
        if (headerAt < 0) throw new InvalidDataException($"{manifest}: empty manifest (expected a header subject,label,path)");
        var header = SplitCsv(lines[headerAt], manifest, headerAt + 1).Select(h => h.Trim().ToLowerInvariant()).ToList();
        int Col(string name) => header.IndexOf(name);
        int cSub = Col("subject"), cLabel = Col("label"), cPath = Col("path");
        if (cSub < 0 || cLabel < 0 || cPath < 0)
            throw new InvalidDataException($"{manifest} row {headerAt + 1}: header must name subject, label and path (optional dataset, clip, onset, apex, offset); got '{lines[headerAt]}'");
        int cData = Col("dataset"), cClip = Col("clip"), cOn = Col("onset"), cApex = Col("apex"), cOff = Col("offset");

        var rows = new List<(int Number, string[] Cells)>();
        var early = new List<SkippedRow>();
        for (int i = headerAt + 1; i < lines.Length; i++)
        {
            if (lines[i].Trim().Length == 0) continue;
            try
            {
                rows.Add((i + 1, SplitCsv(lines[i], manifest, i + 1)));
            }
            catch (InvalidDataException)
            {
                early.Add(new SkippedRow(manifest, i + 1, Unclosed));
            }
        }
        string Cell(string[] cells, int c) => c >= 0 && c < cells.Length ? cells[c].Trim() : "";

        // Integers or names, whichever most rows use; a row of the other kind is skipped as outside the mapping.
        static bool IsInt(string l) => int.TryParse(l, NumberStyles.None, CultureInfo.InvariantCulture, out _);
        var allLabels = rows.Select(r => Cell(r.Cells, cLabel)).Where(l => l.Length > 0).ToList();
        bool numeric = allLabels.Count(IsInt) * 2 >= allLabels.Count && allLabels.Count > 0;
        var labels = allLabels.Where(l => IsInt(l) == numeric).Select(l => l.ToLowerInvariant()).Distinct().ToList();
        string[] classes;
        int RowOf(string label) => rows.First(r => string.Equals(Cell(r.Cells, cLabel), label, StringComparison.OrdinalIgnoreCase)).Number;
        if (numeric)
        {
            // Dense from 0: K classes are exactly the labels 0..K-1, so the model's size is bounded by the rows.
            var values = labels.Select(l => int.Parse(l, CultureInfo.InvariantCulture)).Distinct().Order().ToList();
            int missing = Enumerable.Range(0, values.Count).FirstOrDefault(i => values[i] != i, -1);
            if (missing >= 0)
            {
                int odd = values.First(v => v >= values.Count);
                throw new InvalidDataException($"{manifest} row {RowOf(odd.ToString(CultureInfo.InvariantCulture))}: label {odd}: integer labels must be the classes 0..K-1 with none missing; " +
                    $"found {values.Count} distinct labels ({string.Join(", ", values.Take(12))}{(values.Count > 12 ? ", …" : "")}) but no {missing}");
            }
            classes = values.Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();
        }
        else if (labels.All(l => LabelMaps.ThreeClasses.Contains(l)))
            classes = LabelMaps.ThreeClasses;
        else if (labels.Any(l => LabelMaps.ThreeClasses.Contains(l)))
        {
            string odd = labels.First(l => !LabelMaps.ThreeClasses.Contains(l));
            throw new InvalidDataException($"{manifest} row {RowOf(odd)}: label '{odd}' beside negative/positive/surprise would add a class of its own; " +
                "use one of those three names (or rename every class)");
        }
        else
            classes = labels.OrderBy(l => l, NaturalComparer.Instance).ToArray();

        var list = new ClipList("manifest", classes);
        list.Skipped.AddRange(early);
        foreach (var (number, cells) in rows)
        {
            string subject = Cell(cells, cSub), labelText = Cell(cells, cLabel), rel = Cell(cells, cPath);
            if (subject.Length == 0 || labelText.Length == 0 || rel.Length == 0)
            {
                list.Skip(manifest, number, "expected subject, label and path, one of them is empty");
                continue;
            }
            int label = !numeric ? Array.IndexOf(classes, labelText.ToLowerInvariant())
                : IsInt(labelText) ? int.Parse(labelText, CultureInfo.InvariantCulture) : -1;
            if (label < 0)
            {
                list.Skip(manifest, number, $"label '{labelText}' outside the mapping ({(numeric ? "integers" : string.Join(", ", classes))}); labels must be all integers or all names");
                continue;
            }
            if (!SheetTable.TryFrame(Cell(cells, cOn), "onset", out int onset, out string err)
                || !SheetTable.TryFrame(Cell(cells, cApex), "apex", out int apex, out err)
                || !SheetTable.TryFrame(Cell(cells, cOff), "offset", out int offset, out err))
            {
                list.Skip(manifest, number, err);
                continue;
            }
            string joined = Path.Combine(baseDir, rel);
            if (ClipChecks.OutsideRoot(baseDir, allowOutsideRoot, rel, [joined]) is string outside)
            {
                list.Skip(manifest, number, outside);
                continue;
            }
            string path = Path.GetFullPath(joined);
            SourceKind kind;
            if (Directory.Exists(path))
            {
                kind = SourceKind.FrameFolder;
                string? reason = ClipChecks.FrameRange(path, path, ref onset, apex, ref offset);
                if (reason != null)
                {
                    list.Skip(manifest, number, reason);
                    continue;
                }
            }
            else if (File.Exists(path) && FrameFolder.IsVideo(path)) kind = SourceKind.Video;
            else if (File.Exists(path) && FrameFolder.IsImage(path)) kind = SourceKind.MotionImage;
            else
            {
                list.Skip(manifest, number, File.Exists(path)
                    ? $"{path} is neither a folder of frames, a video (mp4, avi) nor an image (jpg, bmp, png)"
                    : $"missing frames: {path} not found");
                continue;
            }
            string dataset = cData >= 0 && Cell(cells, cData).Length > 0 ? Cell(cells, cData) : "manifest";
            string clip = cClip >= 0 && Cell(cells, cClip).Length > 0 ? Cell(cells, cClip) : Path.GetFileNameWithoutExtension(path.TrimEnd('/'));
            list.Clips.Add(new ClipSource(dataset, subject, clip, label, classes[label], path, kind, onset, apex, offset, manifest, number));
        }
        return list;
    }

    const string Unclosed = "a quoted field is not closed (expected a closing \")";

    /// <summary>Splits one CSV line (RFC 4180 quoting: "..." with "" for a quote). Throws naming the row when a quote is not closed.</summary>
    public static string[] SplitCsv(string line, string file, int row)
    {
        var cells = new List<string>();
        var sb = new StringBuilder();
        bool quoted = false;
        for (int i = 0; i < line.Length; i++)
        {
            char ch = line[i];
            if (quoted)
            {
                if (ch == '"')
                {
                    if (i + 1 < line.Length && line[i + 1] == '"') { sb.Append('"'); i++; }
                    else quoted = false;
                }
                else sb.Append(ch);
            }
            else if (ch == '"') quoted = true;
            else if (ch == ',') { cells.Add(sb.ToString()); sb.Clear(); }
            else sb.Append(ch);
        }
        if (quoted) throw new InvalidDataException($"{file} row {row}: {Unclosed}");
        cells.Add(sb.ToString().TrimEnd('\r'));
        return cells.ToArray();
    }
}
