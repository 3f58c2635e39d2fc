using OpenCvSharp;

namespace MicroExpr.Data.Synthetic;

/// <summary>
/// One synthetic micro-expression clip: a subject's face, an AU coding drawn for the clip's emotion, its timing and
/// distractors. Frames are rendered on demand (<see cref="RenderFrame"/>), so tests need no disk.
/// <para>
/// Frame <c>i</c>: the canonical face (with the lids closed as the blink schedule says) is warped by one cv::remap
/// combining the expression and the head pose, at <see cref="SyntheticFace.Supersample"/>× resolution and bilinear
/// interpolation, then area-downsampled to the frame size; then the global gain (exposure × flicker) is applied and
/// Gaussian sensor noise added. The expression is a smooth displacement field (sum of Gaussian blobs,
/// <see cref="ActionUnits"/>) scaled by an intensity that rises from 0 at the onset to 1 at the apex (smoothstep)
/// and falls back to 0 at the offset; the warp inverts it with two fixed-point steps, so image content really
/// moves by the field (sub-pixel: true optical flow). Remap with float maps resolves 1/32 pixel of the
/// supersampled image.
/// </para>
/// <para>
/// Timing at 24 frames (scaled with the frame count): onset at frame 1–3, rise 4–7 frames, fall 6–10 frames, so
/// onset→offset spans 10–17 frames and at least one neutral frame follows the offset. Distractors are drawn from
/// streams of their own, so their timing is independent of the class.
/// </para>
/// </summary>
public sealed class SyntheticClip
{
    public SyntheticFace Face { get; }
    /// <summary>1-based subject number (folder <c>sub01</c>).</summary>
    public int Subject { get; }
    public string SubjectFolder => $"sub{Subject:00}";
    /// <summary>0-based index of the clip within its subject.</summary>
    public int ClipIndex { get; }
    /// <summary>Clip folder and coding-file Filename, e.g. <c>EP03_02</c>.</summary>
    public string Filename { get; }
    public SyntheticClass Class { get; }
    public int Label => Class.Index;
    /// <summary>CASME II emotion word written to the coding file.</summary>
    public string Emotion { get; }
    /// <summary>CASME II action-unit coding, e.g. <c>4+L10</c>.</summary>
    public string ActionUnitCoding { get; }
    public int FrameCount { get; }
    /// <summary>Number in the first frame's file name (<c>img46.jpg</c>); frame i is <c>img{FirstFrameNumber+i}.jpg</c>.</summary>
    public int FirstFrameNumber { get; }
    /// <summary>0-based frame indices within the clip.</summary>
    public int Onset { get; }
    public int Apex { get; }
    public int Offset { get; }
    public int OnsetFrame => FirstFrameNumber + Onset;
    public int ApexFrame => FirstFrameNumber + Apex;
    public int OffsetFrame => FirstFrameNumber + Offset;
    /// <summary>Peak expression displacement at the apex, in frame pixels (canonical face).</summary>
    public double Amplitude { get; }
    /// <summary>The expression's blobs, scaled so that the apex field peaks at <see cref="Amplitude"/>.</summary>
    public IReadOnlyList<AuBlob> Blobs { get; }
    public Distractors Distractors { get; }
    public double NoiseSigma { get; }

    readonly long seed;
    readonly int size;
    readonly double[] closure, gain, tx, ty, rot;
    readonly double scale;
    // Expression field on the supersampled canonical grid, in frame pixels, at intensity 1.
    readonly float[] fieldX, fieldY;

