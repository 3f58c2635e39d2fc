using System.Text.Json;
using MicroExpr.Cli;
using MicroExpr.Data;
using MicroExpr.Tests.Support;

namespace MicroExpr.Tests.Cli;

/// <summary>
/// <c>--recipe slstt-official</c> end to end on synthetic data: preprocess (T 11 by the released window, 8-bit HSV via JPEG)
/// and train (SGD, step schedule, batch 2, the slstt-b16 shape reduced through --set, ImageNet normalisation, a pretrained
/// file in B_16_imagenet1k.pth's layout written here with random values); and the one line a user gets without the file.
/// Tiny on purpose: it proves the path, not the recipe's accuracy.
/// </summary>
[NonParallelizable]
public class SlsttOfficialRecipeTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => ConsoleCapture.Run(() => Entry.Run(args));

    [Test]
    public void WithoutPretrainedWeightsTheRecipeSaysInOneLineWhichFileAndWhereToGetIt()
    {
        var (code, _, err) = Run("train", "--recipe", "slstt-official", "--data", "no-such-cache", "--out", "no-such-run");
        Assert.That(code, Is.EqualTo(2));
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(1), err);
        Assert.That(lines[0], Does.Contain("--pretrained").And.Contain("B_16_imagenet1k.pth").And.Contain("pytorch-pretrained-vit")
            .And.Contain("microexpr convert"));
        Assert.That(Directory.Exists("no-such-run"), Is.False, "nothing is created before the line");
    }

    [Test]
    public void AnUnknownRecipeIsAUsageErrorListingTheKnownOnes()
    {
        var (code, _, err) = Run("preprocess", "--recipe", "slstt", "--dataset", "casme2", "--root", "x", "--out", "y");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("--recipe slstt: unknown recipe; known: slstt-official"));
    }

    [Test]
    public void TheRecipePreprocessesAndTrainsEndToEndWithExplicitOptionsOverridingIt()
    {
        string dir = Directory.CreateTempSubdirectory("slstt-official").FullName;
        try
        {
            string synth = Path.Combine(dir, "synth"), cache = Path.Combine(dir, "cache"), run = Path.Combine(dir, "run");
            var (sCode, _, sErr) = Run("synth", "--out", synth, "--subjects", "3", "--clips-per-subject", "2", "--size", "64", "--frames", "16");
            Assert.That(sCode, Is.EqualTo(0), sErr);
            // The synthetic faces fill the frame (no landmarks to find) and 32 px keeps the test light: both given explicitly.
            var (pCode, pOut, pErr) = Run("preprocess", "--recipe", "slstt-official", "--dataset", "casme2", "--root", Path.Combine(synth, "CASME2_RAW_selected"),
                "--annotations", Path.Combine(synth, "CASME2-coding-synthetic.xlsx"), "--out", cache, "--classes", "3", "--face", "none", "--size", "32", "--workers", "1");
            Assert.That(pCode, Is.EqualTo(0), pErr + pOut);
            Assert.That(pErr, Does.Contain("recipe slstt-official:").And.Contain("overridden by explicit options: --size, --face"));
            var opened = PreprocessedCache.Open(cache);
            Assert.That(opened.Settings!.Encoding, Is.EqualTo(MotionEncoding.Hsv8));
            Assert.That(opened.Settings.Selection, Is.EqualTo(FrameSelection.SlsttReleased));
            Assert.That(opened.Settings.Size, Is.EqualTo(32));
            Assert.That(opened.Clips[0][CacheInputs.Motion], Has.Property("Frames").EqualTo(11).And.Property("Height").EqualTo(32));

            string pth = Path.Combine(dir, "B_16_imagenet1k.pth");
            TorchZipWriter.Write(pth, TorchZipWriter.PretrainedVitB16Layout(c: 8, depth: 1, mlp: 16, seed: 2));
            var (tCode, tOut, tErr) = Run("train", "--recipe", "slstt-official", "--pretrained", pth, "--data", cache, "--out", run, "--epochs", "2",
                "--set", "width=8,depth=1,heads=2,mlp-hidden=16,temporal-layers=1,temporal-hidden=8,head-hidden=4", "--no-final", "--threads", "2");
            Assert.That(tCode, Is.EqualTo(0), tErr + tOut);
            Assert.That(tErr, Does.Contain("recipe slstt-official:").And.Contain("overridden by explicit options: --epochs"));

            using var options = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "options.json")));
            string text = JsonSerializer.Serialize(options.RootElement); // compact, whatever the file's indentation
            Assert.That(text, Does.Contain("\"Recipe\":\"slstt-official\"").And.Contain("\"Optimizer\":\"sgd\"").And.Contain("\"Schedule\":\"step\"")
                .And.Contain("\"BatchSize\":2").And.Contain("\"Epochs\":2").And.Contain("\"ClassWeights\":false").And.Contain("\"Freeze\":\"spatial\"")
                .And.Contain("input-norm=imagenet,width=8"), text);
            var lrs = File.ReadAllLines(Path.Combine(run, "log.jsonl")).Where(l => l.Contains("\"lr\"", StringComparison.Ordinal))
                .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("lr").GetDouble()).ToList();
            Assert.That(lrs, Is.Not.Empty);
            Assert.That(lrs, Has.All.EqualTo(0.01).Within(1e-7), "SGD at 0.01 before epoch 30");
            Assert.That(Directory.GetDirectories(Path.Combine(run, "folds")), Has.Length.EqualTo(3), "one fold per subject");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
