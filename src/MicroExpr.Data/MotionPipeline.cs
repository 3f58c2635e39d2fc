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
    /// <summary>
    /// <paramref name="frames"/>: the clip's frames in order (BGR, BGRA or grayscale Mats; the caller keeps ownership);
    /// <paramref name="onset"/>, <paramref name="apex"/>, <paramref name="offset"/>: 0-based indices into them (apex &lt; 0:
    /// estimated; onset &lt; 0: 0; offset &lt; 0: the last frame). Returns the [T, 3, S, S] tensor.
    /// </summary>
    public static float[] Process(IReadOnlyList<Mat> frames, int onset, int apex, int offset, PreprocessSettings settings, out int t, out int c, out int h, out int w)
    {
        settings.Validate();
        if (frames.Count == 0) throw new ArgumentException("a clip needs at least one frame");
        if (onset < 0) onset = 0;
        if (offset < 0) offset = frames.Count - 1;
        if (onset >= frames.Count || offset >= frames.Count || offset < onset)
            throw new ArgumentException($"onset {onset} and offset {offset} must satisfy 0 <= onset <= offset < {frames.Count} (frame count)");
        if (apex >= 0 && (apex < onset || apex > offset))
            throw new ArgumentException($"apex {apex} outside onset..offset {onset}..{offset}");
        var first = frames[onset];
        if (first.Empty()) throw new ArgumentException($"frame {onset} (onset) is empty");
        Rect box = FaceBox(frames, onset, apex, settings);
        int s = settings.FlowResolution;
        var gray = new Dictionary<int, Mat>();
        try
        {
            Mat Gray(int i)
            {
                if (gray.TryGetValue(i, out var g)) return g;
                var f = frames[i];
                if (f.Empty() || f.Cols < box.Right || f.Rows < box.Bottom)
                    throw new ArgumentException($"frame {i} is empty or smaller ({f.Cols}x{f.Rows}) than the face box {box} of the onset frame");
                using var roi = new Mat(f, box);
                using var gr = FaceDetector.ToGray(roi);
                using var small = new Mat();
                Cv2.Resize(gr, small, new Size(s, s), 0, 0, InterpolationFlags.Area);
                g = new Mat();
                small.ConvertTo(g, MatType.CV_32F);
                gray[i] = g;
                return g;
            }

            if (apex < 0) apex = EstimateApex(onset, offset, Gray, settings.RemoveGlobalMotion);
            var positions = FrameSelector.Select(onset, apex, offset, settings.Frames, settings.Selection);
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
            int size = settings.Size;
            if (s != size)
                for (int i = 0; i < flows.Count; i++) flows[i] = (Downsample(flows[i].U, s, size), Downsample(flows[i].V, s, size));
            t = positions.Length; c = 3; h = size; w = size;
            return MotionEncoder.Encode(flows, size, size, settings.Encoding, (float)settings.FlowScale);
        }
        finally
        {
            foreach (var g in gray.Values) g.Dispose();
        }
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
            case FaceMode.None: return new Rect(0, 0, first.Cols, first.Rows);
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
        t = 1; c = 3; h = size; w = size;
        return o;
    }
}
