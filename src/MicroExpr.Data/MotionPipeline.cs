using MicroExpr.Data.Faces;
using MicroExpr.Data.Frames;
using MicroExpr.Data.Motion;
using OpenCvSharp;

namespace MicroExpr.Data;

/// <summary>
/// Frames of one clip → the tensor the cache stores, [T, C, H, W] float32 with C = 3, H = W = S:
/// <list type="number">
/// <item>Face: one square box for the whole clip (<see cref="FaceBox(IReadOnlyList{Mat}, int, int, PreprocessSettings)"/>):
/// Haar on the onset frame plus margin, SLSTT's landmark square on the apex frame, or the whole frame. The box is cut from every frame used, converted to gray and resized to S×S (area
/// interpolation); the flow is computed at S×S.</item>
/// <item>Apex: when unknown (&lt; 0), the frame of onset+1..offset with the largest mean Farneback flow magnitude from the
/// onset (computed at ≤ 64 px; without the global motion when that setting is on).</item>
/// <item>Frames: T positions from <see cref="FrameSelector"/>; fractional positions (short clips) interpolate linearly
/// between the two neighbouring frames.</item>
/// <item>Flow from the onset frame to each selected frame (<see cref="PreprocessSettings.Flow"/>), encoded by
/// <see cref="MotionEncoder"/>: uvs → u, v in [-1, 1] (divided by the clip's largest magnitude) and strain in [0, 1];
/// hsv → RGB in [0, 1]. With <see cref="PreprocessSettings.RemoveGlobalMotion"/>, each flow field first loses its robust
/// affine fit (head drift and rotation; <see cref="GlobalMotion"/>).</item>
/// </list>
/// </summary>
public static class MotionPipeline
{
    // ProcessInputs also gives the face frames themselves (rgb, grey) and their dynamic image from the same crop and selection.
    /// <summary>
    /// <paramref name="frames"/>: the clip's frames in order (BGR, BGRA or grayscale Mats; the caller keeps ownership);
    /// <paramref name="onset"/>, <paramref name="apex"/>, <paramref name="offset"/>: 0-based indices into them (apex &lt; 0:
    /// estimated; onset &lt; 0: 0; offset &lt; 0: the last frame). Returns the [T, 3, S, S] motion tensor.
    /// </summary>
    public static float[] Process(IReadOnlyList<Mat> frames, int onset, int apex, int offset, PreprocessSettings settings, out int t, out int c, out int h, out int w)
    {
        var m = ProcessInputs(frames, onset, apex, offset, settings, CacheInputs.Motion)[CacheInputs.Motion];
        (t, c, h, w) = (m.T, m.C, m.H, m.W);
        return m.Data;
    }

