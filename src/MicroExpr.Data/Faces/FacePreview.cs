using MicroExpr.Data.Annotations;
using MicroExpr.Data.Frames;
using OpenCvSharp;

namespace MicroExpr.Data.Faces;

/// <summary>
/// <c>preprocess --preview N</c>: one PNG showing, for the first N clips, the frame the face was found on with the
/// landmarks (green dots, nose tip red), the dlib box they were predicted in (blue) and the crop that every frame of the
/// clip gets (yellow), each tile captioned with the clip's name; a clip where no face was found gets a red caption with
/// the reason. For a user to see at a glance that faces were found.
/// </summary>
public static class FacePreview
{
    /// <summary>Writes the preview to <paramref name="path"/>; returns how many tiles show a face.</summary>
    public static int Write(IEnumerable<ClipSource> clips, PreprocessSettings settings, string path, int count = 6, int tile = 256)
    {
        var tiles = new List<Mat>();
        int found = 0;
        try
        {
            foreach (var clip in clips.Where(c => c.Kind != SourceKind.MotionImage).Take(count))
            {
                using var loaded = ClipLoader.Load(clip);
                int apex = loaded.Apex;
                var frame = loaded.Frames[apex >= 0 ? apex : 0];
                using var canvas = new Mat();
                if (frame.Channels() == 1) Cv2.CvtColor(frame, canvas, ColorConversionCodes.GRAY2BGR); else frame.CopyTo(canvas);
                string caption = clip.Clip;
                bool ok = true;
                try
                {
                    var box = MotionPipeline.FaceBox(loaded.Frames, 0, apex, settings, out var lm);
                    double k = Math.Max(1, canvas.Cols / 256.0);
                    if (lm != null)
                    {
                        Cv2.Rectangle(canvas, new Rect(lm.Box.Left, lm.Box.Top, lm.Box.Width, lm.Box.Height), new Scalar(255, 80, 0), (int)Math.Ceiling(k));
                        for (int i = 0; i < lm.Points.Length; i++)
                            Cv2.Circle(canvas, new Point((int)Math.Round(lm.Points[i].X), (int)Math.Round(lm.Points[i].Y)), (int)Math.Ceiling(1.5 * k),
                                i == 30 ? new Scalar(0, 0, 255) : new Scalar(0, 255, 0), -1, LineTypes.AntiAlias);
                    }
                    Cv2.Rectangle(canvas, box, new Scalar(0, 230, 255), (int)Math.Ceiling(k));
                    found++;
                }
                catch (FaceNotFoundException e)
                {
                    caption += ": " + e.Message;
                    ok = false;
                }
                double scale = (double)tile / Math.Max(canvas.Cols, canvas.Rows);
                using var small = new Mat();
                Cv2.Resize(canvas, small, new Size((int)Math.Round(canvas.Cols * scale), (int)Math.Round(canvas.Rows * scale)), 0, 0, InterpolationFlags.Area);
                var t = new Mat(tile + 16, tile, MatType.CV_8UC3, Scalar.All(32));
                using (var roi = new Mat(t, new Rect(0, 0, small.Cols, small.Rows))) small.CopyTo(roi);
                Cv2.PutText(t, caption.Length > 40 ? caption[..40] : caption, new Point(2, tile + 12), HersheyFonts.HersheySimplex, 0.35,
                    ok ? Scalar.All(230) : new Scalar(60, 60, 255), 1, LineTypes.AntiAlias);
                tiles.Add(t);
            }
            if (tiles.Count == 0) throw new InvalidDataException("no clip with frames to preview");
            int cols = Math.Min(3, tiles.Count), rows = (tiles.Count + cols - 1) / cols;
            using var sheet = new Mat(rows * (tile + 16), cols * tile, MatType.CV_8UC3, Scalar.All(32));
            for (int i = 0; i < tiles.Count; i++)
                using (var roi = new Mat(sheet, new Rect(i % cols * tile, i / cols * (tile + 16), tile, tile + 16))) tiles[i].CopyTo(roi);
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            Cv2.ImWrite(path, sheet);
            return found;
        }
        finally
        {
            foreach (var t in tiles) t.Dispose();
        }
    }
}
