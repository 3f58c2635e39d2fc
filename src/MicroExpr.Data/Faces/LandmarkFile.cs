using System.Globalization;
using System.Text;
using OpenCvSharp;

namespace MicroExpr.Data.Faces;

/// <summary>
/// Per-frame 68-point landmarks of one clip, in a file beside its frames: <c>CLIP_FOLDER/landmarks.csv</c>.
/// <code>
/// frame,x0,y0,x1,y1,…,x67,y67
/// 46,31.204,52.118,…          (one row per frame; frame = the number in the frame's file name, img46.jpg → 46)
/// </code>
/// Points in dlib's 68-point (iBUG 300-W) order, 0-based; coordinates in pixels of the frame image with the top-left
/// pixel's centre at (0, 0) (OpenCV's convention, as <c>warpAffine</c> reads them), written with invariant culture. The
/// synthetic generator writes its true landmark positions here (<see cref="Synthetic.SyntheticClip.Landmarks"/>); any
/// other 68-point detector's output (one row per frame) can be written in the same form for real data, so that
/// <c>--face fdp</c> aligns without dlib. Frames missing from the file fall back to dlib on that frame.
/// Chosen over a JSON document: one row per frame is what per-frame detectors (OpenFace's CSV, dlib scripts) produce
/// and what a spreadsheet opens; over a per-frame file: one file per clip keeps the frame folder listing unchanged.
/// </summary>
public static class LandmarkFile
{
    public const string FileName = "landmarks.csv";
    public const int Points = 68;

    /// <summary>The header row: <c>frame,x0,y0,…,x67,y67</c>.</summary>
    public static string Header { get; } = "frame," + string.Join(",", Enumerable.Range(0, Points).Select(i => $"x{i},y{i}"));

    /// <summary>Writes the rows (frame number, its 68 points) to <paramref name="path"/>.</summary>
    public static void Write(string path, IEnumerable<(int Frame, IReadOnlyList<Point2d> Points)> rows)
    {
        var sb = new StringBuilder();
        sb.Append(Header).Append('\n');
        foreach (var (frame, p) in rows)
        {
            if (p.Count != Points) throw new ArgumentException($"{path}: frame {frame} has {p.Count} landmarks; the file holds {Points}");
            sb.Append(frame.ToString(CultureInfo.InvariantCulture));
            foreach (var q in p) sb.Append(',').Append(q.X.ToString("0.###", CultureInfo.InvariantCulture)).Append(',').Append(q.Y.ToString("0.###", CultureInfo.InvariantCulture));
            sb.Append('\n');
        }
        File.WriteAllText(path, sb.ToString());
    }

    /// <summary>
    /// Reads a landmarks file: frame number → its 68 points. Throws <see cref="InvalidDataException"/> naming the file, the
    /// row (1-based, the header is row 1) and the field for a wrong header, a short row, a value that is not a finite
    /// number, or a frame listed twice.
    /// </summary>
    public static Dictionary<int, Point2d[]> Read(string path)
    {
        var lines = File.ReadAllLines(path);
        if (lines.Length == 0 || lines[0].Trim() != Header)
            throw new InvalidDataException($"{path}: row 1: the header must be '{Header[..Math.Min(Header.Length, 30)]}…,x67,y67' (frame then x, y of dlib's 68 points)");
        var result = new Dictionary<int, Point2d[]>();
        for (int r = 1; r < lines.Length; r++)
        {
            string line = lines[r].Trim();
            if (line.Length == 0) continue;
            var f = line.Split(',');
            if (f.Length != 1 + 2 * Points)
                throw new InvalidDataException($"{path}: row {r + 1}: {f.Length} fields, expected {1 + 2 * Points} (frame, then x, y of 68 points)");
            if (!int.TryParse(f[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out int frame))
                throw new InvalidDataException($"{path}: row {r + 1}: field 'frame' is '{f[0]}', not a frame number");
            var pts = new Point2d[Points];
            for (int i = 0; i < Points; i++)
                pts[i] = new Point2d(Value(f[1 + 2 * i], $"x{i}"), Value(f[2 + 2 * i], $"y{i}"));
            if (!result.TryAdd(frame, pts)) throw new InvalidDataException($"{path}: row {r + 1}: frame {frame} is listed twice");

            double Value(string s, string field) =>
                double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v)
                    ? v
                    : throw new InvalidDataException($"{path}: row {r + 1}: field '{field}' is '{s}', not a finite number");
        }
        return result;
    }
}
