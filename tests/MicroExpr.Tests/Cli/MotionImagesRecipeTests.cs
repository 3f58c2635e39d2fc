using System.Text.Json;
using MicroExpr.Cli;
using MicroExpr.Data;
using MicroExpr.Tests.Support;
using static MicroExpr.Tests.Data.DataFixtures;

namespace MicroExpr.Tests.Cli;

/// <summary>
/// The motion-images recipe (issue 16) is the default for a manifest of precomputed motion images: preprocess keeps them at
/// 28 px and train on such a cache uses slstt-tiny with 7-px patches and a mean over frames at lr 3e-4, each saying so in one line; --recipe none
/// and explicit options still win, and a cache of another size gets the general defaults. Tiny on purpose: it proves the
/// defaults, not the recipe's accuracy (that is a benchmark, benchmarks/RESULTS.md).
/// </summary>
[NonParallelizable]
public class MotionImagesRecipeTests
{
    string root = "";

    [SetUp]
    public void SetUp() => root = Directory.CreateTempSubdirectory("motion-images").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(root, true);

    private static (int Code, string Out, string Err) Run(params string[] args) => ConsoleCapture.Run(() => Entry.Run(args));

    /// <summary>A manifest of 3 subjects × 3 classes of 40×40 images (so the default's 28 px is a resize, not the native size).</summary>
    string Manifest()
    {
        string data = Path.Combine(root, "data");
        Directory.CreateDirectory(data);
        var rows = new List<string> { "subject,label,path,dataset,clip" };
        for (int s = 0; s < 3; s++)
            for (int c = 0; c < 3; c++)
            {
                using (var img = Texture(40, 40, 10 * s + c + 1)) OpenCvSharp.Cv2.ImWrite(Path.Combine(data, $"m{s}{c}.png"), img);
                rows.Add($"s{s},{new[] { "negative", "positive", "surprise" }[c]},m{s}{c}.png,samm,e{c}");
            }
        string csv = Path.Combine(data, "manifest.csv");
        File.WriteAllLines(csv, rows);
        return csv;
    }

    (int Code, string Err) Preprocess(string csv, string cache, params string[] extra)
    {
        var (code, output, err) = Run(["preprocess", "--dataset", "manifest", "--root", csv, "--out", cache, "--workers", "1", .. extra]);
        return (code, err + output);
    }

    static JsonElement Options(string run) => JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "options.json"))).RootElement.GetProperty("Options");

    [Test]
    public void AManifestOfMotionImagesIsPreprocessedAt28PxAndTrainedWithTheRecipeByDefault()
    {
        string csv = Manifest(), cache = Path.Combine(root, "cache"), run = Path.Combine(root, "run");
        var (pCode, pErr) = Preprocess(csv, cache);
        Assert.That(pCode, Is.EqualTo(0), pErr);
        Assert.That(pErr, Does.Contain("recipe motion-images:").And.Contain("the default for a manifest of precomputed motion images; --recipe none"));
        Assert.That(pErr, Does.Contain("precomputed motion images at 28x28, channels not declared").And.Not.Contain("flow farneback"),
            "only the settings that apply to images are described");
        var clip = PreprocessedCache.Open(cache).Clips[0][CacheInputs.Motion];
        Assert.That((clip.Frames, clip.Height, clip.Width), Is.EqualTo((1, 28, 28)));

        var (tCode, tOut, tErr) = Run("train", "--data", cache, "--out", run, "--epochs", "1", "--fold", "1", "--no-final", "--threads", "1");
        Assert.That(tCode, Is.EqualTo(0), tErr + tOut);
        Assert.That(tErr, Does.Contain("recipe motion-images:").And.Contain("overridden by explicit options: --epochs")
            .And.Contain("the default for a cache of single 28×28 motion images"));
        var o = Options(run);
        Assert.That(o.GetProperty("Recipe").GetString(), Is.EqualTo("motion-images"));
        Assert.That(o.GetProperty("Preset").GetString(), Is.EqualTo("slstt-tiny"));
        Assert.That(o.GetProperty("ModelSettings").GetString(), Is.EqualTo("patch-size=7,temporal=mean"));
        Assert.That(o.GetProperty("LearningRate").GetDouble(), Is.EqualTo(3e-4).Within(1e-9));
        Assert.That(o.GetProperty("Epochs").GetInt32(), Is.EqualTo(1), "an explicit option wins over the recipe");
    }

    [Test]
    public void RecipeNoneAndExplicitSizesGiveTheGeneralDefaults()
    {
        string csv = Manifest(), cache = Path.Combine(root, "cache"), cache32 = Path.Combine(root, "cache32");
        Assert.That(Preprocess(csv, cache).Code, Is.EqualTo(0));
        string none = Path.Combine(root, "none");
        var (code, output, err) = Run("train", "--data", cache, "--out", none, "--recipe", "none", "--epochs", "1", "--fold", "1", "--no-final", "--threads", "1",
            "--set", "patch-size=7");
        Assert.That(code, Is.EqualTo(0), err + output);
        Assert.That(err, Does.Not.Contain("recipe motion-images"));
        Assert.That(Options(none).GetProperty("Recipe").GetString(), Is.EqualTo(""));
        Assert.That(Options(none).GetProperty("LearningRate").GetDouble(), Is.EqualTo(1e-3).Within(1e-9), "the general default");

        // --size given: preprocess keeps it (the line still names the recipe and the override); a 32 px cache is not the recipe's.
        var (pCode, pErr) = Preprocess(csv, cache32, "--size", "32");
        Assert.That(pCode, Is.EqualTo(0), pErr);
        Assert.That(pErr, Does.Contain("overridden by explicit options: --size"));
        Assert.That(PreprocessedCache.Open(cache32).Clips[0][CacheInputs.Motion].Height, Is.EqualTo(32));
        string run32 = Path.Combine(root, "run32");
        (code, output, err) = Run("train", "--data", cache32, "--out", run32, "--epochs", "1", "--fold", "1", "--no-final", "--threads", "1");
        Assert.That(code, Is.EqualTo(0), err + output);
        Assert.That(err, Does.Not.Contain("recipe motion-images"));
        Assert.That(Options(run32).GetProperty("ModelSettings").GetString(), Is.EqualTo(""));
    }

    [Test]
    public void FreezeWorksWithPatchSizesThatDoNotFitThePresetsOwnSize()
    {
        // slstt-tiny is 32 px, which 7-px patches do not divide: the early --freeze check used to build it there and fail.
        string csv = Manifest(), cache = Path.Combine(root, "cache"), run = Path.Combine(root, "run");
        Assert.That(Preprocess(csv, cache).Code, Is.EqualTo(0));
        var (code, output, err) = Run("train", "--data", cache, "--out", run, "--freeze", "spatial", "--epochs", "1", "--fold", "1", "--no-final", "--threads", "1");
        Assert.That(code, Is.EqualTo(0), err + output);
        Assert.That(Options(run).GetProperty("Freeze").GetString(), Is.EqualTo("spatial"));
        (code, output, err) = Run("train", "--data", cache, "--out", Path.Combine(root, "run2"), "--freeze", "temporal", "--epochs", "1", "--fold", "1", "--no-final");
        Assert.That(code, Is.Not.EqualTo(0), "an unknown part is refused at the fold start");
        Assert.That(err, Does.Contain("--freeze temporal"));
    }

    [Test]
    public void AnUnknownRecipeListsNoneAmongTheKnownOnes()
    {
        var (code, _, err) = Run("train", "--recipe", "motion", "--data", "x", "--out", "y");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("known: slstt-official, motion-images, none"));
    }
}
