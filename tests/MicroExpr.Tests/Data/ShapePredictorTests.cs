using System.Globalization;
using MicroExpr.Data.Faces;
using NUnit.Framework;

namespace MicroExpr.Tests.Data;

/// <summary>
/// The dlib model reader and the cascade on small models written here in dlib's encoding (no package needed), plus the
/// reader's errors on the real model cut short or altered.
/// </summary>
[TestFixture]
public class ShapePredictorTests
{
    /// <summary>dlib's serialisation (serialize.h), enough to write a shape_predictor.</summary>
    sealed class DlibWriter
    {
        public readonly List<byte> Bytes = [];

        public DlibWriter Unsigned(ulong v)
        {
            var b = new List<byte>();
            do { b.Add((byte)(v & 0xFF)); v >>= 8; } while (v != 0);
            Bytes.Add((byte)b.Count);
            Bytes.AddRange(b);
            return this;
        }

        public DlibWriter Signed(long v)
        {
            ulong m = (ulong)Math.Abs(v);
            var b = new List<byte>();
            do { b.Add((byte)(m & 0xFF)); m >>= 8; } while (m != 0);
            Bytes.Add((byte)(b.Count | (v < 0 ? 0x80 : 0)));
            Bytes.AddRange(b);
            return this;
        }

        /// <summary>float_details: v = mantissa·2^exponent with a 24-bit mantissa (exact for every finite float).</summary>
        public DlibWriter Float(float v)
        {
            if (v == 0) return Signed(0).Signed(0);
            int e = (int)Math.Floor(Math.Log2(Math.Abs(v))) - 23;
            long m = (long)Math.Round(v / Math.Pow(2, e));
            Assert.That(m * Math.Pow(2, e), Is.EqualTo((double)v), "float encoding in the test writer");
            return Signed(m).Signed(e);
        }

        public DlibWriter Column(params float[] v)
        {
            Signed(-v.Length).Signed(-1);
            foreach (var x in v) Float(x);
            return this;
        }
    }

    /// <summary>
    /// A 2-part model with one level of one depth-1 tree: feature pixels 0 and 1 anchored on parts 0 and 1 with offsets
    /// (0, 0) and (0.5, 0); split: value[0] − value[1] &gt; 10 → leaf 0 (shape += 0.1 on every coordinate), else leaf 1
    /// (−0.1 on x of part 0 only).
    /// </summary>
    static byte[] TinyModel(bool badLeafCount = false)
    {
        var w = new DlibWriter();
        w.Signed(1);                                   // version
        w.Column(0.25f, 0.5f, 0.5f, 0.5f);             // initial_shape: parts (0.25, 0.5), (0.5, 0.5)
        w.Unsigned(1).Unsigned(1);                     // 1 level, 1 tree
        w.Unsigned(1).Unsigned(0).Unsigned(1).Float(10f); // 1 split: idx1 0, idx2 1, thresh 10
        w.Unsigned(badLeafCount ? 3UL : 2UL);
        w.Column(0.1f, 0.1f, 0.1f, 0.1f).Column(-0.1f, 0, 0, 0);
        if (badLeafCount) w.Column(0, 0, 0, 0);
        w.Unsigned(1).Unsigned(2).Unsigned(0).Unsigned(1);            // anchor_idx: [[0, 1]]
        w.Unsigned(1).Unsigned(2).Float(0).Float(0).Float(0.5f).Float(0);   // deltas: [[(0, 0), (0.5, 0)]]
        return [.. w.Bytes];
    }

    [Test]
    public void TinyModelWalksTheTreeOnPixelDifferencesInTheBox()
    {
        var model = ShapePredictor.Parse(TinyModel(), "tiny");
        Assert.That(model.Parts, Is.EqualTo(2));
        Assert.That(model.Levels, Is.EqualTo(1));
        // 40x20 image, box (10, 0)-(30, 20): box-normalised (u, v) → (10 + 20u, 20v).
        // Feature 0 at part 0: (0.25, 0.5) → pixel (15, 10); feature 1 at part 1 + (0.5, 0): (1.0, 0.5) → (30, 10).
        var img = new byte[40 * 20];
        var box = new DlibRect(10, 0, 30, 20);
        img[10 * 40 + 15] = 100; img[10 * 40 + 30] = 50;       // 100 − 50 > 10 → leaf 0
        var p = model.Predict(img, 40, 20, box);
        Assert.That(p[0].X, Is.EqualTo(10 + 20 * (0.25f + 0.1f)).Within(1e-5));
        Assert.That(p[0].Y, Is.EqualTo(20 * (0.5f + 0.1f)).Within(1e-5));
        Assert.That(p[1].X, Is.EqualTo(10 + 20 * (0.5f + 0.1f)).Within(1e-5));
        img[10 * 40 + 30] = 95;                                  // 100 − 95 ≤ 10 → leaf 1
        p = model.Predict(img, 40, 20, box);
        Assert.That(p[0].X, Is.EqualTo(10 + 20 * (0.25f - 0.1f)).Within(1e-5));
        Assert.That(p[0].Y, Is.EqualTo(10).Within(1e-5));
        Assert.That(p[1].X, Is.EqualTo(20).Within(1e-5));
        // A box moved right: feature 0 at (25, 10), feature 1 at (40, 10) outside the image reads 0: 100 − 0 > 10 → leaf 0.
        img[10 * 40 + 25] = 100;
        p = model.Predict(img, 40, 20, new DlibRect(20, 0, 40, 20));
        Assert.That(p[1].X, Is.EqualTo(20 + 20 * (0.5f + 0.1f)).Within(1e-5));
    }

