using System.Diagnostics;
using System.Globalization;
using MicroExpr.Cli.Args;
using MicroExpr.Data;
using MicroExpr.Data.ActionUnitCodes;
using MicroExpr.Data.Annotations;
using MicroExpr.Data.Cache;
using MicroExpr.Data.Frames;

namespace MicroExpr.Cli.Commands;

/// <summary><c>microexpr preprocess</c>: a data set as distributed → a cache of per-clip tensors (motion frames, and with <c>--inputs</c> RGB or grey face frames and dynamic images; one file per clip and kind plus an index).</summary>
internal static class PreprocessCommand
{
    public static CommandSpec Spec { get; } = new("preprocess",
        "Read a data set as distributed, crop faces, compute optical flow and write one tensor per clip plus an index.",
        [
            new("dataset", OptionKind.Text, "casme2 | samm | smic | casme3 | composite | manifest"),
            Recipes.Option,
            new("root", OptionKind.Text, "the data set's folder (composite: the folder holding CASME2*, SAMM*, SMIC*; manifest: the CSV or its folder)"),
            new("annotations", OptionKind.Text, "annotation file (default: looked for in ROOT and its parent; manifest: the CSV)"),
            new("out", OptionKind.Text, "cache folder to write (created; a rerun reuses finished clips)"),
            new("inputs", OptionKind.Text, "kinds stored per clip, comma-separated: motion (optical flow frames) | rgb (the face frames, [T, 3, S, S]) | grey ([T, 1, S, S]) | dynamic-image (rank pooling of the frames, grey if stored else rgb, [1, C, S, S])", "motion"),
            new("flow", OptionKind.Text, "farneback | tvl1", "farneback"),
            new("frames", OptionKind.Int, "T, frames per clip", "11", 1),
            new("size", OptionKind.Int, "S, the face crop is resized to SxS", "112", 16),
            new("encoding", OptionKind.Text, "uvs (u, v, optical strain) | hsv (SLSTT's flow image) | hsv8 (SLSTT's image as its code stores it: 8-bit HSV, JPEG round trip) | uvs-stretched (declares precomputed motion images as u, v, strain each stretched to 0..255 per image, as the MEGC2019 composite's; lets --flip map u to 1 - u)", "uvs"),
            new("selection", OptionKind.Text, "apex (T frames centred on the apex, shifted to fit) | uniform (over onset..offset, both ends) | fdp (onset + i·⌊L/T⌋ as FDP's code; clips under T frames dropped) | slstt-released (SLSTT's code: from max(apex − T/2, onset + 1), never shifted, gaps filled by blends; clips without a usable apex dropped)", "apex"),
            new("classes", OptionKind.Text, "native | 3 (negative, positive, surprise); composite and smic are always 3", "native"),
            new("no-face-detect", OptionKind.Switch, "use the whole frame as the face (pre-cropped data sets); an alias of --face none"),
            new("face", OptionKind.Text, "haar (Haar box + margin on the onset frame) | landmarks (SLSTT's square from dlib's 68 landmarks on the apex frame) | fdp (FDP's alignment of every frame by its own landmarks: the clip's landmarks.csv, else dlib) | none (whole frame)", "haar"),
            new("landmarks-model", OptionKind.Text, "dlib's 68-point shape predictor (Debian: libdlib-data)", Data.Faces.ShapePredictor.DebianModelPath),
            new("face-fallback", OptionKind.Text, "--face landmarks, when no sensible landmarks are found: skip (the clip is reported and left out) | haar (use the Haar box)", "skip"),
            new("preview", OptionKind.Int, "also write OUT/face-preview.png: the face, landmarks and crop of the first N clips", "0", 0),
            new("flow-size", OptionKind.Int, "compute the flow at this resolution, then area-average it down to --size (0: at --size)", "0", 0),
            new("flow-scale", OptionKind.Float, "uvs: divide u, v, strain by this fixed value in pixels (clipped to ±4) instead of the clip's maxima (0: clip maxima)", "0", 0),
            new("remove-global-motion", OptionKind.Switch, "subtract a robust affine fit from each flow field (head drift, small rotations)"),
            new("cascade", OptionKind.Text, "Haar cascade file", PreprocessSettings.DefaultCascade),
            new("margin", OptionKind.Float, "margin added on each side of the face box, as a fraction of its side", "0.1", 0),
            new("workers", OptionKind.Int, "clips processed in parallel (0: one per logical core)", "0", 0),
            new("allow-outside-root", OptionKind.Switch, "read clips whose annotated path leads outside ROOT (.., absolute paths); refused by default"),
        ],
        "Each clip becomes OUT/clips/NAME-HASH.mxt, [T, 3, S, S] float32 motion frames (with --inputs, one file per kind:\n" +
        "NAME-HASH.rgb.mxt, .grey.mxt, .di.mxt); OUT/index.json lists subject, label, action units, source, each file's\n" +
        "checksum and the settings. HASH covers the settings, so a changed setting never reuses a stale file. Files are written atomically;\n" +
        "an interrupted run (Ctrl+C) keeps every finished clip and a rerun skips them. Rows that cannot be used (missing\n" +
        "frames, a label outside the mapping, apex outside onset..offset, a corrupt image, no face) are listed at the end.");

