using MicroExpr.Data.Annotations;
using OpenCvSharp;

namespace MicroExpr.Data.Frames;

/// <summary>The frames of a clip's onset..offset range, loaded, with the apex as an index into them (-1 unknown).</summary>
public sealed class LoadedClip(List<Mat> frames, int apex, IReadOnlyList<Point2d[]?>? landmarks = null) : IDisposable
{
    public List<Mat> Frames { get; } = frames;
    /// <summary>0-based index of the apex in <see cref="Frames"/> (whose first frame is the onset), or -1.</summary>
    public int Apex { get; } = apex;
    /// <summary>
    /// Per loaded frame, its 68 landmarks from the clip's <see cref="Faces.LandmarkFile"/> (null for a frame the file does
    /// not list); null when the clip has no such file (videos never do).
    /// </summary>
    public IReadOnlyList<Point2d[]?>? Landmarks { get; } = landmarks;

    public void Dispose()
    {
        foreach (var f in Frames) f.Dispose();
    }
}

/// <summary>Reads a <see cref="ClipSource"/>'s frames from a folder or a video, onset to offset only.</summary>
public static class ClipLoader
{
    /// <summary>Throws <see cref="InvalidDataException"/> naming the file when a frame cannot be read (missing, corrupt).</summary>
    public static LoadedClip Load(ClipSource clip, CancellationToken ct = default) => clip.Kind switch
    {
        SourceKind.FrameFolder => FromFolder(clip, ct),
        SourceKind.Video => FromVideo(clip, ct),
        _ => throw new ArgumentException($"{clip.Path}: a motion image has no frames to load"),
    };

    /// <summary>Throws <see cref="InvalidDataException"/> naming both files when a frame's size differs from the clip's first frame.</summary>
    public static void CheckSameSize(Mat first, string firstName, Mat frame, string name)
    {
        if (frame.Cols != first.Cols || frame.Rows != first.Rows)
            throw new InvalidDataException($"{name}: frame is {frame.Cols}x{frame.Rows}, the clip's first frame {firstName} is {first.Cols}x{first.Rows}; a clip's frames must share one size");
    }

    /// <summary>The one message for a clip too short to have motion, shared by preprocess and predict.</summary>
    public static string TooShort(string where, int frames) => $"{where}: a clip needs at least 2 frames from onset to offset, found {frames}";

    static LoadedClip FromFolder(ClipSource clip, CancellationToken ct)
    {
        if (!Directory.Exists(clip.Path)) throw new InvalidDataException($"missing frames: folder {clip.Path} not found");
        var files = FrameFolder.List(clip.Path);
        if (files.Count == 0) throw new InvalidDataException($"missing frames: no jpg/bmp/png images in {clip.Path}");
        int lo = clip.Onset < 0 ? 0 : files.ToList().FindIndex(f => f.Number == clip.Onset);
        int hi = clip.Offset < 0 ? files.Count - 1 : files.ToList().FindIndex(f => f.Number == clip.Offset);
        if (lo < 0 || hi < 0 || hi < lo)
            throw new InvalidDataException($"missing frames: onset {clip.Onset} / offset {clip.Offset} not in {clip.Path} (frames {FrameFolder.Range(files)})");
        if (hi == lo) throw new InvalidDataException(TooShort(clip.Path, 1));
        int apex = -1;
        if (clip.Apex >= 0)
        {
            // The first frame numbered at or after the apex (numbers may have gaps).
            apex = Enumerable.Range(lo, hi - lo + 1).FirstOrDefault(i => files[i].Number >= clip.Apex, hi) - lo;
        }
        var frames = new List<Mat>(hi - lo + 1);
        try
        {
            for (int i = lo; i <= hi; i++)
            {
                ct.ThrowIfCancellationRequested();
                var m = Cv2.ImRead(files[i].Path, ImreadModes.Color);
                if (m.Empty())
                {
                    m.Dispose();
                    throw new InvalidDataException($"cannot read image {files[i].Path} (corrupt or not an image)");
                }
                frames.Add(m);
                if (i > lo) CheckSameSize(frames[0], files[lo].Path, m, files[i].Path);
            }
        }
        catch
        {
            foreach (var f in frames) f.Dispose();
            throw;
        }
        IReadOnlyList<Point2d[]?>? landmarks = null;
        string file = Path.Combine(clip.Path, Faces.LandmarkFile.FileName);
        if (File.Exists(file))
        {
            try
            {
                var byFrame = Faces.LandmarkFile.Read(file);
                landmarks = Enumerable.Range(lo, hi - lo + 1).Select(i => byFrame.GetValueOrDefault(files[i].Number)).ToList();
            }
            catch
            {
                foreach (var f in frames) f.Dispose();
                throw;
            }
        }
        return new LoadedClip(frames, apex, landmarks);
    }

    static LoadedClip FromVideo(ClipSource clip, CancellationToken ct)
    {
        if (!File.Exists(clip.Path)) throw new InvalidDataException($"missing frames: video {clip.Path} not found");
        using var cap = new VideoCapture(clip.Path);
        if (!cap.IsOpened()) throw new InvalidDataException($"cannot open video {clip.Path} (corrupt or an unsupported codec)");
        // Video frames are numbered 1, 2, ...: keep onset..offset.
        int onset = clip.Onset < 1 ? 1 : clip.Onset, offset = clip.Offset < 1 ? int.MaxValue : clip.Offset;
        var frames = new List<Mat>();
        try
        {
            for (int number = 1; number <= offset; number++)
            {
                ct.ThrowIfCancellationRequested();
                var m = new Mat();
                if (!cap.Read(m) || m.Empty())
                {
                    m.Dispose();
                    break;
                }
                if (number < onset) m.Dispose(); else frames.Add(m);
            }
            if (frames.Count == 0) throw new InvalidDataException($"video {clip.Path} has no frames from {onset} on");
            if (offset != int.MaxValue && frames.Count < offset - onset + 1)
                throw new InvalidDataException($"video {clip.Path} ends at frame {onset + frames.Count - 1}, before the offset {offset}");
        }
        catch
        {
            foreach (var f in frames) f.Dispose();
            throw;
        }
        int apex = clip.Apex >= onset ? Math.Min(clip.Apex - onset, frames.Count - 1) : -1;
        return new LoadedClip(frames, apex);
    }
}
