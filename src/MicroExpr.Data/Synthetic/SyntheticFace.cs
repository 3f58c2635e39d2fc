using System.Collections.Concurrent;
using OpenCvSharp;

namespace MicroExpr.Data.Synthetic;

/// <summary>
/// One subject of the synthetic set: a procedural face drawn with OpenCV primitives.
/// <para>
/// Identity (all drawn from the subject's own PRNG stream): head ellipse size and position, skin tone, skin texture
/// (fine and blotchy noise fields), lighting direction, hair colour, length and hairline, ears, eye position, size and
/// iris colour, brow position, arch, thickness and colour, nose position and width, mouth position, width, lip
/// thickness and resting curvature, nasolabial folds. Index 0 of the paired landmarks is the image's left side
/// (the subject's right), index 1 the image's right (the subject's left).
/// </para>
/// <para>
/// Rendering: primitives are drawn anti-aliased at 4× the frame size (2× above 512 px), lighting and texture are
/// added in floating point, and the result is area-downsampled to the <see cref="Supersample"/>× canonical image
/// that <see cref="SyntheticClip"/> warps (cv::remap) and downsamples again to the frame size. The only thing
/// re-drawn during a clip is the upper eyelid (blinks); canonical images are cached per lid closure (steps of 0.05).
/// Landmark coordinates are in frame pixels of the unposed (canonical) face.
/// </para>
/// </summary>
public sealed class SyntheticFace : IDisposable
{
    /// <summary>Canonical images are <c>Supersample × Size</c> pixels wide; clips warp them there and area-downsample.</summary>
    public const int Supersample = 2;

    public int Subject { get; }
    public int Size { get; }
    public Point2d Center { get; }
    public double HalfWidth { get; }
    public double HalfHeight { get; }
    public Point2d[] Eyes { get; }
    public double EyeHalfWidth { get; }
    public double EyeHalfHeight { get; }
    public Point2d[] BrowInner { get; }
    public Point2d[] BrowOuter { get; }
    public double BrowArch { get; }
    public double BrowThickness { get; }
    public Point2d NoseRoot { get; }
    public Point2d NoseTip { get; }
    public double NoseHalfWidth { get; }
    public Point2d MouthCenter { get; }
    public Point2d[] MouthCorners { get; }
    public double MouthHalfWidth { get; }
    public Point2d UpperLip { get; }
    public Point2d LowerLip { get; }
    public Point2d Chin { get; }

    /// <summary>
    /// The face's 68 landmarks in dlib's (iBUG 300-W) order, 0-based, in frame pixels of the canonical face: 0–16 the jaw
    /// (the head ellipse from the image-left temple at eye level round the chin, 8 at its bottom), 17–21 and 22–26 the brows
    /// (outer → inner on the image left, inner → outer on the right, on the drawn arch), 27–30 the nose bridge (root →
    /// tip), 31–35 the nostrils, 36–41 and 42–47 the eyes (corner, two upper-lid, corner, two lower-lid points on the
    /// eye's ellipse, so each eye's six points average to its centre, the pupil), 48–59 the outer lips (48 and 54 the
    /// corners, 51 the upper lip's top, 57 the lower lip's bottom), 60–67 the inner lips. The lid points mark the eye at
    /// rest and do not follow blinks (a choice: FDP aligns on the eye centres, which a blink should not move; a fitted
    /// detector would follow the lid). <see cref="SyntheticClip.Landmarks"/> poses them per frame.
    /// </summary>
    public Point2d[] Landmarks { get; }

    /// <summary>
    /// Where a point drawn at nominal coordinate x shows in the frame: x + <see cref="ImageOffset"/>, in both axes. The
    /// primitives are drawn at integer coordinates round(x·hi) of the hi× drawing and area-downsampled twice (pixel centres
    /// at integers), so drawing coordinate d lands at frame coordinate (d + 0.5)/hi − 0.5. <see cref="SyntheticClip.Landmarks"/>
    /// adds it so that the written landmarks sit on the image content (0.375 px at hi = 4).
    /// </summary>
    public double ImageOffset => 0.5 / hi - 0.5;

