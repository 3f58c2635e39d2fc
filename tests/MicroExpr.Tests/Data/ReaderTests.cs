using MicroExpr.Data.Annotations;
using MicroExpr.Data.Frames;
using MicroExpr.Data.Xlsx;
using static MicroExpr.Tests.Data.DataFixtures;

namespace MicroExpr.Tests.Data;

public class ReaderTests
{
    static string Casme2Root()
    {
        string root = TempDir("casme2");
        WriteClip(Path.Combine(root, "sub01", "EP02_01f"), 10, first: 40, ext: ".jpg");
        WriteClip(Path.Combine(root, "sub02", "EP03_02"), 10, first: 1, ext: ".jpg");
        WriteClip(Path.Combine(root, "sub11", "EP01_01"), 6, first: 1, ext: ".jpg");
        Xlsx(Path.Combine(root, "CASME2-coding-20140508.xlsx"),
            ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion"],
            ["01", "EP02_01f", "40", "44", "49", "4+L10", "happiness"],       // row 2 ok, subject "01"
            ["sub02", "EP03_02", "1", "5", "10", "R12", "Disgust"],           // row 3 ok, subject "sub02"
            ["11", "EP01_01", "1", "/", "6", "4", "repression"],              // row 4 ok, apex unknown
            ["2", "EP03_02", "1", "5", "10", "4", "fear"],                    // row 5 label outside mapping
            ["2", "EP03_02", "2", "9", "5", "4", "others"],                   // row 6 apex outside onset..offset (and offset < apex)
            ["3", "EP09_09", "1", "2", "3", "4", "others"],                   // row 7 missing folder
            ["1", "EP02_01f", "40", "44", "70", "4", "surprise"],             // row 8 offset frame not there
            ["1", "EP02_01f", "x", "44", "49", "4", "surprise"]);             // row 9 bad number
        return root;
    }

    [Test]
    public void Casme2ReadsRowsAndListsEverySkip()
    {
        string root = Casme2Root();
        var list = Casme2Reader.Read(root); // the coding file is found in ROOT
        Assert.That(list.Clips.Select(c => (c.Subject, c.Clip, c.LabelName)), Is.EqualTo(new[]
        {
            ("sub01", "EP02_01f", "happiness"), ("sub02", "EP03_02", "disgust"), ("sub11", "EP01_01", "repression"),
        }));
        Assert.That(list.Clips[0].Onset, Is.EqualTo(40));
        Assert.That(list.Clips.Select(c => c.ActionUnits), Is.EqualTo(new[] { "4+L10", "R12", "4" }), "the Action Units column, as written");
        Assert.That(list.Warnings, Is.Empty);
        Assert.That(list.Clips[2].Apex, Is.EqualTo(-1), "'/' is an unknown apex");
        var skipped = list.Skipped.ToDictionary(s => s.Row, s => s.Reason);
        Assert.That(skipped.Keys, Is.EquivalentTo(new[] { 5, 6, 7, 8, 9 }));
        Assert.That(skipped[5], Does.Contain("outside the mapping"));
        Assert.That(skipped[6], Does.Contain("apex 9 outside onset..offset"));
        Assert.That(skipped[7], Does.Contain("missing frames"));
        Assert.That(skipped[8], Does.Contain("offset frame 70"));
        Assert.That(skipped[9], Does.Contain("not a frame number"));
        Assert.That(list.Skipped.All(s => s.File.EndsWith("CASME2-coding-20140508.xlsx", StringComparison.Ordinal)));
        string summary = list.Summary();
        Assert.That(summary, Does.Contain("3 clips").And.Contain("happiness 1").And.Contain("sub11 1").And.Contain("row 5"));

        var three = Casme2Reader.Read(root, null, ClassScheme.Three);
        Assert.That(three.Clips.Select(c => c.LabelName), Is.EqualTo(new[] { "positive", "negative", "negative" }));
        Directory.Delete(root, true);
    }

