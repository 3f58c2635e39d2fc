using System.Globalization;
using MicroExpr.Data.Faces;
using MicroExpr.Data.Synthetic;
using OpenCvSharp;

namespace MicroExpr.Tests.Data;

/// <summary>
/// The fixed inputs on which ShapePredictor is compared with dlib itself (tools/dlib-landmarks-ref): 8-bit grey images the
/// tests rebuild deterministically (procedural faces of the synthetic generator; faces in an image that Debian's
/// opencv-doc ships, read from the package's path, never copied into the repository) and explicit face boxes (dlib's
/// inclusive corners). The boxes are the ones dlib's HOG detector returned (tools/dlib-landmarks-ref --detect), plus a
/// shifted one and a tight one from the synthetic face's drawn geometry (brow to chin).
/// <see cref="LandmarkReferenceTests.WriteReferenceInputs"/> writes them as PGMs for the C++ reference.
/// </summary>
internal static class LandmarkCases
{
    /// <summary>Debian's opencv-doc: OpenCV's example image with one face.</summary>
    public const string Messi = "/usr/share/doc/opencv-doc/examples/data/messi5.jpg";

    public sealed record Case(string Name, byte[] Grey, int Width, int Height, DlibRect Box);

    public static IReadOnlyList<Case> All()
    {
        var cases = new List<Case>();
        // Boxes: dlib's HOG detector on these images (s1 only on the image doubled: (37, 47)-(127, 136.5), rounded).
        foreach (var (subject, size, hog) in new[]
        {
            (1, 160, new DlibRect(37, 47, 127, 137)), (2, 200, new DlibRect(37, 51, 162, 176)),
            (3, 240, new DlibRect(45, 78, 194, 228)), (4, 128, new DlibRect(29, 37, 101, 109)),
        })
        {
            using var face = SyntheticFace.Create(subject, size, seed: 7);
            var (grey, tight) = SyntheticGrey(face);
            cases.Add(new Case($"synthetic-s{subject}-{size}", grey, size, size, hog));
            if (subject == 1) cases.Add(new Case($"synthetic-s{subject}-{size}-tight", grey, size, size, tight));
        }
        // messi5.jpg, 548x342: dlib's HOG finds the face on the image doubled, box (226.5, 94.5)-(262.5, 130.5) mapped back.
        if (!File.Exists(Messi)) throw new FileNotFoundException($"{Messi} not found: install Debian's opencv-doc (apt-get install opencv-doc)", Messi);
        using var bgr = Cv2.ImRead(Messi, ImreadModes.Color);
        using var g = new Mat();
        Cv2.CvtColor(bgr, g, ColorConversionCodes.BGR2GRAY);
        cases.Add(new Case("messi5", Bytes(g), g.Cols, g.Rows, new DlibRect(227, 95, 263, 131)));
        cases.Add(new Case("messi5-shifted", Bytes(g), g.Cols, g.Rows, new DlibRect(223, 98, 265, 140)));
        using var g2 = new Mat();
        Cv2.Resize(g, g2, new Size(g.Cols * 2, g.Rows * 2), 0, 0, InterpolationFlags.Linear);
        cases.Add(new Case("messi5-x2", Bytes(g2), g2.Cols, g2.Rows, new DlibRect(453, 189, 525, 261)));
        return cases;
    }

    /// <summary>The canonical face (lids open) at frame size, grey, and a box from brow to chin around it.</summary>
    static (byte[] Grey, DlibRect Box) SyntheticGrey(SyntheticFace face)
    {
        int s = face.Size;
        using var small = new Mat();
        Cv2.Resize(face.Canonical(0), small, new Size(s, s), 0, 0, InterpolationFlags.Area);
        using var grey = new Mat();
        Cv2.CvtColor(small, grey, ColorConversionCodes.BGR2GRAY);
        using var g8 = new Mat();
        grey.ConvertTo(g8, MatType.CV_8U);
        double top = face.BrowInner[0].Y - 0.3 * (face.Eyes[0].Y - face.BrowInner[0].Y), bottom = face.Chin.Y;
        double half = (bottom - top) / 2, cx = face.Center.X;
        var box = new DlibRect((int)Math.Round(cx - half), (int)Math.Round(top), (int)Math.Round(cx + half), (int)Math.Round(bottom));
        return (Bytes(g8), box);
    }

    public static byte[] Bytes(Mat g)
    {
        var b = new byte[g.Rows * g.Cols];
        using var c = g.Clone(); // continuous
        System.Runtime.InteropServices.Marshal.Copy(c.Data, b, 0, b.Length);
        return b;
    }

    /// <summary>
    /// The committed reference: lines "name i x y" (dlib's sub-pixel points, case by case, 68 each), '#' comments.
    /// </summary>
    public static Dictionary<string, Point2d[]> ReadReference(string path)
    {
        var cases = new Dictionary<string, List<Point2d>>();
        int row = 0;
        foreach (var line in File.ReadLines(path))
        {
            row++;
            if (line.Length == 0 || line[0] == '#') continue;
            var f = line.Split(' ');
            if (f.Length != 4 || !int.TryParse(f[1], CultureInfo.InvariantCulture, out int i)
                || !double.TryParse(f[2], CultureInfo.InvariantCulture, out double x) || !double.TryParse(f[3], CultureInfo.InvariantCulture, out double y))
                throw new InvalidDataException($"{path} row {row}: expected 'name index x y', got '{line}'");
            if (!cases.TryGetValue(f[0], out var pts)) cases[f[0]] = pts = [];
            if (i != pts.Count) throw new InvalidDataException($"{path} row {row}: point {i} of {f[0]} out of order");
            pts.Add(new Point2d(x, y));
        }
        return cases.ToDictionary(kv => kv.Key, kv => kv.Value.ToArray());
    }
}