    public SyntheticClip(SyntheticFace face, int clipIndex, SyntheticClass cls, string emotion, string coding, SyntheticOptions options)
    {
        Face = face;
        Subject = face.Subject;
        ClipIndex = clipIndex;
        Class = cls;
        Emotion = emotion;
        ActionUnitCoding = coding;
        FrameCount = options.Frames;
        Distractors = options.Distractors;
        seed = options.Seed;
        size = face.Size;
        int F = FrameCount;
        double px = size / 128.0;

        var r = SynthRandom.Derive(seed, "clip", Subject, clipIndex);
        Filename = $"EP{clipIndex + 1:00}_{r.Between(1, 6):00}";
        FirstFrameNumber = r.Between(1, 150);
        double k = F / 24.0;
        int onset = Math.Max(1, (int)Math.Round(r.Uniform(1, 3) * k));
        int rise = Math.Max(2, (int)Math.Round(r.Uniform(4, 7) * k));
        int fall = Math.Max(2, (int)Math.Round(r.Uniform(6, 10) * k));
        if (onset + rise + fall > F - 2) fall = Math.Max(2, F - 2 - onset - rise);
        if (onset + rise + fall > F - 2) rise = Math.Max(1, F - 2 - onset - fall);
        Onset = onset;
        Apex = onset + rise;
        Offset = Apex + fall;
        Amplitude = r.Uniform(options.MinAmplitude, options.MaxAmplitude) * px;

        // Field at intensity 1, normalised so that its peak equals the amplitude.
        var blobs = ActionUnits.Blobs(face, coding);
        int n = size * SyntheticFace.Supersample;
        fieldX = new float[n * n];
        fieldY = new float[n * n];
        double peak = 0;
        for (int y = 0; y < n; y++)
            for (int x = 0; x < n; x++)
            {
                var (dx, dy) = ActionUnits.Evaluate(blobs, ToFrame(x), ToFrame(y));
                fieldX[y * n + x] = (float)dx;
                fieldY[y * n + x] = (float)dy;
                peak = Math.Max(peak, dx * dx + dy * dy);
            }
        double norm = Amplitude / Math.Sqrt(peak);
        for (int i = 0; i < fieldX.Length; i++)
        {
            fieldX[i] *= (float)norm;
            fieldY[i] *= (float)norm;
        }
        Blobs = blobs.Select(b => b with { Dx = b.Dx * norm, Dy = b.Dy * norm }).ToList();

        // Blinks: 0 (50 %), 1 (40 %) or 2 (10 %); the lid closes over 2–3 frames and opens over 2–4.
        closure = new double[F];
        if (Distractors.HasFlag(Distractors.Blinks))
        {
            var br = SynthRandom.Derive(seed, "blink", Subject, clipIndex);
            double u = br.NextDouble();
            int blinks = u < 0.5 ? 0 : u < 0.9 ? 1 : 2;
            for (int bI = 0; bI < blinks; bI++)
            {
                int start = br.Between(0, F - 1), close = br.Between(2, 3), open = br.Between(2, 4);
                for (int j = 1; j <= close; j++) Set(start + j - 1, j / (double)close);
                for (int j = 1; j <= open; j++) Set(start + close + j - 1, 1 - j / (open + 1.0));
                void Set(int i, double c) { if (i >= 0 && i < F) closure[i] = Math.Max(closure[i], c); }
            }
        }

        // Head pose: a static per-clip pose, then a slow drift (linear plus a small wobble) over the clip.
        var pr = SynthRandom.Derive(seed, "pose", Subject, clipIndex);
        double tx0 = 0, ty0 = 0, rot0 = 0, gain0 = 1;
        scale = 1;
        if (Distractors.HasFlag(Distractors.PoseJitter))
        {
            tx0 = pr.Uniform(-3, 3) * px;
            ty0 = pr.Uniform(-3, 3) * px;
            rot0 = pr.Uniform(-3, 3) * Math.PI / 180;
            scale = 1 + pr.Uniform(-0.04, 0.04);
            gain0 = 1 + pr.Uniform(-0.08, 0.08);
        }
        tx = new double[F]; ty = new double[F]; rot = new double[F];
        var dr = SynthRandom.Derive(seed, "drift", Subject, clipIndex);
        double driftMag = dr.Uniform(0.3, 1.5) * px, driftAngle = dr.Uniform(0, 2 * Math.PI);
        double driftRot = dr.Uniform(-0.8, 0.8) * Math.PI / 180;
        double wobble = dr.Uniform(0, 0.15) * px, wobblePeriod = dr.Uniform(8, 20), wobblePhase = dr.Uniform(0, 2 * Math.PI);
        bool drift = Distractors.HasFlag(Distractors.HeadDrift);
        for (int i = 0; i < F; i++)
        {
            double t = i / (double)(F - 1);
            double w = drift ? wobble * Math.Sin(2 * Math.PI * i / wobblePeriod + wobblePhase) : 0;
            tx[i] = tx0 + (drift ? driftMag * Math.Cos(driftAngle) * t : 0) + w;
            ty[i] = ty0 + (drift ? driftMag * Math.Sin(driftAngle) * t : 0) + 0.5 * w;
            rot[i] = rot0 + (drift ? driftRot * t : 0);
        }

        // Illumination: per-clip exposure, per-frame flicker within ±3 %.
        gain = new double[F];
        var fr = SynthRandom.Derive(seed, "flicker", Subject, clipIndex);
        double fa = fr.Uniform(0.005, 0.018), fp = fr.Uniform(3, 9), fphi = fr.Uniform(0, 2 * Math.PI);
        bool flicker = Distractors.HasFlag(Distractors.Flicker);
        for (int i = 0; i < F; i++)
            gain[i] = gain0 * (1 + (flicker ? fa * Math.Sin(2 * Math.PI * i / fp + fphi) + fr.Uniform(-0.012, 0.012) : 0));
        NoiseSigma = Distractors.HasFlag(Distractors.Noise) ? fr.Uniform(1.5, 3.0) : 0;
    }