    Point2d[] Landmarks68()
    {
        var p = new Point2d[68];
        double a = HalfWidth, b = HalfHeight, cx = Center.X, cy = Center.Y;
        // Jaw: the head ellipse from angle φ0 (image-left, at eye level) down through the chin (90°) to the mirror angle.
        double phi0 = Math.PI - Math.Asin((Eyes[0].Y - cy) / b);
        for (int k = 0; k <= 16; k++)
        {
            double phi = phi0 - k * (2 * phi0 - Math.PI) / 16;
            p[k] = new Point2d(cx + a * Math.Cos(phi), cy + b * Math.Sin(phi));
        }
        // Brows: five points each along the arch between the outer and inner ends (raised by BrowArch at the middle).
        for (int k = 0; k < 5; k++)
        {
            double t = k / 4.0, arch = BrowArch * 4 * t * (1 - t);
            p[17 + k] = new Point2d(BrowOuter[0].X + t * (BrowInner[0].X - BrowOuter[0].X), BrowOuter[0].Y + t * (BrowInner[0].Y - BrowOuter[0].Y) - arch);
            p[22 + k] = new Point2d(BrowInner[1].X + t * (BrowOuter[1].X - BrowInner[1].X), BrowInner[1].Y + t * (BrowOuter[1].Y - BrowInner[1].Y) - arch);
        }
        for (int k = 0; k < 4; k++) p[27 + k] = new Point2d(cx, NoseRoot.Y + k / 3.0 * (NoseTip.Y - NoseRoot.Y));
        double ew = EyeHalfWidth, nw = NoseHalfWidth;
        for (int k = 0; k < 5; k++) p[31 + k] = new Point2d(cx + (k - 2) * 0.4 * nw, NoseTip.Y + (k is 0 or 4 ? 0.15 : k == 2 ? 0.3 : 0.25) * ew);
        // Eyes: corners at ±w, lid points at ±w/3 on the ellipse (w, h); six points average to the centre.
        double ly = EyeHalfHeight * Math.Sqrt(1 - 1 / 9.0), w3 = ew / 3;
        for (int s = 0; s < 2; s++)
        {
            var e = Eyes[s];
            int at = s == 0 ? 36 : 42;   // both run left → right along the top, then right → left along the bottom
            p[at] = new Point2d(e.X - ew, e.Y);
            p[at + 1] = new Point2d(e.X - w3, e.Y - ly);
            p[at + 2] = new Point2d(e.X + w3, e.Y - ly);
            p[at + 3] = new Point2d(e.X + ew, e.Y);
            p[at + 4] = new Point2d(e.X + w3, e.Y + ly);
            p[at + 5] = new Point2d(e.X - w3, e.Y + ly);
        }
        // Lips: corners, then the upper outline through UpperLip, the lower through LowerLip (parabolas), inner lips between.
        var l = MouthCorners[0];
        var r = MouthCorners[1];
        double mw = MouthHalfWidth, my = l.Y;
        Point2d Outline(double u, double top) => new(cx + u * mw, my + (top - my) * (1 - u * u));
        p[48] = l;
        p[54] = r;
        for (int k = 1; k <= 5; k++) p[48 + k] = Outline(-1 + k / 3.0, UpperLip.Y);            // 49..53: u = -2/3 .. 2/3
        for (int k = 1; k <= 5; k++) p[54 + k] = Outline(1 - k / 3.0, LowerLip.Y);             // 55..59: u = 2/3 .. -2/3
        double innerUp = my - 0.25 * (my - UpperLip.Y), innerDown = my + 0.25 * (LowerLip.Y - my);
        p[60] = new Point2d(cx - 0.85 * mw, my);
        p[64] = new Point2d(cx + 0.85 * mw, my);
        for (int k = 1; k <= 3; k++) p[60 + k] = Outline(-0.5 + (k - 1) * 0.5, innerUp);       // 61..63
        for (int k = 1; k <= 3; k++) p[64 + k] = Outline(0.5 - (k - 1) * 0.5, innerDown);      // 65..67
        return p;
    }

