using System.Security.Cryptography;
using System.Text;
using MicroExpr.Data.Annotations;
using MicroExpr.Data.Frames;
using MicroExpr.Data.Motion;
using OpenCvSharp;

namespace MicroExpr.Data.Cache;

/// <summary>What a preprocessing run did: clips computed now, reused from an earlier run, and failed (with reasons).</summary>
public sealed record PreprocessResult(int Computed, int Reused, IReadOnlyList<SkippedRow> Failed, IReadOnlyList<ClipSource> FailedClips, string IndexPath)
{
    /// <summary>Clips dropped by design (too short for FDP's selection, no usable apex for SLSTT's released one): listed among the index's skipped rows, not failures.</summary>
    public IReadOnlyList<SkippedRow> Dropped { get; init; } = [];
    public IReadOnlyList<ClipSource> DroppedClips { get; init; } = [];
}

/// <summary>
/// Runs <see cref="MotionPipeline"/> over a reader's clips into a cache folder: <c>OUT/clips/NAME-HASH[.KIND].mxt</c> per
/// clip and stored kind (<see cref="PreprocessSettings.Inputs"/>; <see cref="TensorFile"/>, each with its checksum in the
/// index) and <c>OUT/index.json</c> (version 3). HASH covers the clip's identity (source, frame range) and the
/// settings' hash, so a changed setting never reuses a file made with another. Files are written to a temporary name and
/// renamed; a file under its final name is complete, so a rerun reuses it (an interrupted run loses nothing finished)
/// once its checksum is verified (a damaged file is recomputed), and leftover temporary files are deleted at the start.
/// A run holds <see cref="CacheLock"/> on OUT from start to end: a second run into the same OUT at the same time is
/// refused ("in use by pid N"), so it can neither delete the first run's temporary files nor overwrite its index. A clip
/// that fails (missing or corrupt frame, no face) is listed with its reason and the others go on. The index is written
/// at the end, also when cancelled, with every finished clip and its checksum.
/// </summary>
public static class Preprocessor
{
    public const string ClipFolder = "clips";
    public const string Extension = ".mxt";