    /// <summary>Frame-pixel coordinate of supersampled pixel index <paramref name="i"/>.</summary>
    static double ToFrame(int i) => (i + 0.5) / SyntheticFace.Supersample - 0.5;
    static double ToSuper(double v) => (v + 0.5) * SyntheticFace.Supersample - 0.5;

    /// <summary>Expression intensity at frame <paramref name="i"/>: 0 before the onset and from the offset on, 1 at the apex.</summary>
    public double Intensity(int i)
    {
        static double Smooth(double x) => x * x * (3 - 2 * x);
        if (i <= Onset || i >= Offset) return 0;
        if (i <= Apex) return Smooth((i - Onset) / (double)(Apex - Onset));
        return Smooth((Offset - i) / (double)(Offset - Apex));
    }

    /// <summary>Upper-lid closure at frame <paramref name="i"/> (0 open, 1 shut).</summary>
    public double LidClosure(int i) => closure[i];

    /// <summary>Global gain (exposure × flicker) at frame <paramref name="i"/>.</summary>
    public double Gain(int i) => gain[i];

    /// <summary>Head pose at frame <paramref name="i"/>: translation (frame px), rotation (radians) and scale about the face centre.</summary>
    public (double Tx, double Ty, double Rotation, double Scale) Pose(int i) => (tx[i], ty[i], rot[i], scale);

