using MicroExpr.Data.Frames;
using OpenCvSharp;

namespace MicroExpr.Data.Faces;

/// <summary>A face found by landmarks: the 68 points (image pixels) and the dlib-style box they were predicted in.</summary>
public sealed record FaceLandmarks(Point2d[] Points, DlibRect Box);

/// <summary>
/// Haar cascade → the kind of box dlib's 68-point model was trained on (its HOG detector's) → landmarks, refined once:
/// <list type="number">
/// <item>the largest Haar detection (x, y, w, h) on the equalised grey frame (<see cref="FaceDetector.DetectLargest"/>);</item>
/// <item>mapped to a dlib box by a fitted scale and offset (<see cref="HaarToDlib"/>);</item>
/// <item>landmarks predicted in that box; then the box the model's mean shape fits those landmarks best (least-squares
/// scale and translation of the box-normalised mean shape) and the landmarks predicted again in it;</item>
/// <item>a check that the points make a face (<see cref="Sensible"/>): otherwise <see cref="FaceNotFoundException"/>
/// naming the frame, never a crop at a wrong place.</item>
/// </list>
/// </summary>
public static class LandmarkFaceFinder
{
    /// <summary>
    /// dlib-box side = <see cref="HaarScale"/>·w and centre = Haar centre + (<see cref="HaarOffsetX"/>, <see cref="HaarOffsetY"/>)·w,
    /// the means over 19 synthetic faces (subjects 1–24, 200 px, seed 11: those both detectors found; standard deviations 0.047,
    /// 0.027, 0.023) between OpenCV's haarcascade_frontalface_default (largest raw box) and dlib 19.24's HOG frontal face
    /// detector on the same grey images (inputs: LandmarkFaceTests.HaarToDlibFitInputs; dlib: tools/dlib-landmarks-ref --detect).
    /// The refinement step makes the landmarks insensitive to a few % error here.
    /// </summary>
    public const double HaarScale = 0.88, HaarOffsetX = 0.0, HaarOffsetY = 0.08;

    /// <summary>The dlib-style box (inclusive corners) for a Haar box.</summary>
    public static DlibRect HaarToDlib(Rect haar)
    {
        double w = haar.Width;
        double cx = haar.X + haar.Width / 2.0 + HaarOffsetX * w, cy = haar.Y + haar.Height / 2.0 + HaarOffsetY * w;
        // dlib's boxes: (right − left) is the side the shape is normalised by
        int s = Math.Max(1, (int)Math.Round(HaarScale * w));
        int l = (int)Math.Round(cx - s / 2.0), t = (int)Math.Round(cy - s / 2.0);
        return new DlibRect(l, t, l + s, t + s);
    }

    /// <summary>The box in which the model's mean shape fits <paramref name="points"/> best (scale and translation only).</summary>
    public static DlibRect BoxFromLandmarks(ShapePredictor model, IReadOnlyList<Point2d> points)
    {
        var m = model.MeanShape();
        double mx = m.Average(q => q.X), my = m.Average(q => q.Y), px = points.Average(q => q.X), py = points.Average(q => q.Y);
        double num = 0, den = 0;
        for (int i = 0; i < m.Length; i++)
        {
            num += (m[i].X - mx) * (points[i].X - px) + (m[i].Y - my) * (points[i].Y - py);
            den += (m[i].X - mx) * (m[i].X - mx) + (m[i].Y - my) * (m[i].Y - my);
        }
        double s = num / den; // box side (right - left) in pixels
        int l = (int)Math.Round(px - s * mx), t = (int)Math.Round(py - s * my), side = Math.Max(1, (int)Math.Round(s));
        return new DlibRect(l, t, l + side, t + side);
    }

    /// <summary>Landmarks on <paramref name="frame"/> (BGR, BGRA or grey). Throws <see cref="FaceNotFoundException"/> when no face or no sensible landmarks are found.</summary>
    public static FaceLandmarks Find(Mat frame, string cascadePath, ShapePredictor model, string? frameName = null)
    {
        var haar = FaceDetector.DetectLargest(frame, cascadePath, frameName);
        using var grey = FaceDetector.ToGray(frame);
        using var g8 = new Mat();
        grey.ConvertTo(g8, MatType.CV_8U);
        var box = HaarToDlib(haar);
        var first = model.Predict(g8, box);
        var refined = BoxFromLandmarks(model, first);
        var points = model.Predict(g8, refined);
        string? why = Sensible(points, refined, frame.Cols, frame.Rows);
        if (why != null)
            throw new FaceNotFoundException($"no sensible landmarks in {frameName ?? "the frame"} ({why}); use --face haar or --face none");
        return new FaceLandmarks(points, refined);
    }

    /// <summary>Null when the 68 points look like a face in <paramref name="box"/> inside a W×H image, else the reason.</summary>
    public static string? Sensible(IReadOnlyList<Point2d> p, DlibRect box, int width, int height)
    {
        if (p.Count != 68) return $"{p.Count} points, expected 68";
        double side = box.Width;
        foreach (var q in p)
            if (!(q.X > -0.25 * side && q.X < width + 0.25 * side && q.Y > -0.25 * side && q.Y < height + 0.25 * side))
                return "points far outside the image";
        var (le, re) = FaceCrops.EyeCentres(p);
        double eyes = Math.Sqrt((re.X - le.X) * (re.X - le.X) + (re.Y - le.Y) * (re.Y - le.Y));
        if (!(eyes > 0.2 * side && eyes < 0.8 * side)) return FormattableString.Invariant($"eye distance {eyes:F1} px for a box of {side} px");
        if (!(re.X > le.X)) return "eyes in the wrong order";
        double eyeY = (le.Y + re.Y) / 2;
        if (!(p[30].Y > eyeY && p[57].Y > p[30].Y && p[8].Y > p[57].Y)) return "eyes, nose, mouth and chin not in order from top to bottom";
        return null;
    }
}