    /// <summary><c>--inputs</c> as a set of stored kinds (default motion).</summary>
    static CacheInputs Inputs(ParsedArgs p)
    {
        try
        {
            return CacheInputNames.ParseList(p.Text("inputs") ?? "motion");
        }
        catch (ArgumentException e)
        {
            throw new CliUsageException("option " + e.Message);
        }
    }

    /// <summary>The AU frequency table of a clip list (an unparsable coding counts as uncoded: the reader warned of it).</summary>
    internal static string ActionUnitFrequencies(ClipList list) => ActionUnitParser.FrequencyTable(list.Clips.Select(c =>
        ActionUnitParser.TryParse(c.ActionUnits, out var set, out _) ? set : ActionUnitSet.Empty));

    public static int Run(IReadOnlyList<string> args)
    {
        if (!ArgParser.ParseOrHelp(Spec, args, out var p)) return 0;
        string dataset = Required(p, "dataset").ToLowerInvariant();
        string root = Required(p, "root");
        string outDir = Required(p, "out");
        var recipe = Recipes.From(p);
        var d = recipe?.Preprocess ?? new PreprocessSettings();
        var face = Face(p, d.EffectiveFace);
        var settings = new PreprocessSettings(
            Flow: Pick(p, "flow", d.Flow, ("farneback", FlowMethod.Farneback), ("tvl1", FlowMethod.TvL1)),
            Frames: p.Int("frames", d.Frames),
            Size: p.Int("size", d.Size),
            Encoding: Pick(p, "encoding", d.Encoding, ("uvs", MotionEncoding.Uvs), ("hsv", MotionEncoding.Hsv), ("hsv8", MotionEncoding.Hsv8), ("uvs-stretched", MotionEncoding.UvsStretched)),
            Selection: Pick(p, "selection", d.Selection, ("apex", FrameSelection.ApexCentred), ("uniform", FrameSelection.Uniform), ("fdp", FrameSelection.Fdp),
                ("slstt-released", FrameSelection.SlsttReleased)),
            FaceDetect: face != FaceMode.None,
            CascadePath: p.Text("cascade") ?? d.CascadePath,
            Margin: p.Float("margin", d.Margin),
            RemoveGlobalMotion: p.Switch("remove-global-motion") || d.RemoveGlobalMotion,
            FlowSize: p.Int("flow-size", d.FlowSize),
            FlowScale: p.Float("flow-scale", d.FlowScale),
            Face: face is FaceMode.Landmarks or FaceMode.Fdp ? face : FaceMode.Haar,
            LandmarksModel: p.Text("landmarks-model") ?? d.LandmarksModel,
            FaceFallback: Pick(p, "face-fallback", d.FaceFallback, ("skip", false), ("haar", true)),
            Inputs: p.Has("inputs") ? Inputs(p) : d.Inputs);
        if (recipe != null)
            Console.Error.WriteLine(Recipes.Describe(recipe, RecipeOptions.Where(p.Has)));
        var scheme = Choice(p, "classes", "native", ("native", ClassScheme.Native), ("3", ClassScheme.Three));
        string? annotations = p.Text("annotations");
        bool outside = p.Switch("allow-outside-root");

        try
        {
            OutFolder.Prepare("out", outDir);
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"microexpr preprocess: error: {e.Message}");
            return Entry.Failed;
        }
        try
        {
            OpenCvCheck.Version();
            var list = dataset switch
            {
                "casme2" => Casme2Reader.Read(root, annotations, scheme, allowOutsideRoot: outside),
                "samm" => SammReader.Read(root, annotations, scheme, allowOutsideRoot: outside),
                "smic" => SmicReader.Read(root, annotations, allowOutsideRoot: outside),
                "casme3" => Casme3Reader.Read(root, annotations, scheme, allowOutsideRoot: outside),
                "composite" => CompositeReader.Read(root, outside),
                "manifest" => ManifestReader.Read(annotations ?? ManifestPath(root), outside),
                _ => throw new CliUsageException($"option --dataset expects casme2, samm, smic, casme3, composite or manifest, got '{dataset}'"),
            };
            if (!p.Has("recipe") && list.Clips.Count > 0 && list.Clips.All(c => c.Kind == SourceKind.MotionImage))
            {
                // Only the size matters for precomputed images: the motion-images recipe's (native 28 px) unless --size is given.
                settings = settings with { Size = p.Int("size", Recipes.MotionImages.Preprocess.Size) };
                Console.Error.WriteLine(Recipes.DescribeDefault(Recipes.MotionImages, "for a manifest of precomputed motion images", RecipeOptions.Where(p.Has)));
            }
            if (list.Clips.Count == 0)
            {
                Console.Out.Write(list.Summary());
                Console.Error.WriteLine("microexpr preprocess: error: no usable clip (see the skipped rows above)");
                return Entry.Failed;
            }
            bool images = list.Clips.All(c => c.Kind == SourceKind.MotionImage);
            Console.Error.WriteLine($"preprocess: {list.Clips.Count} clips → {outDir} ({(images ? settings.DescribeImages() : settings.Describe())})");
            using var cts = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) =>
            {
                e.Cancel = true;
                cts.Cancel();
            };
            Console.CancelKeyPress += onCancel;
            var bar = new ProgressBar(Console.Error, !Console.IsErrorRedirected);
            var sw = Stopwatch.StartNew();
            PreprocessResult result;
            try
            {
                result = Preprocessor.Run(list, settings, outDir, p.Int("workers", 0), bar.Report, cts.Token);
            }
            catch (OperationCanceledException)
            {
                bar.Finish();
                Console.Error.WriteLine($"microexpr preprocess: interrupted; finished clips are kept in {outDir} and a rerun continues from them");
                return Entry.Failed;
            }
            finally
            {
                Console.CancelKeyPress -= onCancel;
            }
            bar.Finish();
            double seconds = sw.Elapsed.TotalSeconds;
            // The summary describes what the cache holds: clips that failed now are listed with the skipped rows.
            var failed = result.FailedClips.Concat(result.DroppedClips).ToHashSet();
            list.Clips.RemoveAll(failed.Contains);
            list.Skipped.AddRange(result.Dropped);
            list.Skipped.AddRange(result.Failed);
            Console.Out.Write(list.Summary());
            if (list.Clips.Any(c => c.ActionUnits.Length > 0)) Console.Out.Write(ActionUnitFrequencies(list));
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"computed {result.Computed}, reused {result.Reused}, failed {result.Failed.Count}{(result.Dropped.Count > 0 ? $", dropped {result.Dropped.Count} (unusable for the selection)" : "")} in {seconds:0.0} s ({(result.Computed > 0 ? result.Computed / seconds : 0):0.00} clips/s computed)"));
            Console.Out.WriteLine($"index: {result.IndexPath}");
            if (p.Int("preview", 0) > 0)
            {
                string png = Path.Combine(outDir, "face-preview.png");
                int shown = Data.Faces.FacePreview.Write(list.Clips, settings, png, p.Int("preview", 0));
                Console.Out.WriteLine($"face preview: {png} ({shown} with a face)");
            }
            if (result.Failed.Count > 0)
            {
                // The cache holds the others, but a run that lost clips must not look like a clean one to a script.
                Console.Error.WriteLine($"microexpr preprocess: error: {result.Failed.Count} of {list.Clips.Count + result.Failed.Count} clips failed (listed above); the index holds the other {result.Computed + result.Reused}");
                return Entry.Failed;
            }
            return result.Computed + result.Reused > 0 ? Entry.Ok : Entry.Failed;
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException && e is not FileNotFoundException and not DirectoryNotFoundException
                                   and not CacheInUseException && e.Message.Contains(Path.GetFullPath(outDir), StringComparison.Ordinal))
        {
            Console.Error.WriteLine($"microexpr preprocess: error: --out {outDir}: cannot create or write this folder ({e.Message})");
            return Entry.Failed;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or FaceNotFoundException or InvalidOperationException)
        {
            Console.Error.WriteLine($"microexpr preprocess: error: {e.Message}");
            return Entry.Failed;
        }
    }

    /// <summary>The options whose defaults a recipe replaces (listed at the start of a recipe run when given explicitly).</summary>
    static readonly string[] RecipeOptions = ["flow", "frames", "size", "encoding", "selection", "face", "no-face-detect", "inputs", "margin", "flow-size", "flow-scale", "remove-global-motion"];

    /// <summary><c>--face</c> (<paramref name="fallback"/> when absent: haar, or the recipe's), with <c>--no-face-detect</c> as an alias of <c>none</c>.</summary>
    static FaceMode Face(ParsedArgs p, FaceMode fallback = FaceMode.Haar)
    {
        var face = Pick(p, "face", fallback, ("haar", FaceMode.Haar), ("landmarks", FaceMode.Landmarks), ("fdp", FaceMode.Fdp), ("none", FaceMode.None));
        if (!p.Switch("no-face-detect")) return face;
        if (p.Has("face") && face != FaceMode.None) throw new CliUsageException("--no-face-detect (= --face none) contradicts --face " + p.Text("face"));
        return FaceMode.None;
    }

    static string ManifestPath(string root)
    {
        if (File.Exists(root)) return root;
        if (!Directory.Exists(root)) throw new FileNotFoundException($"{root}: manifest (or its folder) not found", root);
        var csvs = Directory.GetFiles(root, "*.csv");
        return csvs.Length == 1 ? csvs[0]
            : throw new FileNotFoundException($"{root}: expected exactly one .csv manifest, found {csvs.Length}; give it with --annotations FILE");
    }

    static string Required(ParsedArgs p, string name) =>
        p.Text(name) ?? throw new CliUsageException($"option --{name} is required; see 'microexpr preprocess --help'");

    /// <summary>The named choice when the option is given, else <paramref name="fallback"/> (the default, or the recipe's value).</summary>
    static T Pick<T>(ParsedArgs p, string name, T fallback, params (string Name, T Value)[] options) =>
        p.Has(name) ? Choice(p, name, "", options) : fallback;

    static T Choice<T>(ParsedArgs p, string name, string fallback, params (string Name, T Value)[] options)
    {
        string v = (p.Text(name) ?? fallback).ToLowerInvariant();
        foreach (var (n, value) in options)
            if (n == v) return value;
        throw new CliUsageException($"option --{name} expects {string.Join(" or ", options.Select(o => o.Name))}, got '{v}'");
    }

    /// <summary>Clips done on the progress bar (<see cref="Output.ProgressLine"/>), drawn only when stderr is a terminal.</summary>
    sealed class ProgressBar(TextWriter o, bool terminal)
    {
        readonly Output.ProgressLine line = new(terminal && ReferenceEquals(o, Console.Error));

        public void Report(int done, int total) => line.Report($"preprocess: {done}/{total} clips", done, total);

        public void Finish() => line.Stop();
    }
}