    /// <summary>
    /// The expression's displacement at frame <paramref name="i"/>, per frame pixel (row-major, Size × Size): how far the
    /// face content seen at that pixel has moved from its neutral place (head pose excluded from the motion, but
    /// included in where the face is).
    /// </summary>
    public (float[] Dx, float[] Dy) ExpressionDisplacement(int i)
    {
        double a = Intensity(i);
        var dxs = new float[size * size];
        var dys = new float[size * size];
        if (a == 0) return (dxs, dys);
        var (c, s, cx, cy, tX, tY, sc) = PoseTerms(i);
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                var (px, py) = Unpose(x, y, c, s, cx, cy, tX, tY, sc);
                var (fx, fy) = SampleField(px, py);
                dxs[y * size + x] = (float)(a * sc * (c * fx - s * fy));
                dys[y * size + x] = (float)(a * sc * (s * fx + c * fy));
            }
        return (dxs, dys);
    }

    /// <summary>
    /// The true 68 landmarks at frame <paramref name="i"/>, in frame pixels (dlib's order; <see cref="SyntheticFace.Landmarks"/>):
    /// each canonical point p (where it shows in the canonical image: <see cref="SyntheticFace.ImageOffset"/>) moved by the
    /// expression as the image content there moves, p + a·D(p) (a the frame's
    /// intensity, D the field), then posed as the frame is, c + t + s·R(θ)(p − c). Written beside the frames as
    /// <see cref="Faces.LandmarkFile"/> so that FDP's landmark alignment needs no landmark model on synthetic data.
    /// </summary>
    public OpenCvSharp.Point2d[] Landmarks(int i)
    {
        if ((uint)i >= (uint)FrameCount) throw new ArgumentOutOfRangeException(nameof(i), i, $"the clip has {FrameCount} frames");
        double a = Intensity(i);
        var (c, s, cx, cy, tX, tY, sc) = PoseTerms(i);
        var canonical = Face.Landmarks;
        var o = new OpenCvSharp.Point2d[canonical.Length];
        for (int k = 0; k < o.Length; k++)
        {
            double px = canonical[k].X + Face.ImageOffset, py = canonical[k].Y + Face.ImageOffset;
            if (a != 0)
            {
                var (fx, fy) = SampleField(px, py);
                px += a * fx;
                py += a * fy;
            }
            double ux = px - cx, uy = py - cy;
            o[k] = new OpenCvSharp.Point2d(cx + tX + sc * (c * ux - s * uy), cy + tY + sc * (s * ux + c * uy));
        }
        return o;
    }

    (double C, double S, double Cx, double Cy, double Tx, double Ty, double Scale) PoseTerms(int i) =>
        (Math.Cos(rot[i]), Math.Sin(rot[i]), Face.Center.X, Face.Center.Y, tx[i], ty[i], scale);

    /// <summary>Canonical (unposed) coordinates of frame point (x, y): the inverse of y = c + s·R(θ)(p − c) + t.</summary>
    static (double X, double Y) Unpose(double x, double y, double c, double s, double cx, double cy, double tX, double tY, double sc)
    {
        double ux = x - cx - tX, uy = y - cy - tY;
        return (cx + (c * ux + s * uy) / sc, cy + (-s * ux + c * uy) / sc);
    }

    /// <summary>Expression field at intensity 1 at canonical frame point (x, y), bilinear on the supersampled grid.</summary>
    (double X, double Y) SampleField(double x, double y)
    {
        int n = size * SyntheticFace.Supersample;
        double gx = Math.Clamp(ToSuper(x), 0, n - 1.001), gy = Math.Clamp(ToSuper(y), 0, n - 1.001);
        int x0 = (int)gx, y0 = (int)gy;
        double fx = gx - x0, fy = gy - y0;
        int i00 = y0 * n + x0, i01 = i00 + 1, i10 = i00 + n, i11 = i10 + 1;
        double vx = (fieldX[i00] * (1 - fx) + fieldX[i01] * fx) * (1 - fy) + (fieldX[i10] * (1 - fx) + fieldX[i11] * fx) * fy;
        double vy = (fieldY[i00] * (1 - fx) + fieldY[i01] * fx) * (1 - fy) + (fieldY[i10] * (1 - fx) + fieldY[i11] * fx) * fy;
        return (vx, vy);
    }

    /// <summary>Renders frame <paramref name="i"/> (0-based) as an 8-bit BGR image of Size × Size. The caller disposes it.</summary>
    public unsafe Mat RenderFrame(int i)
    {
        if ((uint)i >= (uint)FrameCount) throw new ArgumentOutOfRangeException(nameof(i), i, $"the clip has {FrameCount} frames");
        var canonical = Face.Canonical(closure[i]);
        int n = size * SyntheticFace.Supersample;
        double a = Intensity(i);
        var (c, s, cx, cy, tX, tY, sc) = PoseTerms(i);
        using var mapX = new Mat(n, n, MatType.CV_32FC1);
        using var mapY = new Mat(n, n, MatType.CV_32FC1);
        for (int y = 0; y < n; y++)
        {
            float* mx = (float*)mapX.Ptr(y), my = (float*)mapY.Ptr(y);
            double fy = ToFrame(y);
            for (int x = 0; x < n; x++)
            {
                var (px, py) = Unpose(ToFrame(x), fy, c, s, cx, cy, tX, tY, sc);
                double qx = px, qy = py;
                if (a != 0)
                {
                    // Source point r with r + a·D(r) = p: two fixed-point steps.
                    for (int it = 0; it < 2; it++)
                    {
                        var (dx, dy) = SampleField(qx, qy);
                        qx = px - a * dx;
                        qy = py - a * dy;
                    }
                }
                mx[x] = (float)ToSuper(qx);
                my[x] = (float)ToSuper(qy);
            }
        }
        using var warped = new Mat();
        Cv2.Remap(canonical, warped, mapX, mapY, InterpolationFlags.Linear, BorderTypes.Replicate);
        using var small = new Mat();
        Cv2.Resize(warped, small, new OpenCvSharp.Size(size, size), 0, 0, InterpolationFlags.Area);

        var frame = new Mat(size, size, MatType.CV_8UC3);
        var rng = SynthRandom.Derive(seed, "noise", Subject, ClipIndex, i);
        float g = (float)gain[i];
        double sigma = NoiseSigma;
        for (int y = 0; y < size; y++)
        {
            float* src = (float*)small.Ptr(y);
            byte* dst = (byte*)frame.Ptr(y);
            for (int x = 0; x < 3 * size; x++)
            {
                double v = src[x] * g + (sigma > 0 ? sigma * rng.Gaussian() : 0);
                dst[x] = (byte)Math.Clamp((int)Math.Round(v), 0, 255);
            }
        }
        return frame;
    }

    /// <summary>All frames in order. The caller disposes them.</summary>
    public IReadOnlyList<Mat> RenderFrames()
    {
        var frames = new Mat[FrameCount];
        for (int i = 0; i < FrameCount; i++) frames[i] = RenderFrame(i);
        return frames;
    }

    /// <summary>File name of frame <paramref name="i"/>: <c>img{FirstFrameNumber+i}.jpg</c>.</summary>
    public string FrameFileName(int i) => $"img{FirstFrameNumber + i}.jpg";
}
