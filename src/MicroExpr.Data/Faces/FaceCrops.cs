using OpenCvSharp;

namespace MicroExpr.Data.Faces;

/// <summary>
/// Face crops from dlib's 68 landmarks (0-based indices: 8 chin, 19 left brow's middle, 30 nose tip, 36–41 and 42–47 the
/// eyes, 48 and 54 the mouth corners, 57 the lower lip's middle), as the released code of SLSTT and FDP makes them.
/// </summary>
public static class FaceCrops
{
    /// <summary>
    /// SLSTT's square (its released preprocessing): side (y₈ − y₁₉) + (y₈ − y₅₇) centred on the nose tip (landmark 30),
    /// rounded to whole pixels; computed once, on the apex frame, and cut from every frame of the clip. The square may
    /// reach outside the image: <see cref="FitInside"/> moves it in.
    /// </summary>
    public static Rect SlsttSquare(IReadOnlyList<Point2d> p)
    {
        Check(p);
        double side = (p[8].Y - p[19].Y) + (p[8].Y - p[57].Y);
        if (!(side >= 4)) throw new ArgumentException(FormattableString.Invariant($"landmarks give a face square of side {side:F1} px (chin above brow or lip): not a face"));
        int s = (int)Math.Round(side);
        return new Rect((int)Math.Round(p[30].X - s / 2.0), (int)Math.Round(p[30].Y - s / 2.0), s, s);
    }

    /// <summary>The square moved inside a W×H image (and shrunk about its centre only when the image is smaller).</summary>
    public static Rect FitInside(Rect r, int width, int height)
    {
        int side = Math.Min(r.Width, Math.Min(width, height));
        int x = r.X + (r.Width - side) / 2, y = r.Y + (r.Height - side) / 2;
        return new Rect(Math.Clamp(x, 0, width - side), Math.Clamp(y, 0, height - side), side, side);
    }

    /// <summary>Centre of the left eye (landmarks 36–41, the image's left) and of the right eye (42–47).</summary>
    public static (Point2d Left, Point2d Right) EyeCentres(IReadOnlyList<Point2d> p)
    {
        Check(p);
        Point2d Mean(int from)
        {
            double x = 0, y = 0;
            for (int i = from; i < from + 6; i++) { x += p[i].X; y += p[i].Y; }
            return new Point2d(x / 6, y / 6);
        }
        return (Mean(36), Mean(42));
    }

    /// <summary>
    /// FDP's alignment as a 2×3 affine map image → S×S output (S = 64 by default), as its released code builds it:
    /// rotate about the eyes' midpoint by the eye line's angle (so the eyes are level), take the five points (the eye
    /// centres, nose tip 30, mouth corners 48 and 54) in the rotated frame, centre a square on their bounding box's centre
    /// with half-side 0.5 · 2.5 · max(bounding-box width, height), and scale it to S×S. Returns (A, t) with out = A·p + t.
    /// </summary>
    public static double[,] FdpTransform(IReadOnlyList<Point2d> p, int size = 64)
    {
        var (le, re) = EyeCentres(p);
        double angle = Math.Atan2(re.Y - le.Y, re.X - le.X);
        double cos = Math.Cos(-angle), sin = Math.Sin(-angle);
        var c = new Point2d((le.X + re.X) / 2, (le.Y + re.Y) / 2);
        Point2d Rot(Point2d q) => new(c.X + cos * (q.X - c.X) - sin * (q.Y - c.Y), c.Y + sin * (q.X - c.X) + cos * (q.Y - c.Y));
        Point2d[] five = [Rot(le), Rot(re), Rot(p[30]), Rot(p[48]), Rot(p[54])];
        double x0 = five.Min(q => q.X), x1 = five.Max(q => q.X), y0 = five.Min(q => q.Y), y1 = five.Max(q => q.Y);
        double half = 0.5 * 2.5 * Math.Max(x1 - x0, y1 - y0);
        if (!(half > 1)) throw new ArgumentException(FormattableString.Invariant($"landmarks give an FDP box of half-side {half:F2} px: not a face"));
        double cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
        double k = size / (2 * half);
        // out = k·(R(q − c) + c − (cx − half, cy − half))
        double a00 = k * cos, a01 = -k * sin, a10 = k * sin, a11 = k * cos;
        double t0 = k * (c.X - cos * c.X + sin * c.Y - (cx - half));
        double t1 = k * (c.Y - sin * c.X - cos * c.Y - (cy - half));
        return new double[,] { { a00, a01, t0 }, { a10, a11, t1 } };
    }

    /// <summary>FDP's aligned face: <see cref="FdpTransform"/> applied with bilinear warpAffine, constant border 128, to the grey of <paramref name="frame"/>; an S×S 8-bit Mat.</summary>
    public static Mat FdpAlign(Mat frame, IReadOnlyList<Point2d> landmarks, int size = 64)
    {
        using var grey = Frames.FaceDetector.ToGray(frame);
        return FdpWarp(grey, landmarks, size);
    }

    /// <summary><see cref="FdpTransform"/> applied to <paramref name="frame"/> as it is (grey or colour): bilinear warpAffine to S×S, constant border 128 in every channel.</summary>
    public static Mat FdpWarp(Mat frame, IReadOnlyList<Point2d> landmarks, int size = 64)
    {
        var m = FdpTransform(landmarks, size);
        using var mm = new Mat(2, 3, MatType.CV_64FC1);
        for (int r = 0; r < 2; r++)
            for (int col = 0; col < 3; col++) mm.Set(r, col, m[r, col]);
        var dst = new Mat();
        Cv2.WarpAffine(frame, dst, mm, new Size(size, size), InterpolationFlags.Linear, BorderTypes.Constant, new Scalar(128, 128, 128, 128));
        return dst;
    }

    static void Check(IReadOnlyList<Point2d> p)
    {
        if (p.Count != 68) throw new ArgumentException($"face crops need dlib's 68 landmarks, got {p.Count} points");
    }
}
