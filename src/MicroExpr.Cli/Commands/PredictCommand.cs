using System.Globalization;
using System.Text.Json;
using MicroExpr.Cli.Args;
using MicroExpr.Cli.Explain;
using MicroExpr.Data;
using MicroExpr.Data.Frames;
using MicroExpr.Models;
using MicroExpr.Tensors;
using MicroExpr.Tensors.Autograd;
using MicroExpr.Training;
using OpenCvSharp;

namespace MicroExpr.Cli.Commands;

/// <summary>
/// <c>microexpr predict</c>: one clip (a video file or a folder of frames) → face crop and the kinds the model reads
/// (motion, RGB or grey face frames, dynamic image) exactly as the run's training cache was made → the run's final
/// model → class probabilities.
/// </summary>
internal static class PredictCommand
{
    public static CommandSpec Spec { get; } = new("predict",
        "Class probabilities for one clip (video or frame folder) with the model of a training run.",
        [
            new("model", OptionKind.Text, "training run folder (uses RUN/final/model.safetensors) or a model .safetensors file"),
            new("video", OptionKind.Text, "video file (mp4, avi, ...)"),
            new("frames", OptionKind.Text, "folder of frames (jpg, bmp, png; numeric order from the file names)"),
            new("onset", OptionKind.Int, "onset frame: the number in the file name for --frames (as in CASME II), the 0-based index for --video", null, 0),
            new("apex", OptionKind.Int, "apex frame (estimated as the frame of largest motion when not given)", null, 0),
            new("offset", OptionKind.Int, "offset frame (default: the last frame)", null, 0),
            new("device", OptionKind.Text, "auto, cpu, cuda or ilgpu-cpu", "auto"),
            new("json", OptionKind.Switch, "print one JSON line with the probabilities"),
            new("profile", OptionKind.Switch, "time preprocessing and every backend op kind of the forward pass"),
            Bench.ProfileReport.RooflineOption,
            Bench.ProfileReport.TraceOption,
            new("face", OptionKind.Text, "haar | landmarks | none: override the run's face crop (default: the crop the run's cache was made with; another one warns, since the model was not trained on it)"),
            new("no-face-detect", OptionKind.Switch, "an alias of --face none (the whole frame is the face)"),
            new("landmarks-model", OptionKind.Text, "dlib's 68-point model, for a run whose cache used --face landmarks (default: the path it was made with)"),
            new("explain", OptionKind.Text, "DIR: also write the model's attention maps for this clip (PNGs and attention.html, as attention-map) into DIR"),
        ]);