    [Test]
    public void AnUnparsableActionUnitCodeIsReportedWithFileRowAndValueAndTheClipKeepsItsLabel()
    {
        string root = TempDir("casme2-au");
        WriteClip(Path.Combine(root, "sub01", "EP01_01"), 6, first: 1, ext: ".jpg");
        WriteClip(Path.Combine(root, "sub02", "EP01_02"), 6, first: 1, ext: ".jpg");
        string file = Path.Combine(root, "CASME2-coding-test.xlsx");
        Xlsx(file,
            ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion"],
            ["1", "EP01_01", "1", "3", "6", "4+X7", "disgust"],
            ["2", "EP01_02", "1", "3", "6", "", "happiness"]);
        var list = Casme2Reader.Read(root, file);
        Assert.That(list.Clips.Select(c => (c.Clip, c.LabelName, c.ActionUnits)), Is.EqualTo(new[] { ("EP01_01", "disgust", "4+X7"), ("EP01_02", "happiness", "") }));
        Assert.That(list.Skipped, Is.Empty);
        var w = list.Warnings.Single();
        Assert.That(w.ToString(), Does.Contain(file).And.Contain("row 2").And.Contain("Action Units '4+X7'").And.Contain("'X7' is not an action unit").And.Contain("kept"));
        Assert.That(list.Summary(), Does.Contain("1 warnings").And.Contain("row 2"));
        Directory.Delete(root, true);
    }

    [Test]
    public void Casme2WithoutCodingFileSaysWhatToGive()
    {
        string root = TempDir("casme2-empty");
        var ex = Assert.Throws<FileNotFoundException>(() => Casme2Reader.Read(root))!;
        Assert.That(ex.Message, Does.Contain("CASME2-coding-*.xlsx").And.Contain("--annotations"));
        Directory.Delete(root, true);
    }

    [Test]
    public void SammFindsAHeaderBelowTitleRowsAndAcceptsUnknownApexOffset()
    {
        string root = TempDir("samm");
        WriteClip(Path.Combine(root, "006", "006_1_2"), 8, first: 5562, prefix: "006_", numberFormat: "00000", ext: ".jpg");
        WriteClip(Path.Combine(root, "011", "011_2_1"), 8, first: 100, prefix: "011_", numberFormat: "00000", ext: ".jpg");
        string file = Path.Combine(root, "SAMM_Micro_FACS_Codes_v2.xlsx");
        Xlsx(file,
            ["SAMM micro-movement FACS codes"],
            ["Onset and offset are frame numbers"],
            ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration", "Type", "Action Units", "Estimated Emotion", "Objective Classes", "Notes"],
            ["6", "006_1_2", "1", "5562", "-1", "5569", "8", "Micro - 1/2", "4", "Anger", "3", ""],
            ["011", "011_2_1", "2", "100", "", "", "", "Micro - 1/2", "R14A+12", "Happiness", "1", ""],
            ["6", "006_1_2", "1", "5562", "5564", "5569", "8", "Micro - 1/2", "4", "Sadness", "6", ""]);
        var list = SammReader.Read(root);
        Assert.That(list.Clips, Has.Count.EqualTo(2));
        Assert.That(list.Clips[0].Subject, Is.EqualTo("006"));
        Assert.That(list.Clips[0].Apex, Is.EqualTo(-1));
        Assert.That(list.Clips[1].Offset, Is.EqualTo(-1), "blank offset is unknown");
        Assert.That(list.Clips.Select(c => c.ActionUnits), Is.EqualTo(new[] { "4", "R14A+12" }), "intensity letters kept as written");
        Assert.That(list.Skipped.Single().Row, Is.EqualTo(6), "row numbers count the title rows");
        Assert.That(list.Skipped.Single().Reason, Does.Contain("'Sadness' outside the mapping"));
        var three = SammReader.Read(root, file, ClassScheme.Three);
        Assert.That(three.Clips.Select(c => c.LabelName), Is.EqualTo(new[] { "negative", "positive", "negative" }));
        Directory.Delete(root, true);
    }

    [Test]
    public void SammWithoutHeaderNamesTheColumns()
    {
        string root = TempDir("samm-bad");
        string file = Path.Combine(root, "SAMM_Micro_FACS_Codes.xlsx");
        Xlsx(file, ["Subj", "File"], ["6", "006_1_2"]);
        var ex = Assert.Throws<InvalidDataException>(() => SammReader.Read(root, file))!;
        Assert.That(ex.Message, Does.Contain(file).And.Contain("Onset Frame"));
        Directory.Delete(root, true);
    }