    /// <summary>
    /// The requested kinds of one clip, all from one face box, one apex and one frame selection (so the motion frame t,
    /// the RGB frame t and the grey frame t show the same moment):
    /// <list type="bullet">
    /// <item>motion: exactly <see cref="Process"/>'s tensor [T, 3, S, S];</item>
    /// <item>rgb: each selected frame's face box resized to S×S (area interpolation), RGB / 255 in [0, 1], [T, 3, S, S]; a
    /// fractional position (short clip) blends its two neighbouring frames linearly, as the flow's target frame does;</item>
    /// <item>grey: 0.299 R + 0.587 G + 0.114 B of those RGB values (OpenCV's grey weights, computed on the float frames so
    /// that grey frame t is exactly the RGB frame t in one channel), [T, 1, S, S];</item>
    /// <item>dynamic image: <see cref="DynamicImage.Compute"/> (approximate rank pooling, min–max scaled to [0, 1]) of the
    /// T selected frames, grey or RGB (<see cref="PreprocessSettings.DynamicImageSource"/>), [1, C, S, S].</item>
    /// </list>
    /// Flow is computed only when motion is asked for. Rejected alternative for rgb: the frames at the flow resolution
    /// (<see cref="PreprocessSettings.FlowSize"/>): every stored kind shares S so a model can read several together.
    /// </summary>
    /// <para><paramref name="landmarks"/> (optional, per frame of <paramref name="frames"/>, null entries allowed): the frames'
    /// 68 landmarks, used by <see cref="FaceMode.Fdp"/>, which warps every frame by its own landmarks straight to the size
    /// wanted (S for rgb and grey, the flow resolution for motion) instead of cutting one box; a frame without landmarks
    /// gets dlib's.</para>
    public static IReadOnlyDictionary<CacheInputs, ClipTensor> ProcessInputs(IReadOnlyList<Mat> frames, int onset, int apex, int offset, PreprocessSettings settings, CacheInputs kinds,
        IReadOnlyList<Point2d[]?>? landmarks = null)
    {
        settings.Validate();
        if (kinds == CacheInputs.None || (kinds & ~CacheInputNames.Known) != 0) throw new ArgumentException($"no or unknown input kinds requested: {kinds}");
        if (frames.Count == 0) throw new ArgumentException("a clip needs at least one frame");
        if (onset < 0) onset = 0;
        if (offset < 0) offset = frames.Count - 1;
        if (onset >= frames.Count || offset >= frames.Count || offset < onset)
            throw new ArgumentException($"onset {onset} and offset {offset} must satisfy 0 <= onset <= offset < {frames.Count} (frame count)");
        // SLSTT's released window drops a clip without a usable apex (never estimated): fail fast, before any face work.
        if (settings.Selection == FrameSelection.SlsttReleased) FrameSelector.SlsttReleased(onset, apex, offset, settings.Frames);
        if (apex >= 0 && (apex < onset || apex > offset))
            throw new ArgumentException($"apex {apex} outside onset..offset {onset}..{offset}");
        var first = frames[onset];
        if (first.Empty()) throw new ArgumentException($"frame {onset} (onset) is empty");
        bool align = settings.EffectiveFace == FaceMode.Fdp;
        if (landmarks != null && landmarks.Count != frames.Count) throw new ArgumentException($"{landmarks.Count} landmark sets for {frames.Count} frames");
        Rect box = align ? new Rect(0, 0, first.Cols, first.Rows) : FaceBox(frames, onset, apex, settings);
        var points = new Dictionary<int, Point2d[]>();
        int s = settings.FlowResolution;
        int size = settings.Size;
        var gray = new Dictionary<int, Mat>();
        var rgb = new Dictionary<int, float[]>();
        var result = new Dictionary<CacheInputs, ClipTensor>();
        try
        {
            // FDP: frame i warped by its own landmarks to side×side (8-bit, the frame's channels).
            Mat Aligned(int i, int side)
            {
                if (!points.TryGetValue(i, out var p))
                {
                    p = landmarks?[i] ?? LandmarkFaceFinder.Find(frames[i], settings.Cascade, ShapePredictor.Shared(settings.LandmarksModelPath), $"frame {i} of the clip").Points;
                    points[i] = p;
                }
                return FaceCrops.FdpWarp(frames[i], p, side);
            }

            Mat Crop(int i)
            {
                var f = frames[i];
                if (f.Empty() || f.Cols < box.Right || f.Rows < box.Bottom)
                    throw new ArgumentException($"frame {i} is empty or smaller ({f.Cols}x{f.Rows}) than the face box {box} of the onset frame");
                return new Mat(f, box);
            }

            Mat Gray(int i)
            {
                if (gray.TryGetValue(i, out var g)) return g;
                using var roi = align ? Aligned(i, s) : Crop(i);
                using var gr = FaceDetector.ToGray(roi);
                using var small = new Mat();
                Cv2.Resize(gr, small, new Size(s, s), 0, 0, InterpolationFlags.Area);
                g = new Mat();
                small.ConvertTo(g, MatType.CV_32F);
                gray[i] = g;
                return g;
            }

            float[] Rgb(int i)
            {
                if (rgb.TryGetValue(i, out var r)) return r;
                using var roi = align ? Aligned(i, size) : Crop(i);
                r = FaceRgb(roi, size, i);
                rgb[i] = r;
                return r;
            }

            if (apex < 0) apex = EstimateApex(onset, offset, Gray, settings.RemoveGlobalMotion);
            var positions = FrameSelector.Select(onset, apex, offset, settings.Frames, settings.Selection);
            int t = positions.Length;
            if ((kinds & CacheInputs.Motion) != 0)
            {
                var from = Gray(onset);
                var flows = new List<(float[] U, float[] V)>(positions.Length);
                foreach (double p in positions)
                {
                    int a = (int)Math.Floor(p), b = (int)Math.Ceiling(p);
                    double frac = p - a;
                    if (b == a || frac < 1e-9)
                    {
                        flows.Add(OpticalFlow.Compute(settings.Flow, from, Gray(a)));
                        continue;
                    }
                    using var mixed = new Mat();
                    Cv2.AddWeighted(Gray(a), 1 - frac, Gray(b), frac, 0, mixed);
                    flows.Add(OpticalFlow.Compute(settings.Flow, from, mixed));
                }
                if (settings.RemoveGlobalMotion)
                    foreach (var (u, v) in flows) GlobalMotion.RemoveAffine(u, v, s, s);
                if (s != size)
                    for (int i = 0; i < flows.Count; i++) flows[i] = (Downsample(flows[i].U, s, size), Downsample(flows[i].V, s, size));
                result[CacheInputs.Motion] = new ClipTensor(CacheInputs.Motion, MotionEncoder.Encode(flows, size, size, settings.Encoding, (float)settings.FlowScale), t, 3, size, size);
            }
            if ((kinds & (CacheInputs.Rgb | CacheInputs.Grey | CacheInputs.DynamicImage)) == 0) return result;

            int plane = size * size, frame = 3 * plane;
            var rgbFrames = new List<float[]>(t);
            foreach (double p in positions)
            {
                int a = (int)Math.Floor(p), b = (int)Math.Ceiling(p);
                double frac = p - a;
                if (b == a || frac < 1e-9)
                {
                    rgbFrames.Add(Rgb(a));
                    continue;
                }
                var fa = Rgb(a);
                var fb = Rgb(b);
                var mixed = new float[frame];
                for (int k = 0; k < frame; k++) mixed[k] = (float)((1 - frac) * fa[k] + frac * fb[k]);
                rgbFrames.Add(mixed);
            }
            List<float[]>? greyFrames = null;
            if ((kinds & CacheInputs.Grey) != 0 || (kinds & CacheInputs.DynamicImage) != 0 && settings.DynamicImageSource == CacheInputs.Grey)
                greyFrames = rgbFrames.Select(f => Grey(f, plane)).ToList();
            if ((kinds & CacheInputs.Rgb) != 0)
                result[CacheInputs.Rgb] = new ClipTensor(CacheInputs.Rgb, Concat(rgbFrames), t, 3, size, size);
            if ((kinds & CacheInputs.Grey) != 0)
                result[CacheInputs.Grey] = new ClipTensor(CacheInputs.Grey, Concat(greyFrames!), t, 1, size, size);
            if ((kinds & CacheInputs.DynamicImage) != 0)
            {
                bool ofGrey = settings.DynamicImageSource == CacheInputs.Grey;
                result[CacheInputs.DynamicImage] = new ClipTensor(CacheInputs.DynamicImage, DynamicImage.Compute(ofGrey ? greyFrames! : rgbFrames), 1, ofGrey ? 1 : 3, size, size);
            }
            return result;
        }
        finally
        {
            foreach (var g in gray.Values) g.Dispose();
        }
    }