    /// <param name="workers">clips processed in parallel (≤ 0: the logical core count)</param>
    /// <param name="progress">called after each clip with (done, total), from worker threads</param>
    public static PreprocessResult Run(ClipList list, PreprocessSettings settings, string outDir, int workers = 0,
        Action<int, int>? progress = null, CancellationToken ct = default)
    {
        settings.Validate();
        if (settings.Encoding == MotionEncoding.UvsStretched && list.Clips.FirstOrDefault(c => c.Kind != SourceKind.MotionImage) is { } frames)
            throw new ArgumentException($"--encoding uvs-stretched describes precomputed motion images; {frames.Path} is frames to compute flow from (use uvs)");
        // (FDP alignment reads the clips' landmark files first and needs the cascade only for a frame without one: not checked here.)
        if (settings.FaceDetect && settings.EffectiveFace != FaceMode.Fdp && list.Clips.Any(c => c.Kind != SourceKind.MotionImage))
            FaceDetector.Cascade(settings.Cascade); // a missing cascade fails now, once, with the fix
        if (settings.EffectiveFace == FaceMode.Landmarks && list.Clips.Any(c => c.Kind != SourceKind.MotionImage))
            Faces.ShapePredictor.Shared(settings.LandmarksModelPath); // so does a missing landmark model
        string clipDir = Path.Combine(outDir, ClipFolder);
        using var exclusive = CacheLock.Acquire(outDir);
        Directory.CreateDirectory(clipDir);
        // Only this run writes here now: temporary files left are a killed run's.
        foreach (var tmp in Directory.EnumerateFiles(clipDir, "*" + TensorFile.TempSuffix))
        {
            try { File.Delete(tmp); } catch (IOException) { }
        }
        foreach (var tmp in Directory.EnumerateFiles(outDir, CacheIndex.FileName + ".*" + TensorFile.TempSuffix))
        {
            try { File.Delete(tmp); } catch (IOException) { }
        }

        int n = list.Clips.Count;
        var entries = new IndexClip?[n];
        var failures = new SkippedRow?[n];
        var dropped = new SkippedRow?[n];
        int computed = 0, reused = 0, done = 0;
        int oldThreads = Cv2.GetNumThreads();
        int degree = workers > 0 ? workers : Environment.ProcessorCount;
        if (degree > 1) Cv2.SetNumThreads(1); // parallel over clips; OpenCV's own threads would oversubscribe
        try
        {
            Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = degree, CancellationToken = ct }, i =>
            {
                var clip = list.Clips[i];
                try
                {
                    // One file per stored kind; a rerun reuses every complete, verified file and computes only the others.
                    var kinds = CacheInputNames.Each(settings.StoredInputs);
                    var names = kinds.ToDictionary(k => k, k => FileName(clip, settings, k));
                    var headers = new Dictionary<CacheInputs, TensorFileInfo>();
                    var missing = CacheInputs.None;
                    foreach (var k in kinds)
                    {
                        if (TensorFile.Verify(Path.Combine(clipDir, names[k])) is { } h) headers[k] = h;
                        else missing |= k;
                    }
                    if (missing == CacheInputs.None) Interlocked.Increment(ref reused);
                    else
                    {
                        foreach (var (k, h) in Compute(clip, settings, missing, k => Path.Combine(clipDir, names[k]), ct)) headers[k] = h;
                        Interlocked.Increment(ref computed);
                    }
                    entries[i] = new IndexClip
                    {
                        Subject = clip.Subject, Label = clip.Label, LabelName = clip.LabelName, Dataset = clip.Dataset, Clip = clip.Clip,
                        Source = clip.Path, Onset = clip.Onset, Apex = clip.Apex, Offset = clip.Offset, ActionUnits = clip.ActionUnits ?? "",
                        Inputs = kinds.Select(k => new IndexInput
                        {
                            Kind = CacheInputNames.Name(k), File = ClipFolder + "/" + names[k], Frames = headers[k].T, Channels = headers[k].C,
                            Height = headers[k].H, Width = headers[k].W, Checksum = headers[k].ChecksumText,
                        }).ToList(),
                    };
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    throw;
                }
                catch (ClipDroppedException e)
                {
                    dropped[i] = new SkippedRow(clip.Row > 0 ? clip.AnnotationFile : clip.Path, clip.Row, $"{clip.Dataset} {clip.Subject}/{clip.Clip}: {e.Message}");
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    failures[i] = new SkippedRow(clip.Row > 0 ? clip.AnnotationFile : clip.Path, clip.Row, $"{clip.Dataset} {clip.Subject}/{clip.Clip}: {e.Message}");
                }
                progress?.Invoke(Interlocked.Increment(ref done), n);
            });
        }
        finally
        {
            if (degree > 1) Cv2.SetNumThreads(oldThreads);
            var index = new CacheIndex
            {
                Settings = settings.Canonical,
                Parameters = settings,
                SettingsHash = settings.Hash,
                Description = settings.Describe(),
                Dataset = list.Dataset,
                ClassNames = list.ClassNames.ToList(),
                Clips = entries.Where(e => e != null).Select(e => e!).ToList(),
                Skipped = list.Skipped.Concat(dropped.Where(f => f != null).Select(f => f!)).Concat(failures.Where(f => f != null).Select(f => f!))
                    .Select(s => new IndexSkip { File = s.File, Row = s.Row, Reason = s.Reason }).ToList(),
            };
            index.Save(outDir);
        }
        return new PreprocessResult(computed, reused, failures.Where(f => f != null).Select(f => f!).ToList(),
            Enumerable.Range(0, n).Where(i => failures[i] != null).Select(i => list.Clips[i]).ToList(), Path.Combine(outDir, CacheIndex.FileName))
        {
            Dropped = dropped.Where(f => f != null).Select(f => f!).ToList(),
            DroppedClips = Enumerable.Range(0, n).Where(i => dropped[i] != null).Select(i => list.Clips[i]).ToList(),
        };
    }

    /// <summary>
    /// <see cref="MotionEncoding.UvsStretched"/> declares channel u (red) min–max stretched to 0..255 per image, which the
    /// flip's u → 1 − u relies on: an image whose red channel does not span 0..255 is refused, naming it.
    /// </summary>
    static void CheckStretchedU(Mat bgr, string path)
    {
        using var red = new Mat();
        Cv2.ExtractChannel(bgr, red, 2);
        Cv2.MinMaxLoc(red, out double min, out double max);
        if (min != 0 || max != 255)
            throw new InvalidDataException($"{path}: --encoding uvs-stretched expects channel u (red) stretched to 0..255 per image; its red channel spans {min}..{max}");
    }

    /// <summary>Computes the given kinds of one clip and writes each to its file (<paramref name="path"/>); returns their headers.</summary>
    static Dictionary<CacheInputs, TensorFileInfo> Compute(ClipSource clip, PreprocessSettings settings, CacheInputs kinds, Func<CacheInputs, string> path, CancellationToken ct)
    {
        IReadOnlyDictionary<CacheInputs, ClipTensor> tensors;
        if (clip.Kind == SourceKind.MotionImage)
        {
            if (kinds != CacheInputs.Motion)
                throw new InvalidDataException($"{clip.Path} is a precomputed motion image: it has no face frames, so it cannot give {CacheInputNames.Names(kinds & ~CacheInputs.Motion)} (preprocess frame folders or videos, or --inputs motion)");
            using var img = Cv2.ImRead(clip.Path, ImreadModes.Color);
            if (img.Empty()) throw new InvalidDataException($"cannot read image {clip.Path} (corrupt or not an image)");
            if (settings.Encoding == MotionEncoding.UvsStretched) CheckStretchedU(img, clip.Path);
            var data = MotionPipeline.ProcessImage(img, settings.Size, out int t, out int c, out int h, out int w);
            tensors = new Dictionary<CacheInputs, ClipTensor> { [CacheInputs.Motion] = new(CacheInputs.Motion, data, t, c, h, w) };
        }
        else
        {
            using var loaded = ClipLoader.Load(clip, ct);
            try
            {
                tensors = MotionPipeline.ProcessInputs(loaded.Frames, 0, loaded.Apex, loaded.Frames.Count - 1, settings, kinds, loaded.Landmarks);
            }
            catch (FaceNotFoundException e)
            {
                throw new FaceNotFoundException(e.Message.Replace("the onset frame", $"the onset frame of {clip.Path}", StringComparison.Ordinal)
                    .Replace("the apex frame", $"the apex frame of {clip.Path}", StringComparison.Ordinal));
            }
        }
        ct.ThrowIfCancellationRequested();
        // Every kind is checked before any is written: a clip with one bad tensor leaves no file behind.
        foreach (var x in tensors.Values)
        {
            int bad = TensorFile.IndexOfNonFinite(x.Data);
            if (bad >= 0) throw new InvalidDataException($"{clip.Path}: the {CacheInputNames.Name(x.Kind)} tensor holds a non-finite value ({x.Data[bad]}) at index {bad}; not cached");
        }
        return tensors.Values.ToDictionary(x => x.Kind, x => TensorFile.Write(path(x.Kind), x.Data, x.T, x.C, x.H, x.W));
    }

    /// <summary>
    /// "casme2_sub01_EP02_01f-0123456789abcdef.mxt" (motion; other kinds add ".rgb", ".grey", ".di" before the
    /// extension): a readable prefix and 16 hex digits of SHA-256(identity | source fingerprint | key), where the key is
    /// the settings' hash for motion (<see cref="PreprocessSettings.FileKey"/>: the motion-only settings, so motion files
    /// keep today's names whatever else is stored) and the hash of the kind's own key for the others. The fingerprint
    /// (size and modification time of every source file) makes frames replaced at the same path count as a new clip
    /// instead of reusing the old tensor.
    /// </summary>
    public static string FileName(ClipSource clip, PreprocessSettings settings, CacheInputs kind = CacheInputs.Motion)
    {
        string readable = $"{clip.Dataset}_{clip.Subject}_{clip.Clip}";
        var sb = new StringBuilder();
        foreach (char ch in readable) sb.Append(char.IsAsciiLetterOrDigit(ch) || ch is '-' or '.' or '_' ? ch : '_');
        string prefix = sb.Length > 80 ? sb.ToString(0, 80) : sb.ToString();
        string key = kind == CacheInputs.Motion ? (settings with { Inputs = CacheInputs.Motion }).Hash
            : Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(settings.FileKey(kind))))[..16];
        string hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(clip.Identity + "|" + SourceFingerprint(clip.Path) + "|" + key)))[..16];
        string suffix = kind switch
        {
            CacheInputs.Motion => "",
            CacheInputs.Rgb => ".rgb",
            CacheInputs.Grey => ".grey",
            CacheInputs.DynamicImage => ".di",
            _ => throw new ArgumentException($"not a single cache input kind: {kind}"),
        };
        return $"{prefix}-{hash}{suffix}{Extension}";
    }

    /// <summary>Sizes and modification times of the clip's source files (a folder's files, or the one file); "" when absent.</summary>
    static string SourceFingerprint(string path)
    {
        var sb = new StringBuilder();
        try
        {
            if (Directory.Exists(path))
            {
                foreach (var f in new DirectoryInfo(path).EnumerateFiles().OrderBy(f => f.Name, StringComparer.Ordinal))
                    sb.Append(f.Name).Append(':').Append(f.Length).Append(':').Append(f.LastWriteTimeUtc.Ticks).Append(';');
            }
            else if (File.Exists(path))
            {
                var f = new FileInfo(path);
                sb.Append(f.Length).Append(':').Append(f.LastWriteTimeUtc.Ticks);
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return sb.ToString();
    }
}
