using MicroExpr.Data.Xlsx;

namespace MicroExpr.Tests.Data;

public class XlsxTests
{
    [Test]
    public void WrittenWorkbookReadsBackWithRowNumbers()
    {
        string dir = Directory.CreateTempSubdirectory("xlsx").FullName;
        string path = Path.Combine(dir, "CASME2-coding test.xlsx");
        XlsxWriter.Write(path, [
            ("Sheet1", new List<IReadOnlyList<string>>
            {
                new[] { "Subject", "Filename", "OnsetFrame", "Action Units", "Estimated Emotion" },
                new[] { "01", "EP02_01f", "46", "4+L10", "happiness" },
                new[] { "", "", "", "", "" },
                new[] { "02", "EP03_02", "12.5", "R12 & <b>", "disgust" },
            }),
            ("label", new List<IReadOnlyList<string>> { new[] { "x" } }),
        ]);
        Assert.That(XlsxReader.SheetNames(path), Is.EqualTo(new[] { "Sheet1", "label" }));
        var rows = XlsxReader.ReadSheet(path);
        Assert.That(rows, Has.Count.EqualTo(3), "the empty row is skipped");
        Assert.That(rows[1].Number, Is.EqualTo(2));
        Assert.That(rows[1].Cells, Is.EqualTo(new[] { "1", "EP02_01f", "46", "4+L10", "happiness" }), "'01' is numeric, read back as 1");
        Assert.That(rows[2].Number, Is.EqualTo(4));
        Assert.That(rows[2][2], Is.EqualTo("12.5"));
        Assert.That(rows[2][3], Is.EqualTo("R12 & <b>"));
        Assert.That(XlsxReader.ReadSheet(path, "LABEL")[0][0], Is.EqualTo("x"));
        Directory.Delete(dir, true);
    }

    [Test]
    public void NotAWorkbookSaysWhichFile()
    {
        string path = Path.GetTempFileName();
        File.WriteAllText(path, "Subject,Filename\n");
        var ex = Assert.Throws<InvalidDataException>(() => XlsxReader.ReadSheet(path))!;
        Assert.That(ex.Message, Does.Contain(path).And.Contain("not an .xlsx"));
        File.Delete(path);
        var missing = Assert.Throws<FileNotFoundException>(() => XlsxReader.ReadSheet(path))!;
        Assert.That(missing.Message, Does.Contain(path));
    }

    [TestCase("A1", 0)]
    [TestCase("Z9", 25)]
    [TestCase("AA3", 26)]
    [TestCase("BC12", 54)]
    public void ColumnNamesRoundTrip(string reference, int index)
    {
        Assert.That(XlsxReader.ColumnIndex(reference), Is.EqualTo(index));
        Assert.That(XlsxWriter.ColumnName(index), Is.EqualTo(new string(reference.TakeWhile(char.IsLetter).ToArray())));
    }
}