    public static int Run(IReadOnlyList<string> args)
    {
        if (!ArgParser.ParseOrHelp(Spec, args, out var a)) return Entry.Ok;
        string modelArg = a.Text("model") ?? throw new CliUsageException("predict: --model RUN is required");
        string? video = a.Text("video"), framesDir = a.Text("frames");
        if ((video is null) == (framesDir is null)) throw new CliUsageException("predict: give exactly one of --video FILE or --frames DIR");
        var device = DeviceOption.Resolve(a);
        CheckOrder(a); // the numbers as given, before anything is loaded

        var (modelPath, settings, classes, _) = Locate(modelArg);
        if (a.Text("landmarks-model") is { } lm) settings = settings with { LandmarksModel = lm };
        if (Face(a) is { } face && face != settings.EffectiveFace)
        {
            Console.Error.WriteLine($"predict: warning: --face {Name(face)} differs from the crop the run was trained on ({Name(settings.EffectiveFace)}); " +
                                    "the model has not seen such input and its evaluation does not describe these predictions");
            settings = settings with { FaceDetect = face != FaceMode.None, Face = face == FaceMode.None ? settings.Face : face };
        }
        using var model = Weights.LoadModel(modelPath);
        var kinds = Kinds(model.Config, modelPath);
        model.To(device);

        string? explain = a.Text("explain");
        if (explain != null && model is not IAttentionModel) throw AttentionMapCommand.NoAttention(model.Config, modelPath);
        using var clip = LoadFrames(a, framesDir, video, settings);
        {
            var (frames, onset, apex, offset) = (clip.Frames, clip.Onset, clip.Apex, clip.Offset);
            var pre = System.Diagnostics.Stopwatch.StartNew();
            IReadOnlyDictionary<InputKind, ClipTensor> tensors;
            IReadOnlyDictionary<CacheInputs, ClipTensor> display;
            try
            {
                tensors = Inputs(frames, onset, apex, offset, settings, model.Config, modelPath, out display, explain != null, clip.Landmarks);
            }
            catch (FaceNotFoundException)
            {
                throw new InvalidDataException($"{framesDir ?? video}: no face found (--face {Name(settings.EffectiveFace)}, the crop the run was trained on); " +
                    "give frames where the face is frontal and visible, or --face none for frames that are already face crops");
            }
            double preMs = pre.Elapsed.TotalMilliseconds;
            float[] probs;
            string? roofline = a.Text("roofline");
            Bench.ProfileReport.CheckRoofline(roofline, device, CpuThreads.Count);
            string? trace = a.Text("trace");
            Bench.ProfileReport.CheckTrace(trace);
            bool profile = a.Switch("profile") || roofline != null || trace != null;
            OpProfiler.Reset();
            OpProfiler.Enabled = profile;
            OpTrace.Enabled = trace != null;
            var fwd = System.Diagnostics.Stopwatch.StartNew();
            using (GradMode.NoGrad())
            using (new TensorScope())
            {
                model.Training = false;
                var batch = new ModelBatch(tensors.ToDictionary(p => p.Key, p => Tensor.FromSpan(p.Value.Data, [1, p.Value.T, p.Value.C, p.Value.H, p.Value.W], device)));
                probs = model.Forward(batch).Logits.Softmax().ToArray();
                OpProfiler.Enabled = false;
                if (explain != null)
                {
                    var page = AttentionMapReport.Write(explain, ((IAttentionModel)model).Attention(batch), display, classes, probs, clip.Name);
                    Console.Error.WriteLine($"predict: attention maps in {page}");
                }
            }
            OpProfiler.Enabled = false;
            if (trace != null) Bench.ProfileReport.WriteTrace(trace, $"microexpr predict {model.Config.Name}", Console.Error);
            if (roofline != null)
                Bench.ProfileReport.WriteRoofline(roofline, OpProfiler.Snapshot(), device, CpuThreads.Count, $"one forward pass of {model.Config.Name}", Console.Error);
            if (a.Switch("profile"))
            {
                Console.Error.WriteLine($"preprocessing (face crop, {CacheInputNames.Names(kinds)}): {preMs.ToString("F1", CultureInfo.InvariantCulture)} ms");
                Bench.ProfileReport.Write(Console.Error, OpProfiler.Snapshot(), fwd.Elapsed.TotalMilliseconds, CpuThreads.Count, device,
                    $"one forward pass of {model.Config.Name} ({device.Name}; the first call includes JIT compilation)");
            }
            if (probs.Any(q => !float.IsFinite(q)))
                throw new InvalidDataException($"{modelPath}: the model's output is not finite (NaN or infinity) for this clip; its weights are damaged or training diverged, so no prediction is printed");
            int best = Array.IndexOf(probs, probs.Max());
            if (a.Switch("json"))
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(new
                {
                    predicted = classes[best],
                    probabilities = classes.Select((name, i) => (name, i)).ToDictionary(x => x.name, x => Math.Round(probs[x.i], 4)),
                }));
            }
            else
            {
                Console.Out.WriteLine($"predicted: {classes[best]}");
                for (int i = 0; i < classes.Count; i++)
                    Console.Out.WriteLine($"  {classes[i],-12} {probs[i].ToString("F3", CultureInfo.InvariantCulture)} {new string('#', (int)Math.Round(probs[i] * 30))}");
            }
            return Entry.Ok;
        }
    }

    /// <summary>One clip's frames as read (BGR Mats, disposed with it), its onset, apex and offset indices (−1: not given) and a name.</summary>
    internal sealed class LoadedClip(List<Mat> frames, int onset, int apex, int offset, string name, IReadOnlyList<Point2d[]?>? landmarks = null) : IDisposable
    {
        /// <summary>Each frame's 68 landmarks from the folder's landmarks file (FDP's alignment), or null without one.</summary>
        public IReadOnlyList<Point2d[]?>? Landmarks { get; } = landmarks;
        public List<Mat> Frames { get; } = frames;
        public int Onset { get; } = onset;
        public int Apex { get; } = apex;
        public int Offset { get; } = offset;
        public string Name { get; } = name;

        public void Dispose()
        {
            foreach (var m in Frames) m.Dispose();
        }
    }

    /// <summary>
    /// The frames of <c>--frames DIR</c> (numeric order, --onset/--apex/--offset as the numbers in the file names) or of
    /// <c>--video FILE</c> (only onset..offset decoded, 0-based indices, downscaled to <see cref="VideoMaxSide"/>); with
    /// <paramref name="settings"/> of FDP's per-frame alignment, also the folder's landmarks file when there is one.
    /// </summary>
    internal static LoadedClip LoadFrames(ParsedArgs a, string? framesDir, string? video, PreprocessSettings settings)
    {
        var frames = new List<Mat>();
        List<Point2d[]?>? landmarks = null;
        try
        {
            int onset = 0, apex = -1, offset = -1;
            if (framesDir != null)
            {
                if (!Directory.Exists(framesDir)) throw new DirectoryNotFoundException($"{framesDir}: frames folder not found");
                var files = FrameFolder.List(framesDir);
                if (files.Count < 2) throw new InvalidDataException(ClipLoader.TooShort(framesDir, files.Count));
                int Index(string name)
                {
                    if (!a.Has(name)) return -1;
                    int number = a.Int(name, 0);
                    int i = files.ToList().FindIndex(f => f.Number == number);
                    if (i < 0) throw new CliUsageException($"--{name} {number}: no frame with that number in {framesDir} (frames {FrameFolder.Range(files)})");
                    return i;
                }
                onset = Math.Max(0, Index("onset"));
                apex = Index("apex");
                offset = Index("offset");
                if ((offset < 0 ? files.Count - 1 : offset) == onset) throw new InvalidDataException(ClipLoader.TooShort(framesDir, 1));
                foreach (var f in files)
                {
                    var m = Cv2.ImRead(f.Path, ImreadModes.Color);
                    if (m.Empty())
                    {
                        m.Dispose();
                        throw new InvalidDataException($"{f.Path}: not a readable image");
                    }
                    frames.Add(m);
                    if (frames.Count > 1) ClipLoader.CheckSameSize(frames[0], files[0].Path, m, f.Path);
                }
                // FDP's alignment reads the folder's landmarks file when there is one (as preprocess does).
                string lmFile = Path.Combine(framesDir, MicroExpr.Data.Faces.LandmarkFile.FileName);
                if (settings.EffectiveFace == FaceMode.Fdp && File.Exists(lmFile))
                {
                    var byFrame = MicroExpr.Data.Faces.LandmarkFile.Read(lmFile);
                    landmarks = files.Select(f => byFrame.GetValueOrDefault(f.Number)).ToList();
                }
            }
            else
            {
                if (!File.Exists(video)) throw new FileNotFoundException($"{video}: file not found", video);
                using var cap = new VideoCapture(video!);
                if (!cap.IsOpened()) throw new InvalidDataException($"{video}: OpenCV cannot open this video");
                int first = a.Int("onset", 0);
                int givenApex = a.Has("apex") ? a.Int("apex", 0) : -1, givenOffset = a.Has("offset") ? a.Int("offset", 0) : -1;
                // Only onset..offset is decoded and kept (frames before the onset are skipped undecoded), each frame
                // downscaled as it is read: a long 4K video costs what its clip costs at VideoMaxSide.
                int index = 0;
                while (givenOffset < 0 || index <= givenOffset)
                {
                    if (index < first)
                    {
                        if (!cap.Grab()) break;
                        index++;
                        continue;
                    }
                    var m = new Mat();
                    if (!cap.Read(m) || m.Empty()) { m.Dispose(); break; }
                    frames.Add(Downscaled(m));
                    index++;
                }
                if (first >= index || givenOffset >= index || givenApex >= index)
                    throw new CliUsageException($"--onset/--apex/--offset must be below the video's {index} frames");
                onset = 0;
                apex = givenApex < 0 ? -1 : givenApex - first;
                offset = givenOffset < 0 ? -1 : givenOffset - first;
                if (frames.Count < 2) throw new InvalidDataException(ClipLoader.TooShort(video!, frames.Count));
            }
            return new LoadedClip(frames, onset, apex, offset, Path.GetFileName(Path.TrimEndingDirectorySeparator(framesDir ?? video!)), landmarks);
        }
        catch
        {
            foreach (var m in frames) m.Dispose();
            throw;
        }
    }

    /// <summary>The cache kinds a model's inputs are (targets are training-only); one that frames cannot give is refused.</summary>
    internal static CacheInputs Kinds(IMerModelConfig config, string modelPath)
    {
        var kinds = CacheInputs.None;
        foreach (var input in config.Inputs)
            kinds |= CacheKinds.ToCache(input.Kind) ?? throw new NotSupportedException(
                $"{modelPath}: model {config.Name} reads {InputShape.Describe(input.Kind)}, which predict cannot compute from frames");
        return kinds;
    }

    /// <summary>
    /// The model's inputs for one clip: the kinds it reads, computed from the frames by the pipeline the cache was made
    /// with (<see cref="MotionPipeline.ProcessInputs"/>) under the cache's recorded settings (its face box, selection, and
    /// for the dynamic image the frames it pooled), each checked against the shape the model declares.
    /// </summary>
    internal static IReadOnlyDictionary<InputKind, ClipTensor> Inputs(IReadOnlyList<Mat> frames, int onset, int apex, int offset, PreprocessSettings settings,
        IMerModelConfig config, string modelPath, IReadOnlyList<Point2d[]?>? landmarks = null) =>
        Inputs(frames, onset, apex, offset, settings, config, modelPath, out _, false, landmarks);

    /// <summary>
    /// As above; with <paramref name="forDisplay"/> the motion frames and the RGB face frames are computed too (same face
    /// box and selection), for drawing attention over them, and returned in <paramref name="display"/> with every kind computed.
    /// <paramref name="landmarks"/>: each frame's 68 points from the clip folder's landmarks file (FDP's alignment), or null.
    /// </summary>
    internal static IReadOnlyDictionary<InputKind, ClipTensor> Inputs(IReadOnlyList<Mat> frames, int onset, int apex, int offset, PreprocessSettings settings,
        IMerModelConfig config, string modelPath, out IReadOnlyDictionary<CacheInputs, ClipTensor> display, bool forDisplay,
        IReadOnlyList<Point2d[]?>? landmarks = null)
    {
        var tensors = MotionPipeline.ProcessInputs(frames, onset, apex, offset, settings,
            Kinds(config, modelPath) | (forDisplay ? CacheInputs.Motion | CacheInputs.Rgb : CacheInputs.None), landmarks);
        display = tensors;
        var result = new Dictionary<InputKind, ClipTensor>();
        foreach (var input in config.Inputs)
        {
            var x = tensors[CacheKinds.ToCache(input.Kind)!.Value];
            if (x.H != input.Size || x.C != input.Channels || input.Frames != 0 && x.T != input.Frames)
                throw new InvalidDataException($"{modelPath}: the model takes {input}, the cache settings give [T={x.T}, {x.C}, {x.H}, {x.W}]");
            result[input.Kind] = x;
        }
        return result;
    }

    /// <summary>
    /// Checks --onset ≤ --apex ≤ --offset as the user gave them (frame numbers for --frames, 0-based indices for
    /// --video), before any is turned into an internal index, so the message repeats the numbers given.
    /// </summary>
    /// <summary>Video frames are downscaled (area average) so their longer side is at most this; face crops are far smaller.</summary>
    public const int VideoMaxSide = 1280;

    /// <summary><paramref name="m"/>, or a copy whose longer side is <see cref="VideoMaxSide"/> (the original is disposed).</summary>
    private static Mat Downscaled(Mat m)
    {
        int side = Math.Max(m.Cols, m.Rows);
        if (side <= VideoMaxSide) return m;
        double f = (double)VideoMaxSide / side;
        var small = new Mat();
        Cv2.Resize(m, small, new Size(Math.Max(1, (int)Math.Round(m.Cols * f)), Math.Max(1, (int)Math.Round(m.Rows * f))), 0, 0, InterpolationFlags.Area);
        m.Dispose();
        return small;
    }

    private static void CheckOrder(ParsedArgs a)
    {
        int? Given(string name) => a.Has(name) ? a.Int(name, 0) : null;
        int? onset = Given("onset"), apex = Given("apex"), offset = Given("offset");
        if (onset is int o && offset is int f && f < o) throw new CliUsageException($"predict: --offset {f} is before --onset {o}");
        if (apex is int x && onset is int o2 && x < o2) throw new CliUsageException($"predict: --apex {x} is before --onset {o2}");
        if (apex is int y && offset is int f2 && y > f2) throw new CliUsageException($"predict: --apex {y} is after --offset {f2}");
    }

    /// <summary>The model file, the preprocessing settings its training cache used, and the class names.</summary>
    internal static (string Model, PreprocessSettings Settings, IReadOnlyList<string> Classes, string Data) Locate(string arg)
    {
        string run = Directory.Exists(arg) ? arg : Path.GetDirectoryName(Path.GetDirectoryName(Path.GetFullPath(arg)))!;
        string model = Directory.Exists(arg) ? Path.Combine(LosoRunner.FinalDir(arg), FoldTrainer.FinalModelFile) : arg;
        if (!File.Exists(model))
            throw new FileNotFoundException($"{model}: no final model; train the run without --fold and without --no-final", model);
        string optionsPath = Path.Combine(run, LosoRunner.OptionsFile);
        if (!File.Exists(optionsPath)) throw new FileNotFoundException($"{optionsPath}: the run's options are missing (needed to find its preprocessing settings)", optionsPath);
        var record = JsonSerializer.Deserialize<RunRecord>(File.ReadAllText(optionsPath)) ?? throw new InvalidDataException($"{optionsPath}: unreadable");
        var cache = PreprocessedCache.Open(record.Data);
        var settings = cache.Settings ?? throw new InvalidDataException($"{record.Data}: the cache does not record its settings (made by an older version); preprocess it again");
        return (model, settings, record.ClassNames, record.Data);
    }

    /// <summary><c>--face</c> (or its alias <c>--no-face-detect</c>), null when neither is given.</summary>
    internal static FaceMode? Face(ParsedArgs a)
    {
        FaceMode? face = a.Text("face") is { } f
            ? f.ToLowerInvariant() switch
            {
                "haar" => FaceMode.Haar,
                "landmarks" => FaceMode.Landmarks,
                "fdp" => FaceMode.Fdp,
                "none" => FaceMode.None,
                _ => throw new CliUsageException($"option --face expects haar, landmarks, fdp or none, got '{f}'"),
            }
            : null;
        if (!a.Switch("no-face-detect")) return face;
        if (face is { } g && g != FaceMode.None) throw new CliUsageException($"--no-face-detect (= --face none) contradicts --face {a.Text("face")}");
        return FaceMode.None;
    }

    private static string Name(FaceMode m) => m.ToString().ToLowerInvariant();
}
