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
/// <para>Hostile files are bounded by what they are, not by what they claim: every part is read through a stream that
/// stops at <see cref="MaxPartBytes"/> decompressed bytes (a zip bomb fails at the cap, whatever the zip header says);
/// DTDs are refused (no entity expansion); cell references must be A1-style within XFD1048576; a string holds at most
/// <see cref="MaxStringChars"/> characters (Excel's own cell limit); a sheet holds at most <see cref="MaxCells"/> cells
/// (counting blanks up to each row's last cell) and <see cref="MaxSharedStrings"/> shared strings. Every failure is an
/// <see cref="InvalidDataException"/> naming the file, the part and, where there is one, the row.</para>
/// </summary>
public static class XlsxReader
{
    /// <summary>Decompressed size cap of one part (worksheet, shared strings, workbook, relationships).</summary>
    public const long MaxPartBytes = 32L << 20;
    /// <summary>Characters in one string (Excel's cell limit: 32,767).</summary>
    public const int MaxStringChars = 32_767;
    /// <summary>Cells of one sheet, counting blanks up to each row's last cell.</summary>
    public const long MaxCells = 4L << 20;
    /// <summary>Entries of the shared-strings table.</summary>
    public const int MaxSharedStrings = 1 << 20;
    /// <summary>Columns: A..XFD.</summary>
    public const int MaxColumns = 16_384;
    /// <summary>Rows: 1..1,048,576.</summary>
    public const int MaxRows = 1_048_576;

    private const string MainNs = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
    private const string RelNs = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";

    /// <summary>Names of the worksheets, in workbook order.</summary>
    public static IReadOnlyList<string> SheetNames(string path) => Guard(path, () =>
    {
        using var zip = Open(path);
        return Sheets(zip, path).Select(s => s.Name).ToList();
    });

    /// <summary>
    /// Runs a read, turning what the zip layer throws late (a central directory read lazily, a bad entry) into one
    /// <see cref="InvalidDataException"/> that names the file; messages that already name it pass through.
    /// </summary>
    static T Guard<T>(string path, Func<T> read)
    {
        try
        {
            return read();
        }
        catch (Exception e) when (e is InvalidDataException or IOException or ArgumentException or NotSupportedException
                                   && e is not FileNotFoundException && !e.Message.StartsWith(path, StringComparison.Ordinal))
        {
            throw new InvalidDataException($"{path}: not a readable .xlsx workbook ({e.Message.ReplaceLineEndings(" ")})", e);
        }
    }

    /// <summary>
    /// The rows of a worksheet (the first one when <paramref name="sheet"/> is null), skipping empty rows.
    /// Throws <see cref="InvalidDataException"/> naming the file when it is not a readable .xlsx.
    /// </summary>
    public static IReadOnlyList<SheetRow> ReadSheet(string path, string? sheet = null) => Guard(path, () => ReadSheetCore(path, sheet));