    readonly Scalar skin, hair, brow, lip, iris, background, clothes;
    readonly bool longHair;
    readonly double hairlineTop, hairlineSide, hairlineSkew, lightX, fineTexture, coarseTexture, mouthCurve;
    readonly long seed;
    readonly int hi; // drawing scale relative to Size
    readonly ConcurrentDictionary<int, Lazy<Mat>> canonical = new();
    float[]? texture;
    readonly Lock textureLock = new();

    SyntheticFace(int subject, int size, long seed)
    {
        Subject = subject;
        Size = size;
        this.seed = seed;
        hi = size > 512 ? 2 : 4;
        var r = SynthRandom.Derive(seed, "face", subject);
        double S = size;

        Center = new Point2d(S * r.Uniform(0.48, 0.52), S * r.Uniform(0.50, 0.54));
        HalfWidth = S * r.Uniform(0.28, 0.33);
        HalfHeight = S * r.Uniform(0.38, 0.43);
        double a = HalfWidth, b = HalfHeight, cx = Center.X, cy = Center.Y;

        double eyeY = cy - b * r.Uniform(0.12, 0.2);
        double eyeDx = a * r.Uniform(0.38, 0.46);
        EyeHalfWidth = a * r.Uniform(0.17, 0.21);
        EyeHalfHeight = EyeHalfWidth * r.Uniform(0.36, 0.46);
        double ew = EyeHalfWidth, eh = EyeHalfHeight;
        Eyes = [new(cx - eyeDx, eyeY), new(cx + eyeDx, eyeY)];

        double gap = eh + ew * r.Uniform(0.45, 0.75);
        double innerIn = ew * r.Uniform(0.75, 0.95), outerOut = ew * r.Uniform(1.05, 1.25), outerDrop = ew * r.Uniform(-0.05, 0.25);
        BrowInner = new Point2d[2];
        BrowOuter = new Point2d[2];
        for (int s = 0; s < 2; s++)
        {
            double outward = s == 0 ? -1 : 1;
            BrowInner[s] = new Point2d(Eyes[s].X - outward * innerIn, eyeY - gap);
            BrowOuter[s] = new Point2d(Eyes[s].X + outward * outerOut, eyeY - gap + outerDrop);
        }
        BrowArch = ew * r.Uniform(0.2, 0.4);
        BrowThickness = ew * r.Uniform(0.18, 0.3);

        NoseRoot = new Point2d(cx, eyeY);
        NoseTip = new Point2d(cx, cy + b * r.Uniform(0.14, 0.22));
        NoseHalfWidth = ew * r.Uniform(0.75, 1.0);

        double mouthY = NoseTip.Y + b * r.Uniform(0.22, 0.3);
        MouthHalfWidth = a * r.Uniform(0.3, 0.38);
        mouthCurve = ew * r.Uniform(-0.15, 0.15);
        MouthCenter = new Point2d(cx, mouthY);
        MouthCorners = [new(cx - MouthHalfWidth, mouthY + mouthCurve), new(cx + MouthHalfWidth, mouthY + mouthCurve)];
        UpperLip = new Point2d(cx, mouthY - ew * r.Uniform(0.25, 0.4));
        LowerLip = new Point2d(cx, mouthY + ew * r.Uniform(0.35, 0.55));
        Chin = new Point2d(cx, cy + b * 0.9);
        Landmarks = Landmarks68();

        double L = r.Uniform(0.42, 0.9);
        skin = new Scalar(255 * L * r.Uniform(0.6, 0.72), 255 * L * r.Uniform(0.74, 0.84), Math.Min(250, 255 * L * r.Uniform(0.92, 1.02)));
        double hl = r.Uniform(0.05, 0.45);
        hair = new Scalar(255 * hl * r.Uniform(0.7, 0.9), 255 * hl * r.Uniform(0.8, 0.95), 255 * hl);
        brow = Mix(hair, skin, r.Uniform(0.15, 0.35));
        lip = new Scalar(skin.Val0 * 0.72, skin.Val1 * 0.62, skin.Val2 * 0.92);
        Scalar[] irises = [new(30, 55, 90), new(140, 110, 70), new(80, 120, 70), new(25, 30, 40)];
        double ik = r.Uniform(0.8, 1.2);
        var ir = r.Pick(irises);
        iris = new Scalar(ir.Val0 * ik, ir.Val1 * ik, ir.Val2 * ik);
        double g = r.Uniform(70, 190);
        background = new Scalar(g + r.Uniform(-25, 25), g + r.Uniform(-25, 25), g + r.Uniform(-25, 25));
        clothes = new Scalar(r.Uniform(30, 200), r.Uniform(30, 200), r.Uniform(30, 200));
        longHair = r.Chance(0.5);
        hairlineTop = r.Uniform(0.58, 0.72);
        hairlineSide = r.Uniform(0.0, 0.2);
        hairlineSkew = r.Uniform(-0.08, 0.08);
        lightX = r.Uniform(-0.1, 0.1);
        fineTexture = r.Uniform(3, 6);
        coarseTexture = r.Uniform(2, 5);
    }

