using System.Globalization;
using System.IO.Compression;
using System.Security;
using System.Text;
using MicroExpr.IO;

namespace MicroExpr.Data.Xlsx;

/// <summary>
/// Writes a minimal single- or multi-sheet .xlsx (inline strings, numbers): enough for the synthetic
/// data set's coding file and for tests' fixtures, readable by Excel, LibreOffice and <see cref="XlsxReader"/>. Written atomically (<see cref="AtomicFile"/>).
/// A cell whose text parses as an invariant-culture number is written as a number.
/// </summary>
public static class XlsxWriter
{
    public static void Write(string path, string sheetName, IEnumerable<IReadOnlyList<string>> rows) =>
        Write(path, [(sheetName, rows)]);

    public static void Write(string path, IReadOnlyList<(string Name, IEnumerable<IReadOnlyList<string>> Rows)> sheets)
    {
        AtomicFile.Write(path, fs =>
        {
            using var zip = new ZipArchive(fs, ZipArchiveMode.Create, leaveOpen: true);
            var types = new StringBuilder("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"><Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/><Default Extension=\"xml\" ContentType=\"application/xml\"/><Override PartName=\"/xl/workbook.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/>");
            var wb = new StringBuilder("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><workbook xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\"><sheets>");
            var rels = new StringBuilder("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">");
            for (int s = 0; s < sheets.Count; s++)
            {
                int id = s + 1;
                types.Append($"<Override PartName=\"/xl/worksheets/sheet{id}.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/>");
                wb.Append($"<sheet name=\"{SecurityElement.Escape(sheets[s].Name)}\" sheetId=\"{id}\" r:id=\"rId{id}\"/>");
                rels.Append($"<Relationship Id=\"rId{id}\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet\" Target=\"worksheets/sheet{id}.xml\"/>");
                Entry(zip, $"xl/worksheets/sheet{id}.xml", SheetXml(sheets[s].Rows));
            }
            types.Append("</Types>");
            wb.Append("</sheets></workbook>");
            rels.Append("</Relationships>");
            Entry(zip, "[Content_Types].xml", types.ToString());
            Entry(zip, "_rels/.rels", "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"><Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>");
            Entry(zip, "xl/workbook.xml", wb.ToString());
            Entry(zip, "xl/_rels/workbook.xml.rels", rels.ToString());
        });
    }

    private static string SheetXml(IEnumerable<IReadOnlyList<string>> rows)
    {
        var sb = new StringBuilder("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><sheetData>");
        int r = 0;
        foreach (var row in rows)
        {
            r++;
            sb.Append($"<row r=\"{r}\">");
            for (int c = 0; c < row.Count; c++)
            {
                string v = row[c] ?? "";
                if (v.Length == 0) continue;
                string refName = ColumnName(c) + r.ToString(CultureInfo.InvariantCulture);
                if (double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out _) && !v.StartsWith('+') && v.Trim() == v)
                    sb.Append($"<c r=\"{refName}\"><v>{v}</v></c>");
                else
                    sb.Append($"<c r=\"{refName}\" t=\"inlineStr\"><is><t xml:space=\"preserve\">{SecurityElement.Escape(v)}</t></is></c>");
            }
            sb.Append("</row>");
        }
        sb.Append("</sheetData></worksheet>");
        return sb.ToString();
    }

    /// <summary>0 → "A", 26 → "AA".</summary>
    public static string ColumnName(int index)
    {
        var s = "";
        index++;
        while (index > 0)
        {
            int m = (index - 1) % 26;
            s = (char)('A' + m) + s;
            index = (index - 1) / 26;
        }
        return s;
    }

    private static void Entry(ZipArchive zip, string name, string content)
    {
        var e = zip.CreateEntry(name, CompressionLevel.Fastest);
        using var w = new StreamWriter(e.Open(), new UTF8Encoding(false));
        w.Write(content);
    }
}