    static List<SheetRow> ReadSheetCore(string path, string? sheet)
    {
        using var zip = Open(path);
        var sheets = Sheets(zip, path);
        if (sheets.Count == 0) throw new InvalidDataException($"{path}: the workbook has no worksheets");
        var chosen = sheet is null ? sheets[0] : sheets.FirstOrDefault(s => string.Equals(s.Name, sheet, StringComparison.OrdinalIgnoreCase));
        if (chosen.Target is null)
            throw new InvalidDataException($"{path}: no worksheet named '{sheet}' (found: {string.Join(", ", sheets.Select(s => s.Name))})");
        var shared = SharedStrings(zip, path);
        var entry = zip.GetEntry(chosen.Target) ?? throw new InvalidDataException($"{path}: worksheet part {chosen.Target} is missing");
        var rows = new List<SheetRow>();
        var cells = new SortedDictionary<int, string>();
        int rowNumber = 0, implicitRow = 0;
        long cellCount = 0;
        string part = $"worksheet '{chosen.Name}' ({chosen.Target})";
        try
        {
            using var xr = XmlReader.Create(OpenPart(entry, path), Settings);
            while (xr.Read())
            {
                if (xr.NodeType == XmlNodeType.Element && xr.LocalName == "row")
                {
                    cells.Clear();
                    implicitRow++;
                    string? rowRef = xr.GetAttribute("r");
                    if (rowRef is null) rowNumber = implicitRow;
                    else if (!int.TryParse(rowRef, NumberStyles.None, CultureInfo.InvariantCulture, out rowNumber) || rowNumber < 1 || rowNumber > MaxRows)
                        throw new InvalidDataException($"{path}: {part} row {implicitRow}: row number r=\"{Clip(rowRef)}\" is not 1..{MaxRows}");
                    implicitRow = rowNumber;
                    if (xr.IsEmptyElement) continue;
                    int implicitCol = -1;
                    using var rowReader = xr.ReadSubtree();
                    while (rowReader.Read())
                    {
                        if (rowReader.NodeType != XmlNodeType.Element || rowReader.LocalName != "c") continue;
                        string? reference = rowReader.GetAttribute("r");
                        int col = reference is null ? implicitCol + 1 : CellColumn(reference, path, part, rowNumber);
                        if (col >= MaxColumns) throw new InvalidDataException($"{path}: {part} row {rowNumber}: more than {MaxColumns} columns (A..XFD)");
                        implicitCol = col;
                        string type = rowReader.GetAttribute("t") ?? "n";
                        string value = ReadCell(rowReader, type, shared, path, part, rowNumber);
                        if (value.Length > 0) cells[col] = value;
                    }
                    if (cells.Count > 0)
                    {
                        cellCount += cells.Keys.Max() + 1;
                        if (cellCount > MaxCells)
                            throw new InvalidDataException($"{path}: {part} row {rowNumber}: the sheet has more than {MaxCells} cells (counting blanks up to each row's last cell); not an annotation sheet");
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

    /// <summary>No DTD (hence no entity expansion), no external resolution; whitespace kept (it can be cell text).</summary>
    static readonly XmlReaderSettings Settings = new()
    {
        DtdProcessing = DtdProcessing.Prohibit,
        XmlResolver = null,
        MaxCharactersFromEntities = 0,
        IgnoreWhitespace = false,
        CloseInput = true,
    };

    /// <summary>A part's decompressed bytes, capped at <see cref="MaxPartBytes"/>; an unreadable entry names the file and part.</summary>
    static BoundedStream OpenPart(ZipArchiveEntry entry, string path)
    {
        try
        {
            return new BoundedStream(entry.Open(), MaxPartBytes, path, entry.FullName);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or NotSupportedException or ArgumentException)
        {
            throw new InvalidDataException($"{path}: part {entry.FullName} cannot be opened ({e.Message})", e);
        }
    }

    /// <summary>The first 40 characters of a hostile value, for messages.</summary>
    static string Clip(string s) => s.Length <= 40 ? s : s[..40] + "…";

    /// <summary>Loads a small XML part (workbook, relationships) into a DOM, bounded and without DTDs.</summary>
    static XmlDocument LoadPart(ZipArchiveEntry entry, string path)
    {
        var doc = new XmlDocument { XmlResolver = null };
        try
        {
            using var xr = XmlReader.Create(OpenPart(entry, path), Settings);
            doc.Load(xr);
        }
        catch (XmlException e)
        {
            throw new InvalidDataException($"{path}: part {entry.FullName} is not valid XML: {e.Message}", e);
        }
        return doc;
    }

    private static ZipArchive Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        try
        {
            return ZipFile.OpenRead(path);
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentException or NotSupportedException || (e is IOException && e is not FileNotFoundException))
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
            var doc = LoadPart(relEntry, path);
            foreach (XmlElement e in doc.GetElementsByTagName("Relationship"))
            {
                string target = e.GetAttribute("Target");
                target = target.StartsWith('/') ? target.TrimStart('/') : "xl/" + target;
                rels[e.GetAttribute("Id")] = target;
            }
        }
        var wdoc = LoadPart(wb, path);
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

    private static List<string> SharedStrings(ZipArchive zip, string path)
    {
        var list = new List<string>();
        var entry = zip.GetEntry("xl/sharedStrings.xml");
        if (entry is null) return list;
        try
        {
            using var xr = XmlReader.Create(OpenPart(entry, path), Settings);
            while (xr.Read())
            {
                if (xr.NodeType == XmlNodeType.Element && xr.LocalName == "si")
                {
                    if (list.Count >= MaxSharedStrings)
                        throw new InvalidDataException($"{path}: part {entry.FullName} holds more than {MaxSharedStrings} shared strings");
                    list.Add(ReadText(xr, path, $"part {entry.FullName} string {list.Count}"));
                }
            }
        }
        catch (XmlException e)
        {
            throw new InvalidDataException($"{path}: part {entry.FullName} is not valid XML: {e.Message}", e);
        }
        return list;
    }

    /// <summary>Concatenates every &lt;t&gt; inside the current element (rich text runs), skipping phonetic runs.</summary>
    private static string ReadText(XmlReader xr, string path, string where)
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
            {
                sb.Append(ReadBounded(sub, path, where));
                if (sb.Length > MaxStringChars) throw TooLong(path, where);
            }
        }
        return sb.ToString();
    }

    static InvalidDataException TooLong(string path, string where) =>
        new($"{path}: {where}: a string longer than {MaxStringChars} characters (Excel's cell limit)");

    /// <summary>
    /// The text content of the current element (the reader is left on its end tag), read in chunks and refused as soon
    /// as it passes <see cref="MaxStringChars"/>.
    /// </summary>
    static string ReadBounded(XmlReader r, string path, string where)
    {
        if (r.IsEmptyElement) return "";
        var sb = new System.Text.StringBuilder();
        var buffer = new char[1024];
        int depth = r.Depth;
        while (r.Read())
        {
            if (r.NodeType is XmlNodeType.Text or XmlNodeType.CDATA or XmlNodeType.Whitespace or XmlNodeType.SignificantWhitespace)
            {
                if (r.CanReadValueChunk)
                {
                    int n;
                    while ((n = r.ReadValueChunk(buffer, 0, buffer.Length)) > 0)
                    {
                        sb.Append(buffer, 0, n);
                        if (sb.Length > MaxStringChars) throw TooLong(path, where);
                    }
                }
                else sb.Append(r.Value);
                if (sb.Length > MaxStringChars) throw TooLong(path, where);
            }
            else if (r.NodeType == XmlNodeType.EndElement && r.Depth == depth) break;
        }
        return sb.ToString();
    }

    private static string ReadCell(XmlReader c, string type, List<string> shared, string path, string part, int row)
    {
        if (c.IsEmptyElement) return "";
        string raw = "";
        using var sub = c.ReadSubtree();
        while (sub.Read())
        {
            if (sub.NodeType != XmlNodeType.Element) continue;
            if (sub.LocalName == "v") raw = ReadBounded(sub, path, $"{part} row {row}");
            else if (sub.LocalName == "is") raw = ReadText(sub, path, $"{part} row {row}");
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

    /// <summary>"B7" → 1 (0-based column); -1 when the reference is not A1-style (letters then a row number) within XFD.</summary>
    public static int ColumnIndex(string reference)
    {
        int col = 0, i = 0;
        while (i < reference.Length && char.IsAsciiLetter(reference[i]))
        {
            if (i == 3) return -1; // XFD is the last column: at most three letters
            col = col * 26 + (char.ToUpperInvariant(reference[i]) - 'A' + 1);
            i++;
        }
        if (i == 0 || col > MaxColumns || i == reference.Length) return -1;
        for (int j = i; j < reference.Length; j++)
            if (!char.IsAsciiDigit(reference[j])) return -1;
        return col - 1;
    }

    static int CellColumn(string reference, string path, string part, int row)
    {
        int col = ColumnIndex(reference);
        if (col < 0) throw new InvalidDataException($"{path}: {part} row {row}: cell reference r=\"{Clip(reference)}\" is not a cell A1..XFD{MaxRows}");
        return col;
    }
}

/// <summary>
/// A read-only view of a (decompressing) stream that fails with <see cref="InvalidDataException"/> once more than
/// <c>limit</c> bytes have been read: the size a zip entry claims is not trusted.
/// </summary>
internal sealed class BoundedStream(Stream inner, long limit, string file, string part) : Stream
{
    long read;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n;
        try
        {
            n = inner.Read(buffer);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or ArgumentException)
        {
            throw new InvalidDataException($"{file}: part {part} is corrupt (its compressed data cannot be read: {e.Message})", e);
        }
        read += n;
        if (read > limit) throw new InvalidDataException($"{file}: part {part} decompresses to more than {limit >> 20} MiB; not an annotation workbook (a zip bomb?)");
        return n;
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => read; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}