    /// <summary>The face of subject <paramref name="subject"/> (1-based) for frames of <paramref name="size"/> pixels.</summary>
    public static SyntheticFace Create(int subject, int size, long seed) => new(subject, size, seed);

    static Scalar Mix(Scalar a, Scalar b, double t) =>
        new(a.Val0 * (1 - t) + b.Val0 * t, a.Val1 * (1 - t) + b.Val1 * t, a.Val2 * (1 - t) + b.Val2 * t);

    static Scalar Times(Scalar a, double k) => new(a.Val0 * k, a.Val1 * k, a.Val2 * k);

    /// <summary>Lid closure is quantised to this step (so that canonical images can be cached).</summary>
    public const double ClosureStep = 0.05;

    /// <summary>
    /// The unposed face with the upper lids closed by <paramref name="lidClosure"/> (0 open … 1 shut), CV_32FC3 (BGR, 0–255),
    /// <see cref="Supersample"/>× the frame size. Cached and shared: do not modify or dispose it.
    /// </summary>
    public Mat Canonical(double lidClosure)
    {
        int key = (int)Math.Round(Math.Clamp(lidClosure, 0, 1) / ClosureStep);
        return canonical.GetOrAdd(key, k => new Lazy<Mat>(() => Render(k * ClosureStep))).Value;
    }

    Mat Render(double closure)
    {
        int R = Size * hi;
        using var canvas = new Mat(R, R, MatType.CV_8UC3, background);
        Draw(canvas, closure);
        using var f = new Mat();
        canvas.ConvertTo(f, MatType.CV_32FC3);
        ApplyLightAndTexture(f);
        var result = new Mat();
        Cv2.Resize(f, result, new OpenCvSharp.Size(Size * Supersample, Size * Supersample), 0, 0, InterpolationFlags.Area);
        return result;
    }

    Point P(double x, double y) => new((int)Math.Round(x * hi), (int)Math.Round(y * hi));
    Point P(Point2d p) => P(p.X, p.Y);
    OpenCvSharp.Size Axes(double ax, double ay) => new((int)Math.Round(ax * hi), (int)Math.Round(ay * hi));
    int T(double thickness) => Math.Max(1, (int)Math.Round(thickness * hi));

