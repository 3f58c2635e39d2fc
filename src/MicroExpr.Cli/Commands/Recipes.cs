using System.Globalization;
using MicroExpr.Cli.Args;
using MicroExpr.Data;
using MicroExpr.Training;

namespace MicroExpr.Cli.Commands;

/// <summary>
/// A named bundle of settings (<c>--recipe NAME</c> on <c>preprocess</c> and <c>train</c>): the preprocessing settings and
/// the training options of one published recipe, defined here and nowhere else. A run prints the recipe at its start,
/// records its name in the run's options (<see cref="TrainOptions.Recipe"/>), and any option the user gives explicitly
/// overrides the recipe's value for it (the recipe only replaces the defaults).
/// </summary>
/// <param name="Pretrained">what the recipe's <c>--pretrained</c> must be ("" when it needs none): the one line a user gets without it</param>
internal sealed record Recipe(string Name, string Summary, PreprocessSettings Preprocess, TrainOptions Train, string Pretrained);

internal static class Recipes
{
    /// <summary>The one line printed when <c>--recipe slstt-official</c> is run without <c>--pretrained</c>.</summary>
    public const string SlsttPretrainedNeeded =
        "--recipe slstt-official needs --pretrained FILE: B_16_imagenet1k.pth, the ImageNet ViT-B/16 (384 px) that SLSTT's code loads, " +
        "from pytorch-pretrained-vit's release (github.com/lukemelas/PyTorch-Pretrained-ViT, releases); train reads the .pth safely as it is, " +
        "and 'microexpr convert B_16_imagenet1k.pth vit.safetensors' converts it once";

    /// <summary>
    /// SLSTT as released (Vision-Intelligence-and-Robots-Group/SLSTT; ../shared/docs/papers.md §1), point by point:
    /// preprocessing: Farneback from the onset at SLSTT's parameters, T = 11 frames by the released window
    /// (<see cref="FrameSelection.SlsttReleased"/>: never shifted, gaps filled by linear blends where the release uses RIFE,
    /// clips without a usable apex dropped), dlib's 68 landmarks on the apex frame and SLSTT's square for every frame,
    /// 384 px, 8-bit HSV stored as JPEG (<see cref="MotionEncoding.Hsv8"/>);
    /// training: slstt-b16 (ViT-B/16, LayerNorm eps 1e-6; LSTM 3 layers of 512, zero state, last step; FC 512 → 256, ReLU,
    /// FC → classes) with ImageNet mean/std inside the model, the ViT frozen (<see cref="TrainOptions.Freeze"/> "spatial"),
    /// SGD lr 0.01, momentum 0.9, weight decay 1e-4, 40 epochs with lr × 0.1 from epoch 30, plain cross-entropy (no class
    /// weights, no smoothing, no augmentation), batch 2, no gradient clipping, no warm-up, pretrained weights required.
    /// Differences that remain (documented, not hidden): the flow is computed on the crop resized to 384 px (the release: at
    /// the crop's native size, its images then resized to 384); the ViT's dropout 0.1 is not applied (our blocks have none;
    /// in the release it stays active in the frozen ViT in train mode); the release greys its BGR crops with COLOR_RGB2GRAY
    /// (red and blue weights swapped), we with the usual BGR weights; its JPEGs are decoded by PIL, ours by OpenCV; the epoch is
    /// fixed in advance (the release keeps the checkpoint best on the test subject: see <c>--oracle</c>).
    /// </summary>
    public static Recipe SlsttOfficial { get; } = new(
        "slstt-official",
        "SLSTT as released: T 11 (released window), landmark face square on the apex frame, 384 px, 8-bit HSV flow via JPEG; " +
        "slstt-b16 + ImageNet mean/std, ViT frozen, SGD 0.01 (momentum 0.9, wd 1e-4), x0.1 from epoch 30 of 40, plain CE, batch 2",
        new PreprocessSettings(
            Flow: FlowMethod.Farneback, Frames: 11, Size: 384, Encoding: MotionEncoding.Hsv8, Selection: FrameSelection.SlsttReleased,
            FaceDetect: true, Face: FaceMode.Landmarks),
        new TrainOptions
        {
            Recipe = "slstt-official",
            Preset = "slstt-b16",
            ModelSettings = "input-norm=imagenet",
            Epochs = 40,
            BatchSize = 2,
            Optimizer = "sgd",
            LearningRate = 0.01f,
            Momentum = 0.9f,
            WeightDecay = 1e-4f,
            Schedule = "step",
            StepEpoch = 30,
            StepFactor = 0.1f,
            WarmupEpochs = 0,
            ClipNorm = 0,
            ClassWeights = false,
            LabelSmoothing = 0,
            Flip = false,
            CropPad = 0,
            Freeze = "spatial",
        },
        "B_16_imagenet1k.pth");