    [Test]
    public void SmicFromFoldersAndFromSheet()
    {
        string root = TempDir("smic");
        WriteClip(Path.Combine(root, "s1", "negative", "s1_ne_01"), 6, prefix: "image", numberFormat: "000000", ext: ".bmp");
        WriteClip(Path.Combine(root, "s1", "surprise", "s1_sur_01"), 6, first: 200, prefix: "image", numberFormat: "000000", ext: ".bmp");
        WriteClip(Path.Combine(root, "s12", "positive", "s12_po_03"), 6, prefix: "image", numberFormat: "000000", ext: ".bmp");
        Directory.CreateDirectory(Path.Combine(root, "s12", "positive", "s12_po_04")); // no frames
        var list = SmicReader.Read(root);
        Assert.That(list.Clips.Select(c => (c.Subject, c.LabelName)), Is.EqualTo(new[] { ("s1", "negative"), ("s1", "surprise"), ("s12", "positive") }));
        Assert.That(list.Skipped.Single().Reason, Does.Contain("missing frames"));

        string sheet = Path.Combine(root, "SMIC-HS.xlsx");
        Xlsx(sheet,
            ["Subject", "Filename", "OnsetF", "OffsetF", "Emotion", "FirstF"],
            ["1", "s1_ne_01", "2", "5", "ne", "1"],
            ["1", "s1_sur_01", "2", "4", "sur", "200"],     // counted from FirstF: 201..203
            ["12", "s12_po_03", "1", "9", "po", "1"]);      // offset frame 9 is not there
        var fromSheet = SmicReader.Read(root, sheet);
        Assert.That(fromSheet.Clips.Select(c => (c.Clip, c.Onset, c.Offset)), Is.EqualTo(new[] { ("s1_ne_01", 2, 5), ("s1_sur_01", 201, 203) }));
        Assert.That(fromSheet.Skipped.Single().Row, Is.EqualTo(4));
        Directory.Delete(root, true);
    }

    [Test]
    public void Casme3ReadsTheLabelSheet()
    {
        string root = TempDir("casme3");
        WriteClip(Path.Combine(root, "spNO.1", "b", "color"), 12, first: 170, prefix: "", ext: ".jpg");
        string file = Path.Combine(root, "cas(me)3_part_A_ME_label.xlsx");
        XlsxWriter.Write(file, [
            ("notes", new List<IReadOnlyList<string>> { new[] { "readme" } }),
            ("label", new List<IReadOnlyList<string>>
            {
                new[] { "Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion" },
                new[] { "spNO.1", "b", "172", "175", "180", "L4", "1", "disgust" },
                new[] { "spNO.1", "b", "170", "171", "174", "12", "2", "happy" },
                new[] { "spNO.1", "c", "1", "2", "3", "12", "2", "happy" },
                new[] { "spNO.1", "b", "170", "190", "175", "12", "2", "happy" },
            }),
        ]);
        var list = Casme3Reader.Read(root, file);
        Assert.That(list.Clips.Select(c => (c.Clip, c.LabelName)), Is.EqualTo(new[] { ("b_172", "negative"), ("b_170", "positive") }));
        Assert.That(list.Clips[0].Path, Does.EndWith(Path.Combine("spNO.1", "b", "color")));
        Assert.That(list.Clips.Select(c => c.ActionUnits), Is.EqualTo(new[] { "L4", "12" }), "the AU column");
        Assert.That(list.Skipped.Select(s => s.Row), Is.EqualTo(new[] { 4, 5 }));
        Assert.That(list.Skipped[1].Reason, Does.Contain("apex 190 outside"));
        Directory.Delete(root, true);
    }