    void Draw(Mat img, double closure)
    {
        const LineTypes AA = LineTypes.AntiAlias;
        double a = HalfWidth, b = HalfHeight, cx = Center.X, cy = Center.Y, ew = EyeHalfWidth, eh = EyeHalfHeight;
        double S = Size;

        // Hair behind the head, neck, clothes, ears, head.
        if (longHair)
        {
            Cv2.Ellipse(img, P(cx, cy - 0.05 * b), Axes(a * 1.22, b * 1.08), 0, 0, 360, hair, -1, AA);
            Cv2.Rectangle(img, P(cx - a * 1.22, cy), P(cx + a * 1.22, cy + 0.95 * b), hair, -1, AA);
        }
        else
        {
            Cv2.Ellipse(img, P(cx, cy - 0.12 * b), Axes(a * 1.1, b * 0.95), 0, 0, 360, hair, -1, AA);
        }
        Cv2.Rectangle(img, P(cx - 0.42 * a, cy + 0.4 * b), P(cx + 0.42 * a, S + 1), Times(skin, 0.82), -1, AA);
        Cv2.Ellipse(img, P(cx, cy + b * 1.45), Axes(a * 2.2, b * 0.5), 0, 0, 360, clothes, -1, AA);
        for (int s = 0; s < 2; s++)
        {
            double o = s == 0 ? -1 : 1;
            Cv2.Ellipse(img, P(cx + o * a * 0.97, Eyes[0].Y + 0.12 * b), Axes(0.13 * a, 0.22 * b), 0, 0, 360, Times(skin, 0.92), -1, AA);
            Cv2.Ellipse(img, P(cx + o * a * 1.0, Eyes[0].Y + 0.12 * b), Axes(0.07 * a, 0.14 * b), 0, 0, 360, Times(skin, 0.78), T(0.06 * ew), AA);
        }
        Cv2.Ellipse(img, P(Center), Axes(a, b), 0, 0, 360, skin, -1, AA);

        // Hairline: the top of a slightly larger ellipse, down to a curved hairline across the forehead.
        var hairPoly = new List<Point>();
        for (int i = 0; i <= 40; i++)
        {
            double t = Math.PI + Math.PI * i / 40;
            hairPoly.Add(P(cx + 1.05 * a * Math.Cos(t), cy + 1.05 * b * Math.Sin(t)));
        }
        for (int i = 0; i <= 40; i++)
        {
            double nx = 1 - 2.0 * i / 40;
            double depth = hairlineTop - (hairlineTop - hairlineSide) * Math.Pow(Math.Abs(nx), 3) + hairlineSkew * nx;
            hairPoly.Add(P(cx + 1.05 * a * nx, cy - depth * b));
        }
        Cv2.FillPoly(img, [hairPoly], hair, AA);

        // Nasolabial folds, nose, mouth, chin crease.
        var foldColor = Times(skin, 0.86);
        for (int s = 0; s < 2; s++)
        {
            double o = s == 0 ? -1 : 1;
            var p0 = new Point2d(cx + o * 1.1 * NoseHalfWidth, NoseTip.Y - 0.1 * ew);
            var p2 = new Point2d(MouthCorners[s].X + o * 0.25 * ew, MouthCorners[s].Y + 0.5 * ew);
            var p1 = new Point2d(p2.X + o * 0.35 * ew, (p0.Y + p2.Y) / 2);
            Cv2.Polylines(img, [Bezier(p0, p1, p2, 12)], false, foldColor, T(0.14 * ew), AA);
        }
        double nw = NoseHalfWidth;
        for (int s = 0; s < 2; s++)
        {
            double o = s == 0 ? -1 : 1;
            Cv2.Line(img, P(cx + o * 0.45 * nw, NoseRoot.Y + 0.4 * ew), P(cx + o * 0.55 * nw, NoseTip.Y - 0.6 * ew), Times(skin, 0.9), T(0.22 * ew), AA);
        }
        Cv2.Ellipse(img, P(cx, NoseTip.Y - 0.15 * ew), Axes(0.4 * nw, 0.3 * nw), 0, 0, 360, Times(skin, 1.05), -1, AA);
        for (int s = 0; s < 2; s++)
        {
            double o = s == 0 ? -1 : 1;
            Cv2.Ellipse(img, P(cx + o * 0.72 * nw, NoseTip.Y - 0.05 * ew), Axes(0.32 * nw, 0.42 * nw), 0, s == 0 ? 100 : -80, s == 0 ? 260 : 80, Times(skin, 0.72), T(0.13 * ew), AA);
            Cv2.Ellipse(img, P(cx + o * 0.4 * nw, NoseTip.Y + 0.25 * ew), Axes(0.26 * nw, 0.12 * nw), o * 15, 0, 360, Times(skin, 0.4), -1, AA);
        }

        double mw = MouthHalfWidth, my = MouthCenter.Y;
        double upH = my - UpperLip.Y, loH = LowerLip.Y - my;
        double LineY(double x) { double t = (x - cx) / mw; return my + mouthCurve * t * t; }
        var upper = new List<Point>
        {
            P(MouthCorners[0]), P(cx - 0.55 * mw, LineY(cx - 0.55 * mw) - 0.8 * upH), P(cx - 0.15 * mw, my - upH),
            P(cx, my - 0.8 * upH), P(cx + 0.15 * mw, my - upH), P(cx + 0.55 * mw, LineY(cx + 0.55 * mw) - 0.8 * upH), P(MouthCorners[1]),
        };
        var lower = new List<Point>();
        var line = new List<Point>();
        for (int i = 0; i <= 16; i++)
        {
            double x = cx + mw * (1 - 2.0 * i / 16);
            line.Add(P(x, LineY(x)));
        }
        upper.AddRange(line);
        for (int i = 0; i <= 16; i++)
        {
            double t = -1 + 2.0 * i / 16, x = cx + mw * t;
            lower.Add(P(x, LineY(x)));
        }
        for (int i = 0; i <= 16; i++)
        {
            double t = 1 - 2.0 * i / 16, x = cx + mw * t;
            lower.Add(P(x, LineY(x) + 0.95 * loH * Math.Sqrt(Math.Max(0, 1 - Math.Pow(t / 1.02, 2)))));
        }
        Cv2.FillPoly(img, [upper], lip, AA);
        Cv2.FillPoly(img, [lower], Times(lip, 1.08), AA);
        Cv2.Polylines(img, [line], false, Times(lip, 0.45), T(0.13 * ew), AA);
        Cv2.Ellipse(img, P(cx, LowerLip.Y + 0.2 * ew), Axes(0.45 * mw, 0.7 * ew), 0, 40, 140, Times(skin, 0.88), T(0.12 * ew), AA);

        // Eyes with the upper lid closed by `closure`, lid crease, brows.
        for (int s = 0; s < 2; s++)
            DrawEye(img, s, closure);
        for (int s = 0; s < 2; s++)
        {
            var inner = BrowInner[s];
            var outer = BrowOuter[s];
            var mid = new Point2d((inner.X + outer.X) / 2, (inner.Y + outer.Y) / 2 - 2 * BrowArch);
            var pts = Bezier(inner, mid, outer, 14);
            for (int i = 0; i + 1 < pts.Count; i++)
            {
                double t = i / (double)(pts.Count - 1);
                Cv2.Line(img, pts[i], pts[i + 1], brow, T(BrowThickness * (1.15 - 0.6 * t)), AA);
            }
        }
        _ = eh;
    }

