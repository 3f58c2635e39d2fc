using System.Diagnostics;
using MicroExpr.Data.Xlsx;
using static MicroExpr.Tests.Hardening.HostileFiles;

namespace MicroExpr.Tests.Hardening;

/// <summary>Issue 19 items 5 and 12 (xlsx): memory bounded by the file, not by what it claims; one-line errors naming the file and part.</summary>
public class XlsxHardeningTests
{
    string dir = "";

    [SetUp]
    public void SetUp() => dir = Directory.CreateTempSubdirectory("mx-xlsx-hostile-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(dir, true);

    InvalidDataException Refused(string path, long maxAllocated = 64L << 20, double maxSeconds = 10)
    {
        InvalidDataException? ex = null;
        var sw = Stopwatch.StartNew();
        long bytes = Allocated(() => ex = Assert.Throws<InvalidDataException>(() => XlsxReader.ReadSheet(path)));
        Assert.That(bytes, Is.LessThan(maxAllocated), $"allocated {bytes >> 20} MiB");
        Assert.That(sw.Elapsed.TotalSeconds, Is.LessThan(maxSeconds));
        TestContext.Out.WriteLine($"{Path.GetFileName(path)}: refused in {sw.Elapsed.TotalSeconds:F2} s, {bytes >> 20} MiB allocated: {ex!.Message}");
        Assert.That(ex!.Message, Does.StartWith(path));
        Assert.That(ex.Message, Does.Not.Contain("\n"));
        return ex;
    }

    [TestCase("ZZZZZZ1")]
    [TestCase("ZZZZZZZZZZZZ1")]
    [TestCase("XFE1")]
    [TestCase("1")]
    [TestCase("A")]
    [TestCase("A1x")]
    public void ACellReferenceBeyondXfdOrNotA1IsRefused(string reference)
    {
        string path = Path.Combine(dir, "bad-ref.xlsx");
        Xlsx(path, Sheet($"<row r=\"1\"><c r=\"A1\" t=\"inlineStr\"><is><t>Subject</t></is></c><c r=\"{reference}\" t=\"inlineStr\"><is><t>x</t></is></c></row>"));
        var ex = Refused(path);
        Assert.That(ex.Message, Does.Contain($"r=\"{reference}\"").And.Contain("row 1"));
    }

    [Test]
    public void TheLastColumnXfdIsRead()
    {
        string path = Path.Combine(dir, "xfd.xlsx");
        Xlsx(path, Sheet("<row r=\"1\"><c r=\"XFD1\" t=\"inlineStr\"><is><t>last</t></is></c></row>"));
        var rows = XlsxReader.ReadSheet(path);
        Assert.That(rows[0].Cells, Has.Length.EqualTo(16384));
        Assert.That(rows[0][16383], Is.EqualTo("last"));
    }

    [Test]
    public void ASharedStringsBombStopsAtThePartCap()
    {
        string path = Path.Combine(dir, "bomb.xlsx");
        SharedStringsBomb(path, strings: 1200, chars: 30_000); // 36 MB of XML in a small zip
        Assert.That(new FileInfo(path).Length, Is.LessThan(1 << 20));
        var ex = Refused(path, maxAllocated: 1L << 30, maxSeconds: 30);
        Assert.That(ex.Message, Does.Contain("xl/sharedStrings.xml").And.Contain("MiB"));
    }

    [Test]
    public void AStringLongerThanExcelsCellLimitIsRefused()
    {
        string path = Path.Combine(dir, "long.xlsx");
        SharedStringsBomb(path, strings: 1, chars: XlsxReader.MaxStringChars + 1);
        var ex = Refused(path);
        Assert.That(ex.Message, Does.Contain("32767"));
        string inline = Path.Combine(dir, "long-inline.xlsx");
        Xlsx(inline, Sheet($"<row r=\"3\"><c r=\"B3\" t=\"inlineStr\"><is><t>{new string('b', 40_000)}</t></is></c></row>"));
        Assert.That(Refused(inline).Message, Does.Contain("row 3").And.Contain("32767"));
    }

    [Test]
    public void ManyWideRowsHitTheCellCap()
    {
        string path = Path.Combine(dir, "wide.xlsx");
        var rows = new System.Text.StringBuilder();
        for (int r = 1; r <= 300; r++) rows.Append($"<row r=\"{r}\"><c r=\"XFD{r}\"><v>1</v></c></row>");
        Xlsx(path, Sheet(rows.ToString()));
        var ex = Refused(path, maxAllocated: 256L << 20);
        Assert.That(ex.Message, Does.Contain("cells"));
    }

    [TestCase("workbook")]
    [TestCase("sharedStrings")]
    [TestCase("sheet")]
    [TestCase("rels")]
    public void APartThatIsNotXmlNamesThePart(string which)
    {
        string path = Path.Combine(dir, "broken.xlsx");
        string sheet = Sheet("<row r=\"1\"><c r=\"A1\" t=\"s\"><v>0</v></c></row>");
        string shared = $"<sst xmlns=\"{Ns}\"><si><t>Subject</t></si></sst>";
        const string broken = "<not xml";
        Xlsx(path, which == "sheet" ? broken : sheet, which == "sharedStrings" ? broken : shared, which == "workbook" ? broken : Workbook,
            which == "rels" ? broken : null);
        var ex = Refused(path);
        Assert.That(ex.Message, Does.Contain(which == "sheet" ? "worksheet" : which == "rels" ? "workbook.xml.rels" : which + ".xml"));
    }

    [TestCase("workbook")]
    [TestCase("sharedStrings")]
    [TestCase("sheet")]
    public void ADtdIsRefusedWithoutExpandingEntities(string which)
    {
        string path = Path.Combine(dir, "dtd.xlsx");
        const string dtd = "<?xml version=\"1.0\"?><!DOCTYPE lol [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]>";
        string sheet = Sheet("<row r=\"1\"><c r=\"A1\" t=\"s\"><v>0</v></c></row>");
        string shared = $"<sst xmlns=\"{Ns}\"><si><t>Subject</t></si></sst>";
        Xlsx(path,
            which == "sheet" ? dtd + $"<worksheet xmlns=\"{Ns}\"><sheetData><row r=\"1\"><c r=\"A1\" t=\"inlineStr\"><is><t>&c;</t></is></c></row></sheetData></worksheet>" : sheet,
            which == "sharedStrings" ? dtd + $"<sst xmlns=\"{Ns}\"><si><t>&c;</t></si></sst>" : shared,
            which == "workbook" ? dtd + Workbook[Workbook.IndexOf("<workbook", StringComparison.Ordinal)..] : Workbook);
        var ex = Refused(path);
        Assert.That(ex.Message, Does.Contain("DTD"));
    }

    [Test]
    public void ARowNumberOutOfRangeIsRefused()
    {
        string path = Path.Combine(dir, "row.xlsx");
        Xlsx(path, Sheet("<row r=\"99999999999\"><c r=\"A1\"><v>1</v></c></row>"));
        Assert.That(Refused(path).Message, Does.Contain("row number"));
    }

    [Test]
    public void ACorruptZipEntryNamesTheFile()
    {
        string path = Path.Combine(dir, "corrupt.xlsx");
        Xlsx(path, Sheet("<row r=\"1\"><c r=\"A1\" t=\"inlineStr\"><is><t>" + new string('q', 5000) + "</t></is></c></row>"));
        var bytes = File.ReadAllBytes(path);
        // Damage the compressed body of the first part (just after its local header and name).
        for (int i = 60; i < 120; i++) bytes[i] ^= 0x5A;
        File.WriteAllBytes(path, bytes);
        Refused(path);
    }
}
