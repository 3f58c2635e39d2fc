using System.Text.Json;
using MicroExpr.Cli;
using MicroExpr.Models;
using MicroExpr.Tensors;

namespace MicroExpr.Tests.Cli;

/// <summary>
/// <c>attention-map</c> and <c>predict --explain</c> end to end on tiny synthetic runs (<c>demo</c>): the PNGs, the JSON and
/// the self-contained HTML page exist; the maps written are normalised (each class-token row and each rollout row sums
/// to 1 over the N tokens; the weights over frames as documented); a cached clip by name; and the one-line errors — a model
/// without attention, a clip the cache does not have, two clip sources.
/// </summary>
[NonParallelizable]
public class AttentionMapTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => ConsoleCapture.Run(() => Entry.Run(args));

    string root = "";

    [OneTimeSetUp]
    public void TrainTinyRuns()
    {
        root = Directory.CreateTempSubdirectory("attention-map").FullName;
        foreach (var (name, extra) in new[] { ("slstt", new[] { "--set", "temporal=transformer" }), ("stt", new[] { "--model", "stt-tiny" }) })
        {
            var (code, _, err) = Run(["demo", "--out", Path.Combine(root, name), "--subjects", "3", "--clips-per-subject", "3", "--epochs", "1",
                "--frames", "3", "--size", "16", "--json", .. extra]);
            Assert.That(code, Is.EqualTo(0), err);
        }
    }

    [OneTimeTearDown]
    public void Clean() => Directory.Delete(root, recursive: true);

    string ClipFolder(string name) => Directory.GetDirectories(Path.Combine(root, name, "synthetic", "CASME2_RAW_selected", "sub01"))[0];

    static void CheckOutput(string dir, bool temporalClassToken)
    {
        foreach (var f in new[] { "attention.html", "attention.json", "layers-motion.png", "layers-face.png", "rollout-frames.png", "temporal.png" })
            Assert.That(new FileInfo(Path.Combine(dir, f)), Has.Property("Length").GreaterThan(100), f);
        string html = File.ReadAllText(Path.Combine(dir, "attention.html"));
        Assert.That(System.Text.RegularExpressions.Regex.Matches(html, "src=\"data:image/png;base64,").Count, Is.EqualTo(4), "every PNG inlined");
        Assert.That(html, Does.Not.Contain("src=\"http").And.Not.Contain("<script"), "self-contained");
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "attention.json")));
        var r = json.RootElement;
        int frames = r.GetProperty("frames").GetInt32(), grid = r.GetProperty("grid").GetInt32();
        Assert.That((frames, grid), Is.EqualTo((3, 2)));
        int n = grid * grid + 1, rows = 0;
        foreach (var frame in r.GetProperty("class_rows").EnumerateArray())
            foreach (var layer in frame.EnumerateArray())
                foreach (var head in layer.EnumerateArray())
                {
                    var p = head.EnumerateArray().Select(x => x.GetDouble()).ToArray();
                    Assert.That(p, Has.Length.EqualTo(n));
                    Assert.That(p.Sum(), Is.EqualTo(1).Within(1e-6), "a class-token row sums to 1");
                    Assert.That(p.Min(), Is.GreaterThanOrEqualTo(0));
                    rows++;
                }
        Assert.That(rows, Is.EqualTo(frames * r.GetProperty("layers").GetInt32() * r.GetProperty("heads").GetInt32()));
        foreach (var roll in r.GetProperty("rollout_rows").EnumerateArray())
            Assert.That(roll.EnumerateArray().Sum(x => x.GetDouble()), Is.EqualTo(1).Within(1e-6), "a rollout row sums to 1");
        Assert.That(r.GetProperty("temporal_class_token").GetBoolean(), Is.EqualTo(temporalClassToken));
        foreach (var w in r.GetProperty("temporal_weights").EnumerateArray().Append(r.GetProperty("temporal_rollout")))
        {
            double sum = w.EnumerateArray().Sum(x => x.GetDouble());
            Assert.That(w.GetArrayLength(), Is.EqualTo(frames));
            if (temporalClassToken) Assert.That(sum, Is.GreaterThan(0).And.LessThan(1 + 1e-6), "the class token keeps a share on itself");
            else Assert.That(sum, Is.EqualTo(1).Within(1e-6));
        }
    }

    [TestCase("slstt", true)]
    [TestCase("stt", false)]
    public void AttentionMapOfATrainedRun(string name, bool temporalClassToken)
    {
        string outDir = Path.Combine(root, name + "-map");
        var (code, output, err) = Run("attention-map", "--model", Path.Combine(root, name, "run"), "--frames", ClipFolder(name), "--out", outDir);
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(output, Does.Contain("attention.html"));
        CheckOutput(outDir, temporalClassToken);
    }

    [Test]
    public void ACachedClipByName()
    {
        var cache = MicroExpr.Data.PreprocessedCache.Open(Path.Combine(root, "slstt", "cache"));
        var entry = cache.Clips[1];
        string outDir = Path.Combine(root, "cached-map");
        var (code, _, err) = Run("attention-map", "--model", Path.Combine(root, "slstt", "run"), "--clip", $"{entry.Subject}/{entry.Clip}", "--out", outDir);
        Assert.That(code, Is.EqualTo(0), err);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "attention.json")));
        Assert.That(json.RootElement.GetProperty("clip").GetString(), Is.EqualTo($"{entry.Subject}/{entry.Clip}"));
        Assert.That(File.Exists(Path.Combine(outDir, "layers-motion.png")));

        var (badCode, _, badErr) = Run("attention-map", "--model", Path.Combine(root, "slstt", "run"), "--clip", "sub99/nope", "--out", outDir);
        Assert.That(badCode, Is.EqualTo(Entry.Usage));
        Assert.That(badErr.Trim(), Does.StartWith("microexpr: --clip sub99/nope: no such clip in the run's cache"));
    }

    [Test]
    public void PredictExplainWritesThePageForTheClipItClassifies()
    {
        string outDir = Path.Combine(root, "explain");
        var (code, output, err) = Run("predict", "--model", Path.Combine(root, "stt", "run"), "--frames", ClipFolder("stt"), "--explain", outDir, "--json");
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(output, Does.Contain("probabilities"), "the prediction is still printed");
        Assert.That(err, Does.Contain("attention maps in"));
        CheckOutput(outDir, temporalClassToken: false);
    }

    [Test]
    public void AModelWithoutAttentionIsRefusedInOneLine()
    {
        // A run folder whose final model is FDP's (no attention): the run's options and cache are the slstt run's.
        string fdpRun = Path.Combine(root, "fdp-run");
        Directory.CreateDirectory(Path.Combine(fdpRun, "final"));
        File.Copy(Path.Combine(root, "slstt", "run", "options.json"), Path.Combine(fdpRun, "options.json"), overwrite: true);
        using (var fdp = ModelRegistry.Create(ModelRegistry.Preset("fdp-tiny"), new Rng(1)))
            Weights.Save(fdp, Path.Combine(fdpRun, "final", "model.safetensors"));
        foreach (var args in new[]
        {
            new[] { "attention-map", "--model", fdpRun, "--frames", ClipFolder("slstt"), "--out", Path.Combine(root, "never") },
            new[] { "predict", "--model", fdpRun, "--frames", ClipFolder("slstt"), "--explain", Path.Combine(root, "never") },
        })
        {
            var (code, output, err) = Run(args);
            Assert.That(code, Is.EqualTo(Entry.Usage), err);
            Assert.That(err.Trim().Split('\n'), Has.Length.EqualTo(1));
            Assert.That(err, Does.Contain("model fdp-tiny (fdp) has no attention to draw"));
            Assert.That(output, Does.Not.Contain("predicted"));
        }
        Assert.That(Directory.Exists(Path.Combine(root, "never")), Is.False, "nothing is written");
    }

    [Test]
    public void TwoClipSourcesAreAUsageError()
    {
        var (code, _, err) = Run("attention-map", "--model", Path.Combine(root, "slstt", "run"), "--frames", ClipFolder("slstt"), "--clip", "x");
        Assert.That(code, Is.EqualTo(Entry.Usage));
        Assert.That(err, Does.Contain("give exactly one of --frames DIR, --video FILE or --clip CACHED"));
    }
}
