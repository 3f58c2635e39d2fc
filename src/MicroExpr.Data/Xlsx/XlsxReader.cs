using System.Globalization;
using System.IO.Compression;
using System.Xml;

namespace MicroExpr.Data.Xlsx;

/// <summary>One row of a sheet: its 1-based row number in the file (for messages) and its cells as text.</summary>
public sealed record SheetRow(int Number, string[] Cells)
{
    public string this[int column] => column < Cells.Length ? Cells[column] : "";
}

/// <summary>
/// A minimal reader for the .xlsx files MER data sets ship (Office Open XML: a zip of XML parts).
/// Reads one worksheet's cell values as text: shared strings, inline strings, numbers (invariant
/// culture, integers without ".0") and booleans. Formatting, formulas' expressions and dates as dates
/// are not interpreted (a formula's cached value is read).
/// </summary>
public static class XlsxReader
{
    private const string MainNs = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
    private const string RelNs = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";

    /// <summary>Names of the worksheets, in workbook order.</summary>
    public static IReadOnlyList<string> SheetNames(string path)
    {
        using var zip = Open(path);
        return Sheets(zip, path).Select(s => s.Name).ToList();
    }

    /// <summary>
    /// The rows of a worksheet (the first one when <paramref name="sheet"/> is null), skipping empty rows.
    /// Throws <see cref="InvalidDataException"/> naming the file when it is not a readable .xlsx.
    /// </summary>
    public static IReadOnlyList<SheetRow> ReadSheet(string path, string? sheet = null)
    {
        using var zip = Open(path);
        var sheets = Sheets(zip, path);
        if (sheets.Count == 0) throw new InvalidDataException($"{path}: the workbook has no worksheets");
        var chosen = sheet is null ? sheets[0] : sheets.FirstOrDefault(s => string.Equals(s.Name, sheet, StringComparison.OrdinalIgnoreCase));
        if (chosen.Target is null)
            throw new InvalidDataException($"{path}: no worksheet named '{sheet}' (found: {string.Join(", ", sheets.Select(s => s.Name))})");
        var shared = SharedStrings(zip);
        var entry = zip.GetEntry(chosen.Target) ?? throw new InvalidDataException($"{path}: worksheet part {chosen.Target} is missing");
        var rows = new List<SheetRow>();
        using var xr = XmlReader.Create(entry.Open(), new XmlReaderSettings { IgnoreWhitespace = false });
        var cells = new SortedDictionary<int, string>();
        int rowNumber = 0, implicitRow = 0;
        try
        {
            while (xr.Read())
            {
                if (xr.NodeType == XmlNodeType.Element && xr.LocalName == "row")
                {
                    cells.Clear();
                    implicitRow++;
                    rowNumber = int.TryParse(xr.GetAttribute("r"), out int r) ? r : implicitRow;
                    implicitRow = rowNumber;
                    if (xr.IsEmptyElement) continue;
                    int implicitCol = -1;
                    using var rowReader = xr.ReadSubtree();
                    while (rowReader.Read())
                    {
                        if (rowReader.NodeType != XmlNodeType.Element || rowReader.LocalName != "c") continue;
                        string? reference = rowReader.GetAttribute("r");
                        int col = reference is null ? implicitCol + 1 : ColumnIndex(reference);
                        implicitCol = col;
                        string type = rowReader.GetAttribute("t") ?? "n";
                        string value = ReadCell(rowReader, type, shared);
                        if (value.Length > 0) cells[col] = value;
                    }
                    if (cells.Count > 0)
                    {
                        var arr = new string[cells.Keys.Max() + 1];
                        Array.Fill(arr, "");
                        foreach (var (c, v) in cells) arr[c] = v;
                        rows.Add(new SheetRow(rowNumber, arr));
                    }
                }
            }
        }
        catch (XmlException e)
        {
            throw new InvalidDataException($"{path}: worksheet '{chosen.Name}' is not valid XML near row {rowNumber}: {e.Message}", e);
        }
        return rows;
    }

