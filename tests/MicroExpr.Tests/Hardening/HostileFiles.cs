using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace MicroExpr.Tests.Hardening;

/// <summary>Hand-made hostile inputs: raw xlsx packages and raw safetensors files, byte for byte as an attacker writes them.</summary>
internal static class HostileFiles
{
    public const string Ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";

    public const string Workbook = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><workbook xmlns=\"" + Ns + "\" xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\"><sheets><sheet name=\"Sheet1\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>";

    const string Rels = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"><Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet\" Target=\"worksheets/sheet1.xml\"/></Relationships>";

    /// <summary>A worksheet part holding <paramref name="rows"/> (raw &lt;row&gt; elements).</summary>
    public static string Sheet(string rows) => $"<?xml version=\"1.0\" encoding=\"UTF-8\"?><worksheet xmlns=\"{Ns}\"><sheetData>{rows}</sheetData></worksheet>";

    /// <summary>An xlsx package of the given parts (null: the part is left out).</summary>
    public static void Xlsx(string path, string sheet, string? sharedStrings = null, string? workbook = Workbook, string? rels = Rels)
    {
        using var fs = File.Create(path);
        using var zip = new ZipArchive(fs, ZipArchiveMode.Create);
        void Part(string name, string? text)
        {
            if (text is null) return;
            using var w = new StreamWriter(zip.CreateEntry(name, CompressionLevel.Optimal).Open(), new UTF8Encoding(false));
            w.Write(text);
        }
        Part("xl/workbook.xml", workbook);
        Part("xl/_rels/workbook.xml.rels", rels);
        Part("xl/worksheets/sheet1.xml", sheet);
        Part("xl/sharedStrings.xml", sharedStrings);
    }

    /// <summary>An xlsx whose shared-strings part is <paramref name="strings"/> strings of <paramref name="chars"/> 'a's: megabytes of XML in a few kilobytes of zip.</summary>
    public static void SharedStringsBomb(string path, int strings, int chars)
    {
        using var fs = File.Create(path);
        using var zip = new ZipArchive(fs, ZipArchiveMode.Create);
        void Part(string name, string text)
        {
            using var w = new StreamWriter(zip.CreateEntry(name, CompressionLevel.Optimal).Open(), new UTF8Encoding(false));
            w.Write(text);
        }
        Part("xl/workbook.xml", Workbook);
        Part("xl/_rels/workbook.xml.rels", Rels);
        Part("xl/worksheets/sheet1.xml", Sheet("<row r=\"1\"><c r=\"A1\" t=\"s\"><v>0</v></c></row>"));
        using var sw = new StreamWriter(zip.CreateEntry("xl/sharedStrings.xml", CompressionLevel.Optimal).Open(), new UTF8Encoding(false));
        sw.Write($"<?xml version=\"1.0\" encoding=\"UTF-8\"?><sst xmlns=\"{Ns}\">");
        string one = "<si><t>" + new string('a', chars) + "</t></si>";
        for (int i = 0; i < strings; i++) sw.Write(one);
        sw.Write("</sst>");
    }

    /// <summary>A safetensors file from a raw JSON header and raw data bytes (the header length is written as given).</summary>
    public static void RawSafetensors(string path, string header, byte[] data, ulong? claimedHeaderLength = null)
    {
        var json = Encoding.UTF8.GetBytes(header);
        using var fs = File.Create(path);
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, claimedHeaderLength ?? (ulong)json.Length);
        fs.Write(len);
        fs.Write(json);
        fs.Write(data);
    }

    /// <summary>Bytes allocated on the managed heap by <paramref name="action"/> (an upper bound of how much it can have grown the heap).</summary>
    public static long Allocated(Action action)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        action();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }
}