    void DrawEye(Mat img, int side, double closure)
    {
        const LineTypes AA = LineTypes.AntiAlias;
        var e = Eyes[side];
        double w = EyeHalfWidth, h = EyeHalfHeight;
        Cv2.Ellipse(img, P(e.X, e.Y - 0.1 * h), Axes(w * 1.05, h * 1.7), 0, 200, 340, Times(skin, 0.8), T(0.1 * w), AA);
        Cv2.Ellipse(img, P(e), Axes(w, h), 0, 0, 360, new Scalar(225, 228, 232), -1, AA);
        double ri = 0.95 * h;
        Cv2.Circle(img, P(e), T(ri), iris, -1, AA);
        Cv2.Circle(img, P(e), T(ri * 0.45), new Scalar(18, 18, 20), -1, AA);
        Cv2.Circle(img, P(e.X - 0.3 * ri, e.Y - 0.3 * ri), T(ri * 0.16), new Scalar(235, 235, 235), -1, AA);
        Cv2.Ellipse(img, P(e), Axes(w, h), 0, 10, 170, Times(skin, 0.75), T(0.08 * w), AA);

        const int n = 20;
        var lid = new List<Point>();
        var edge = new List<Point>();
        for (int i = 0; i <= n; i++)
        {
            double x = -w + 2 * w * i / n;
            double q = Math.Sqrt(Math.Max(0, 1 - x * x / (w * w)));
            lid.Add(P(e.X + x, e.Y - h * q - 0.15 * h));
        }
        for (int i = n; i >= 0; i--)
        {
            double x = -w + 2 * w * i / n;
            double q = Math.Sqrt(Math.Max(0, 1 - x * x / (w * w)));
            double top = -h * q, bottom = h * q;
            var p = P(e.X + x, e.Y + top + closure * (bottom - top));
            lid.Add(p);
            edge.Add(p);
        }
        if (closure > 0.01)
            Cv2.FillPoly(img, [lid], Times(skin, 0.93), AA);
        Cv2.Polylines(img, [edge], false, Times(hair, 0.6), T(0.28 * h), AA);
    }