    [Test]
    public void CompositePrefixesSubjectsAndMapsToThreeClasses()
    {
        string root = TempDir("composite");
        string casme = Path.Combine(root, "CASME2_RAW_selected");
        WriteClip(Path.Combine(casme, "sub01", "EP02_01f"), 6, ext: ".jpg");
        WriteClip(Path.Combine(casme, "sub01", "EP03_01"), 6, ext: ".jpg");
        Xlsx(Path.Combine(casme, "CASME2-coding-20190701.xlsx"),
            ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion"],
            ["1", "EP02_01f", "1", "3", "6", "12", "happiness"],
            ["1", "EP03_01", "1", "3", "6", "4", "others"]);
        string samm = Path.Combine(root, "SAMM");
        WriteClip(Path.Combine(samm, "006", "006_1_2"), 6, prefix: "006_", ext: ".jpg");
        Xlsx(Path.Combine(root, "SAMM_Micro_FACS_Codes_v2.xlsx"),
            ["Subject", "Filename", "Onset Frame", "Apex Frame", "Offset Frame", "Estimated Emotion"],
            ["6", "006_1_2", "1", "3", "6", "Contempt"]);
        WriteClip(Path.Combine(root, "SMIC_HS", "s1", "surprise", "s1_sur_01"), 6, prefix: "image", ext: ".bmp");
        var list = CompositeReader.Read(root);
        Assert.That(list.ClassNames, Is.EqualTo(new[] { "negative", "positive", "surprise" }));
        Assert.That(list.Clips.Select(c => (c.Dataset, c.Subject, c.Label)), Is.EqualTo(new[]
        {
            ("casme2", "casme2_sub01", 1), ("samm", "samm_006", 0), ("smic", "smic_s1", 2),
        }));
        Assert.That(list.Skipped.Single().Reason, Does.Contain("'others' outside the mapping"));
        Directory.Delete(root, true);
    }

    [Test]
    public void ManifestWithQuotedPathsIntegerLabelsAndImages()
    {
        string root = TempDir("manifest");
        WriteClip(Path.Combine(root, "clips", "clip one"), 5, prefix: "frame_");
        using (var img = Texture(40, 40, 3)) OpenCvSharp.Cv2.ImWrite(Path.Combine(root, "flow, a.png"), img);
        string csv = Path.Combine(root, "manifest.csv");
        File.WriteAllLines(csv,
        [
            "subject,label,path,dataset,clip,onset,apex,offset",
            "s1,1,\"clips/clip one\",mine,c1,1,3,5",
            "s2,0,\"flow, a.png\",mine,,,,",
            "s3,2,missing/folder,mine,c3,,,",
            "s4,x,\"clips/clip one\",mine,c4,,,",
            "s5,1,\"clips/clip one\",mine,c5,1,9,5",
            "s6,1,\"unclosed,mine",
        ]);
        var list = ManifestReader.Read(csv);
        Assert.That(list.Clips.Select(c => (c.Subject, c.Label, c.Kind)), Is.EqualTo(new[] { ("s1", 1, SourceKind.FrameFolder), ("s2", 0, SourceKind.MotionImage) }));
        Assert.That(list.Clips[1].Clip, Is.EqualTo("flow, a"));
        Assert.That(list.ClassNames, Is.EqualTo(new[] { "0", "1", "2" }));
        var skipped = list.Skipped.ToDictionary(s => s.Row, s => s.Reason);
        Assert.That(skipped.Keys, Is.EquivalentTo(new[] { 4, 5, 6, 7 }));
        Assert.That(skipped[4], Does.Contain("missing frames"));
        Assert.That(skipped[5], Does.Contain("label 'x'"));
        Assert.That(skipped[6], Does.Contain("apex 9 outside"));
        Assert.That(skipped[7], Does.Contain("not closed"));
        Directory.Delete(root, true);
    }

    [Test]
    public void ManifestWithoutRequiredColumnsNamesTheFile()
    {
        string root = TempDir("manifest-bad");
        string csv = Path.Combine(root, "m.csv");
        File.WriteAllText(csv, "subject,path\ns1,x\n");
        var ex = Assert.Throws<InvalidDataException>(() => ManifestReader.Read(csv))!;
        Assert.That(ex.Message, Does.Contain(csv).And.Contain("subject, label and path"));
        Directory.Delete(root, true);
    }

    [Test]
    public void FrameFoldersSortByNumberOrByPosition()
    {
        string dir = TempDir("frames");
        foreach (var n in new[] { "img10.jpg", "img9.jpg", "img100.jpg", "notes.txt" }) File.WriteAllText(Path.Combine(dir, n), "");
        Assert.That(FrameFolder.List(dir).Select(f => f.Number), Is.EqualTo(new[] { 9, 10, 100 }));
        File.WriteAllText(Path.Combine(dir, "cover.jpg"), "");
        Assert.That(FrameFolder.List(dir).Select(f => (f.Number, Path.GetFileName(f.Path))), Is.EqualTo(new[]
        {
            (1, "cover.jpg"), (2, "img9.jpg"), (3, "img10.jpg"), (4, "img100.jpg"),
        }), "a name without a number: positions in natural order");
        Directory.Delete(dir, true);
    }
}