    /// <summary>A face crop (BGR, BGRA or grey, 8-bit) resized to size×size with area interpolation, as RGB planes / 255: [3, size, size].</summary>
    static float[] FaceRgb(Mat roi, int size, int index)
    {
        if (roi.Depth() != MatType.CV_8U) throw new ArgumentException($"frame {index} is not 8-bit ({roi.Type()}); RGB face frames need 8-bit images");
        using var bgr = new Mat();
        switch (roi.Channels())
        {
            case 1: Cv2.CvtColor(roi, bgr, ColorConversionCodes.GRAY2BGR); break;
            case 3: roi.CopyTo(bgr); break;
            case 4: Cv2.CvtColor(roi, bgr, ColorConversionCodes.BGRA2BGR); break;
            default: throw new ArgumentException($"frame {index} has {roi.Channels()} channels; expected 1, 3 or 4");
        }
        return RgbPlanes(bgr, size);
    }

    /// <summary>An 8-bit BGR image resized to size×size with area interpolation, as RGB planes / 255: [3, size, size].</summary>
    static float[] RgbPlanes(Mat bgr, int size)
    {
        using var resized = new Mat();
        Cv2.Resize(bgr, resized, new Size(size, size), 0, 0, InterpolationFlags.Area);
        using var f = new Mat();
        resized.ConvertTo(f, MatType.CV_32FC3, 1 / 255.0);
        var hwc = MatBuffers.ToArray(f);
        int n = size * size;
        var o = new float[3 * n];
        for (int k = 0; k < n; k++)
        {
            o[k] = hwc[3 * k + 2];          // R
            o[n + k] = hwc[3 * k + 1];      // G
            o[2 * n + k] = hwc[3 * k];      // B
        }
        return o;
    }

    /// <summary>RGB planes [3, plane] → grey [plane]: 0.299 R + 0.587 G + 0.114 B, clamped to [0, 1].</summary>
    internal static float[] Grey(float[] rgb, int plane)
    {
        var g = new float[plane];
        for (int k = 0; k < plane; k++)
            g[k] = (float)Math.Clamp(0.299 * rgb[k] + 0.587 * rgb[plane + k] + 0.114 * rgb[2 * plane + k], 0, 1);
        return g;
    }

    static float[] Concat(List<float[]> parts)
    {
        var o = new float[parts.Sum(p => p.Length)];
        int at = 0;
        foreach (var p in parts)
        {
            p.CopyTo(o, at);
            at += p.Length;
        }
        return o;
    }