    private static ZipArchive Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        try
        {
            return ZipFile.OpenRead(path);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: not an .xlsx workbook (not a zip archive; an old binary .xls must be saved as .xlsx)", e);
        }
    }

    private static List<(string Name, string? Target)> Sheets(ZipArchive zip, string path)
    {
        var wb = zip.GetEntry("xl/workbook.xml") ?? throw new InvalidDataException($"{path}: not an .xlsx workbook (xl/workbook.xml missing)");
        var rels = new Dictionary<string, string>();
        var relEntry = zip.GetEntry("xl/_rels/workbook.xml.rels");
        if (relEntry != null)
        {
            var doc = new XmlDocument();
            using (var s = relEntry.Open()) doc.Load(s);
            foreach (XmlElement e in doc.GetElementsByTagName("Relationship"))
            {
                string target = e.GetAttribute("Target");
                target = target.StartsWith('/') ? target.TrimStart('/') : "xl/" + target;
                rels[e.GetAttribute("Id")] = target;
            }
        }
        var wdoc = new XmlDocument();
        using (var s = wb.Open()) wdoc.Load(s);
        var result = new List<(string, string?)>();
        int i = 1;
        foreach (XmlElement e in wdoc.GetElementsByTagName("sheet", MainNs))
        {
            string id = e.GetAttribute("id", RelNs);
            string target = rels.TryGetValue(id, out var t) ? t : $"xl/worksheets/sheet{i}.xml";
            result.Add((e.GetAttribute("name"), target));
            i++;
        }
        return result;
    }

    private static List<string> SharedStrings(ZipArchive zip)
    {
        var list = new List<string>();
        var entry = zip.GetEntry("xl/sharedStrings.xml");
        if (entry is null) return list;
        using var xr = XmlReader.Create(entry.Open());
        while (xr.Read())
        {
            if (xr.NodeType == XmlNodeType.Element && xr.LocalName == "si")
                list.Add(ReadText(xr));
        }
        return list;
    }

    /// <summary>Concatenates every &lt;t&gt; inside the current element (rich text runs), skipping phonetic runs.</summary>
    private static string ReadText(XmlReader xr)
    {
        if (xr.IsEmptyElement) return "";
        var sb = new System.Text.StringBuilder();
        using var sub = xr.ReadSubtree();
        int skipDepth = -1;
        while (sub.Read())
        {
            if (sub.NodeType == XmlNodeType.Element && sub.LocalName == "rPh" && !sub.IsEmptyElement) skipDepth = sub.Depth;
            else if (sub.NodeType == XmlNodeType.EndElement && sub.Depth == skipDepth) skipDepth = -1;
            else if (skipDepth < 0 && sub.NodeType == XmlNodeType.Element && sub.LocalName == "t" && !sub.IsEmptyElement)
                sb.Append(sub.ReadElementContentAsString());
        }
        return sb.ToString();
    }

    private static string ReadCell(XmlReader c, string type, List<string> shared)
    {
        if (c.IsEmptyElement) return "";
        string raw = "";
        using var sub = c.ReadSubtree();
        while (sub.Read())
        {
            if (sub.NodeType != XmlNodeType.Element) continue;
            if (sub.LocalName == "v") raw = sub.ReadElementContentAsString();
            else if (sub.LocalName == "is") raw = ReadText(sub);
        }
        switch (type)
        {
            case "s":
                return int.TryParse(raw, NumberStyles.Integer, CultureInfo.InvariantCulture, out int i) && i >= 0 && i < shared.Count ? shared[i].Trim() : "";
            case "b":
                return raw == "1" ? "TRUE" : "FALSE";
            case "n":
                if (double.TryParse(raw, NumberStyles.Float, CultureInfo.InvariantCulture, out double d))
                    return d == Math.Floor(d) && Math.Abs(d) < 1e15 ? ((long)d).ToString(CultureInfo.InvariantCulture) : d.ToString("R", CultureInfo.InvariantCulture);
                return raw.Trim();
            default:
                return raw.Trim();
        }
    }

    /// <summary>"B7" → 1 (0-based column).</summary>
    public static int ColumnIndex(string reference)
    {
        int col = 0, i = 0;
        while (i < reference.Length && char.IsLetter(reference[i]))
        {
            col = col * 26 + (char.ToUpperInvariant(reference[i]) - 'A' + 1);
            i++;
        }
        return col - 1;
    }
}