    [Test]
    public void TruncatedTinyModelNamesTheFileAndTheField()
    {
        var bytes = TinyModel();
        for (int cut = 0; cut < bytes.Length; cut++)
        {
            var ex = Assert.Throws<DlibFormatException>(() => ShapePredictor.Parse(bytes.AsSpan(0, cut), "tiny.dat"), $"cut at {cut}");
            Assert.That(ex!.Message, Does.StartWith("tiny.dat: "));
            Assert.That(ex.Message, Does.Contain(cut == 0 ? "empty file" : "truncated"), ex.Message);
            Assert.That(ex.Message, Does.Not.Contain('\n'));
        }
    }

    [Test]
    public void ForeignAndCorruptFilesAreRefusedWithTheReason()
    {
        var text = System.Text.Encoding.ASCII.GetBytes("P5\n40 20\n255\n");
        var ex = Assert.Throws<DlibFormatException>(() => ShapePredictor.Parse(text, "face.pgm"));
        Assert.That(ex!.Message, Does.Contain("face.pgm").And.Contain("not a dlib integer"));

        var wrongVersion = TinyModel();
        wrongVersion[1] = 2;
        ex = Assert.Throws<DlibFormatException>(() => ShapePredictor.Parse(wrongVersion, "v2.dat"));
        Assert.That(ex!.Message, Does.Contain("not a dlib shape_predictor (version 2, expected 1)"));

        ex = Assert.Throws<DlibFormatException>(() => ShapePredictor.Parse(TinyModel(badLeafCount: true), "leaves.dat"));
        Assert.That(ex!.Message, Does.Contain("level 0 tree 0").And.Contain("1 splits and 3 leaves"), ex.Message);

        var badAnchor = TinyModel();
        // anchor_idx [[0, 1]] → [[0, 7]]: the byte after "count 2, 0, 1-byte control" is the second anchor.
        int at = FindAnchorBytes(badAnchor);
        badAnchor[at] = 7;
        ex = Assert.Throws<DlibFormatException>(() => ShapePredictor.Parse(badAnchor, "anchor.dat"));
        Assert.That(ex!.Message, Does.Contain("anchor_idx 1 of level 0: part 7, the model has 2"));
    }

    /// <summary>Offset of the second anchor's value byte in <see cref="TinyModel"/> (01 01 | 01 02 | 01 00 | 01 01).</summary>
    static int FindAnchorBytes(byte[] b)
    {
        byte[] pattern = [1, 1, 1, 2, 1, 0, 1, 1];
        for (int i = b.Length - pattern.Length; i >= 0; i--)
            if (b.AsSpan(i, pattern.Length).SequenceEqual(pattern)) return i + 7;
        throw new AssertionException("anchor bytes not found in the tiny model");
    }

    [Test]
    public void MissingModelSaysWhichPackageInstallsIt()
    {
        var ex = Assert.Throws<FileNotFoundException>(() => ShapePredictor.Load("/nonexistent/shape_predictor_68_face_landmarks.dat"));
        Assert.That(ex!.Message, Does.Contain("/nonexistent/shape_predictor_68_face_landmarks.dat").And.Contain("libdlib-data"));
    }

    [Test]
    public void RealModelCutShortOrAlteredGivesAClearError()
    {
        LandmarkReferenceTests.RequireInputs(ShapePredictor.DebianModelPath);
        var bytes = File.ReadAllBytes(ShapePredictor.DebianModelPath);
        foreach (int cut in new[] { 1, 100, 1000, bytes.Length / 2, bytes.Length - 1 })
        {
            var ex = Assert.Throws<DlibFormatException>(() => ShapePredictor.Parse(bytes.AsSpan(0, cut), "cut.dat"));
            Assert.That(ex!.Message, Does.StartWith("cut.dat: truncated"), ex.Message);
        }
        var altered = (byte[])bytes.Clone();
        altered[0] = 0x7A; // 'z': not a control byte
        var e2 = Assert.Throws<DlibFormatException>(() => ShapePredictor.Parse(altered, "altered.dat"));
        Assert.That(e2!.Message, Does.Contain("shape_predictor version").And.Contain("not a dlib integer"));
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        var model = ShapePredictor.Parse(bytes, ShapePredictor.DebianModelPath);
        TestContext.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"parsed {bytes.Length / 1e6:F1} MB in {System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMilliseconds:F0} ms"));
        Assert.That((model.Parts, model.Levels, model.Trees), Is.EqualTo((68, 15, 7500)));
    }
}