    /// <summary>
    /// The clip's face box (<see cref="PreprocessSettings.EffectiveFace"/>): none → the whole onset frame; haar → the Haar
    /// box of the onset frame plus margin; landmarks → SLSTT's square from dlib's landmarks on the apex frame (the onset
    /// frame when the apex is unknown), moved inside the frame. Throws <see cref="FaceNotFoundException"/> naming the frame
    /// when no face or no sensible landmarks are found (landmarks with <see cref="PreprocessSettings.FaceFallback"/>: the Haar box).
    /// </summary>
    public static Rect FaceBox(IReadOnlyList<Mat> frames, int onset, int apex, PreprocessSettings settings) =>
        FaceBox(frames, onset, apex, settings, out _);

    /// <summary><see cref="FaceBox(IReadOnlyList{Mat}, int, int, PreprocessSettings)"/>, with the landmarks it used (null when none).</summary>
    public static Rect FaceBox(IReadOnlyList<Mat> frames, int onset, int apex, PreprocessSettings settings, out FaceLandmarks? landmarks)
    {
        landmarks = null;
        var first = frames[onset];
        switch (settings.EffectiveFace)
        {
            case FaceMode.None or FaceMode.Fdp: return new Rect(0, 0, first.Cols, first.Rows);   // FDP warps each frame instead (ProcessInputs)
            case FaceMode.Haar: return FaceDetector.Detect(first, settings.Cascade, settings.Margin);
        }
        int at = apex >= 0 ? apex : onset;
        var frame = frames[at];
        string name = apex >= 0 ? "the apex frame" : "the onset frame";
        try
        {
            landmarks = LandmarkFaceFinder.Find(frame, settings.Cascade, ShapePredictor.Shared(settings.LandmarksModelPath), name);
            return FaceCrops.FitInside(FaceCrops.SlsttSquare(landmarks.Points), frame.Cols, frame.Rows);
        }
        catch (Exception e) when (e is FaceNotFoundException or ArgumentException)
        {
            if (settings.FaceFallback) return FaceDetector.Detect(first, settings.Cascade, settings.Margin);
            throw e as FaceNotFoundException ?? new FaceNotFoundException($"no sensible landmarks in {name}: {e.Message}");
        }
    }

    /// <summary>Area-averages a from×from flow component to to×to, in output-pixel units (scaled by to/from).</summary>
    static float[] Downsample(float[] f, int from, int to)
    {
        using var src = new Mat(from, from, MatType.CV_32F);
        src.SetArray(f);
        using var dst = new Mat();
        Cv2.Resize(src, dst, new Size(to, to), 0, 0, InterpolationFlags.Area);
        var r = new float[to * to];
        dst.GetArray(out float[] values);
        float scale = (float)to / from;
        for (int i = 0; i < r.Length; i++) r[i] = values[i] * scale;
        return r;
    }

    /// <summary>The index in onset+1..offset with the largest mean Farneback magnitude from the onset (onset itself for a one-frame clip).</summary>
    static int EstimateApex(int onset, int offset, Func<int, Mat> gray, bool removeGlobal)
    {
        if (offset == onset) return onset;
        var g0 = gray(onset);
        int side = Math.Min(64, g0.Cols);
        using var a = new Mat();
        Cv2.Resize(g0, a, new Size(side, side), 0, 0, InterpolationFlags.Area);
        int best = onset + 1;
        double bestMag = -1;
        for (int i = onset + 1; i <= offset; i++)
        {
            using var b = new Mat();
            Cv2.Resize(gray(i), b, new Size(side, side), 0, 0, InterpolationFlags.Area);
            var (u, v) = OpticalFlow.Farneback(a, b);
            if (removeGlobal) GlobalMotion.RemoveAffine(u, v, side, side); // head drift is not the expression
            double sum = 0;
            for (int k = 0; k < u.Length; k++) sum += Math.Sqrt(u[k] * u[k] + v[k] * v[k]);
            if (sum > bestMag) { bestMag = sum; best = i; }
        }
        return best;
    }

    /// <summary>A precomputed motion image (one per clip, T = 1): BGR → RGB, resized to S×S, values / 255 in [0, 1]. Grayscale images repeat over the three channels.</summary>
    public static float[] ProcessImage(Mat image, int size, out int t, out int c, out int h, out int w)
    {
        if (image.Empty()) throw new ArgumentException("the motion image is empty");
        using var bgr = new Mat();
        if (image.Channels() == 1) Cv2.CvtColor(image, bgr, ColorConversionCodes.GRAY2BGR);
        else if (image.Channels() == 4) Cv2.CvtColor(image, bgr, ColorConversionCodes.BGRA2BGR);
        else image.CopyTo(bgr);
        t = 1; c = 3; h = size; w = size;
        return RgbPlanes(bgr, size);
    }
}
