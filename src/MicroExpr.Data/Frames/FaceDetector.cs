using System.Collections.Concurrent;
using OpenCvSharp;

namespace MicroExpr.Data.Frames;

/// <summary>No face where one was expected; the message names the frame when known.</summary>
public sealed class FaceNotFoundException(string message) : Exception(message);

/// <summary>
/// Face box with OpenCV's Haar cascade (frontal face): the largest detection on the given frame, grown by a margin on each
/// side and made square around its centre, then kept inside the image (shifted, and shrunk only when the image is smaller).
/// Cascades are loaded once per file and shared; detection is serialised per cascade (CascadeClassifier is not
/// documented as thread-safe).
/// </summary>
public static class FaceDetector
{
    static readonly ConcurrentDictionary<string, CascadeClassifier> Cascades = new();

    /// <summary>Loads (once) the cascade file; throws <see cref="FileNotFoundException"/> with the fix when it is missing or unreadable.</summary>
    public static CascadeClassifier Cascade(string path)
    {
        if (Cascades.TryGetValue(path, out var c)) return c;
        if (!File.Exists(path))
            throw new FileNotFoundException(
                $"Haar cascade {path} not found: install Debian's opencv-data (apt-get install opencv-data) or give --cascade FILE; " +
                "--no-face-detect skips detection for pre-cropped data sets", path);
        var loaded = new CascadeClassifier(path);
        if (loaded.Empty())
        {
            loaded.Dispose();
            throw new FileNotFoundException($"Haar cascade {path} could not be read (not an OpenCV cascade XML file?)", path);
        }
        return Cascades.GetOrAdd(path, loaded);
    }

    /// <summary>The square face box on <paramref name="frame"/> (BGR or grayscale). Throws <see cref="FaceNotFoundException"/> when no face is detected.</summary>
    public static Rect Detect(Mat frame, string cascadePath, double margin, string? frameName = null) =>
        SquareBox(DetectLargest(frame, cascadePath, frameName), margin, frame.Cols, frame.Rows);

    /// <summary>The largest raw Haar detection on <paramref name="frame"/> (equalised grey). Throws <see cref="FaceNotFoundException"/> when none.</summary>
    public static Rect DetectLargest(Mat frame, string cascadePath, string? frameName = null)
    {
        var cascade = Cascade(cascadePath);
        using var gray = ToGray(frame);
        Cv2.EqualizeHist(gray, gray);
        int minSide = Math.Max(24, Math.Min(gray.Rows, gray.Cols) / 6);
        Rect[] faces;
        lock (cascade) faces = cascade.DetectMultiScale(gray, 1.1, 4, HaarDetectionTypes.ScaleImage, new Size(minSide, minSide));
        if (faces.Length == 0)
            throw new FaceNotFoundException($"no face found in {frameName ?? "the onset frame"} (Haar cascade {cascadePath}); use --no-face-detect for pre-cropped data sets");
        return faces.OrderByDescending(f => f.Width * f.Height).First();
    }

    /// <summary>The square of side max(w, h)·(1 + 2·margin) centred on <paramref name="box"/>, moved (and if needed shrunk) inside a W×H image.</summary>
    public static Rect SquareBox(Rect box, double margin, int width, int height)
    {
        int side = (int)Math.Round(Math.Max(box.Width, box.Height) * (1 + 2 * margin));
        side = Math.Min(side, Math.Min(width, height));
        double cx = box.X + box.Width / 2.0, cy = box.Y + box.Height / 2.0;
        int x = Math.Clamp((int)Math.Round(cx - side / 2.0), 0, width - side);
        int y = Math.Clamp((int)Math.Round(cy - side / 2.0), 0, height - side);
        return new Rect(x, y, side, side);
    }

    /// <summary>A new 8-bit (or same-depth) single-channel copy of a BGR, BGRA or grayscale frame.</summary>
    public static Mat ToGray(Mat frame)
    {
        var g = new Mat();
        switch (frame.Channels())
        {
            case 1: frame.CopyTo(g); break;
            case 3: Cv2.CvtColor(frame, g, ColorConversionCodes.BGR2GRAY); break;
            case 4: Cv2.CvtColor(frame, g, ColorConversionCodes.BGRA2GRAY); break;
            default: throw new ArgumentException($"a frame must have 1, 3 or 4 channels, got {frame.Channels()}");
        }
        if (g.Depth() != MatType.CV_8U && g.Depth() != MatType.CV_32F)
        {
            using var tmp = g;
            g = new Mat();
            tmp.ConvertTo(g, MatType.CV_8U);
        }
        return g;
    }
}