    /// <summary>
    /// The recipe for small precomputed motion images (the MEGC2019 composite's 28×28 u / v / strain onset→apex images; issue
    /// 16), developed with honest LOSO on the composite's SAMM and SMIC parts only (CASME II untouched), every try over three
    /// seeds, and then frozen; benchmarks/RESULTS.md ("the development search for the motion-images recipe") lists every try
    /// with its development figure, the failures too. The choices, with the three-seed mean UF1 that justified each:
    /// the images at their native 28 px, not resized to 112 (one seed: 0.513 against 0.411, at a seventh of the cost);
    /// slstt-tiny with 7-px patches (4×4 tokens); <c>temporal=mean</c>, since a clip is one image (T = 1) and an LSTM over
    /// one step only adds an untrained nonlinearity before the head (0.519 ± 0.024 against 0.473 ± 0.046); AdamW at lr
    /// 3e-4 (0.560 ± 0.004; 1e-3: 0.519; 3e-3 with the LSTM: 0.313); everything else the general defaults (30 epochs,
    /// cosine after 2 warm-up epochs, weight decay 0.01, class-weighted CE, batch 8, no augmentation). Tried and not taken:
    /// crop-pad 2, flip, label smoothing 0.1, weight decay 0.05, no class weights, batch 16, 15 or 60 epochs, patch 4,
    /// dropout + drop-path 0.1 (0.543), a convolutional stem (0.506), mixup 0.2 (0.549). It is the default of
    /// <c>preprocess --dataset manifest</c> when every clip of the manifest is a precomputed motion image, and of
    /// <c>train</c> on a cache of single 28×28 motion images (<see cref="From(ParsedArgs, bool, out bool)"/>);
    /// <c>--recipe none</c> gives the general defaults instead.
    /// </summary>
    public static Recipe MotionImages { get; } = new(
        "motion-images",
        "precomputed motion images at 28 px; slstt-tiny with 7-px patches and a mean over frames (no LSTM), AdamW lr 3e-4, 30 epochs, class-weighted CE",
        new PreprocessSettings(Size: 28),
        new TrainOptions
        {
            Recipe = "motion-images",
            Preset = "slstt-tiny",
            ModelSettings = "patch-size=7,temporal=mean",
            LearningRate = 3e-4f,
        },
        "");

    public static IReadOnlyList<Recipe> All { get; } = [SlsttOfficial, MotionImages];

    /// <summary>The <c>--recipe</c> value that asks for no recipe (the general defaults), also where a default recipe would apply.</summary>
    public const string None = "none";

    public static OptionSpec Option { get; } = new("recipe", OptionKind.Text,
        $"a named bundle of settings: slstt-official (SLSTT's released recipe), motion-images (small precomputed motion images; the default for them), " +
        $"or {None} (the general defaults); options given explicitly override the recipe's values");

    /// <summary><c>--recipe</c>, or null when absent or <c>none</c>; an unknown name is a usage error listing the known ones.</summary>
    public static Recipe? From(ParsedArgs a)
    {
        if (a.Text("recipe") is not string name || name.Equals(None, StringComparison.OrdinalIgnoreCase)) return null;
        return All.FirstOrDefault(r => r.Name == name.ToLowerInvariant())
            ?? throw new CliUsageException($"--recipe {name}: unknown recipe; known: {string.Join(", ", All.Select(r => r.Name))}, {None}");
    }

    /// <summary>
    /// The recipe of a run: <c>--recipe</c> when given (<c>none</c>: no recipe), else the default for the data, when there is
    /// one (<paramref name="isDefault"/> true then): <see cref="MotionImages"/> for motion images. Rejected: applying the
    /// motion-images recipe to any T = 1 cache whatever its size (7-px patches on 112 px would make 256 tokens).
    /// </summary>
    public static Recipe? From(ParsedArgs a, bool motionImages, out bool isDefault)
    {
        isDefault = false;
        if (a.Has("recipe")) return From(a);
        if (!motionImages) return null;
        isDefault = true;
        return MotionImages;
    }

    /// <summary>
    /// Whether <paramref name="cacheDir"/> holds single motion images of the motion-images recipe's size (T = 1, 28×28, motion
    /// only): what <c>preprocess --dataset manifest</c> makes of precomputed motion images by default. False when the cache
    /// cannot be read (train then reports that itself).
    /// </summary>
    public static bool IsMotionImageCache(string? cacheDir)
    {
        if (cacheDir is null) return false;
        try
        {
            var cache = PreprocessedCache.Open(cacheDir);
            int size = MotionImages.Preprocess.Size;
            return cache.Clips.Count > 0 && cache.Clips.All(c => c.Inputs.Count == 1 &&
                c.Find(CacheInputs.Motion) is { Frames: 1 } m && m.Height == size && m.Width == size);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>The line printed when a recipe applies by default: which, why, and how to opt out.</summary>
    public static string DescribeDefault(Recipe r, string why, IEnumerable<string> overridden) =>
        $"{Describe(r, overridden)} (the default {why}; --recipe {None} for the general defaults)";

    /// <summary>The line a run prints at its start: the recipe and which of its settings the user's options replaced.</summary>
    public static string Describe(Recipe r, IEnumerable<string> overridden)
    {
        var o = overridden.ToList();
        return string.Create(CultureInfo.InvariantCulture,
            $"recipe {r.Name}: {r.Summary}{(o.Count > 0 ? $"; overridden by explicit options: {string.Join(", ", o.Select(n => "--" + n))}" : "")}");
    }
}