    List<Point> Bezier(Point2d p0, Point2d p1, Point2d p2, int segments)
    {
        var pts = new List<Point>(segments + 1);
        for (int i = 0; i <= segments; i++)
        {
            double t = i / (double)segments, u = 1 - t;
            pts.Add(P(u * u * p0.X + 2 * u * t * p1.X + t * t * p2.X, u * u * p0.Y + 2 * u * t * p1.Y + t * t * p2.Y));
        }
        return pts;
    }

    /// <summary>Lighting (side light and falloff towards the face's edges) and additive skin texture, in place.</summary>
    unsafe void ApplyLightAndTexture(Mat f)
    {
        int R = f.Rows;
        float[] tex = Texture(R);
        double cx = Center.X * hi, cy = Center.Y * hi, a = HalfWidth * hi, b = HalfHeight * hi;
        for (int y = 0; y < R; y++)
        {
            float* row = (float*)f.Ptr(y);
            double ny = (y + 0.5 - cy) / b;
            for (int x = 0; x < R; x++)
            {
                double nx = (x + 0.5 - cx) / a;
                float light = (float)(1 + lightX * nx - 0.1 * nx * nx - 0.05 * ny * ny);
                float t = tex[y * R + x];
                for (int c = 0; c < 3; c++)
                    row[3 * x + c] = row[3 * x + c] * light + t;
            }
        }
    }

    float[] Texture(int R)
    {
        lock (textureLock)
        {
            if (texture != null) return texture;
            var rng = SynthRandom.Derive(seed, "texture", Subject);
            using var fine = NoiseField(rng, R, 0.75 * hi, fineTexture);
            using var coarse = NoiseField(rng, R, 6.0 * hi, coarseTexture);
            using var sum = new Mat();
            Cv2.Add(fine, coarse, sum);
            var t = new float[R * R];
            System.Runtime.InteropServices.Marshal.Copy(sum.Data, t, 0, t.Length);
            texture = t;
            return t;
        }
    }

    /// <summary>White noise from <paramref name="rng"/>, Gaussian-blurred with σ = <paramref name="sigma"/>, rescaled to standard deviation <paramref name="std"/>.</summary>
    static Mat NoiseField(SynthRandom rng, int R, double sigma, double std)
    {
        var data = new float[R * R];
        for (int i = 0; i < data.Length; i++) data[i] = (float)rng.Gaussian();
        using var raw = new Mat(R, R, MatType.CV_32FC1);
        System.Runtime.InteropServices.Marshal.Copy(data, 0, raw.Data, data.Length);
        var blurred = new Mat();
        Cv2.GaussianBlur(raw, blurred, new OpenCvSharp.Size(0, 0), sigma, sigma, BorderTypes.Reflect101);
        Cv2.MeanStdDev(blurred, out _, out var sd);
        blurred.ConvertTo(blurred, MatType.CV_32FC1, std / Math.Max(1e-9, sd.Val0));
        return blurred;
    }

    public void Dispose()
    {
        foreach (var lazy in canonical.Values)
            if (lazy.IsValueCreated) lazy.Value.Dispose();
        canonical.Clear();
    }
}
