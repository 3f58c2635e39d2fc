using MicroExpr.Cli;
using MicroExpr.Data;

namespace MicroExpr.Tests.Cli;

/// <summary>
/// A model that reads RGB face frames (stt-r18: ResNet-18 cut after layer3, 112 px) through the same commands as the
/// motion models: preprocess --inputs rgb, train one fold, resume to the whole LOSO run and its final model, evaluate,
/// predict. Tiny on purpose (2 subjects × 2 clips, T = 2, one epoch): it proves the path, not the model.
/// </summary>
[NonParallelizable]
public class RgbModelEndToEndTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => ConsoleCapture.Run(() => Entry.Run(args));

    [Test]
    public void SttR18PreprocessesTrainsEvaluatesAndPredictsFromRgbFrames()
    {
        string dir = Directory.CreateTempSubdirectory("rgb-e2e").FullName;
        try
        {
            string synth = Path.Combine(dir, "synth"), cache = Path.Combine(dir, "cache"), run = Path.Combine(dir, "run");
            var (sCode, _, sErr) = Run("synth", "--out", synth, "--subjects", "2", "--clips-per-subject", "2", "--size", "32", "--frames", "12");
            Assert.That(sCode, Is.EqualTo(0), sErr);
            var (pCode, _, pErr) = Run("preprocess", "--dataset", "casme2", "--root", Path.Combine(synth, "CASME2_RAW_selected"),
                "--annotations", Path.Combine(synth, "CASME2-coding-synthetic.xlsx"), "--out", cache, "--inputs", "rgb", "--size", "112",
                "--frames", "2", "--no-face-detect", "--classes", "3");
            Assert.That(pCode, Is.EqualTo(0), pErr);
            var opened = PreprocessedCache.Open(cache);
            Assert.That(opened.Stored, Is.EqualTo(CacheInputs.Rgb), "rgb only: no flow computed or stored");
            Assert.That(opened.Clips[0][CacheInputs.Rgb], Has.Property("Channels").EqualTo(3).And.Property("Height").EqualTo(112));

            var (fCode, _, fErr) = Run("train", "--data", cache, "--model", "stt-r18", "--out", run, "--epochs", "1", "--batch", "2", "--fold", "1");
            Assert.That(fCode, Is.EqualTo(0), fErr);
            Assert.That(fErr, Does.Contain("RGB face frames [T=2, 3, 112, 112]"));
            var (rCode, _, rErr) = Run("train", "--data", cache, "--model", "stt-r18", "--out", run, "--epochs", "1", "--batch", "2", "--resume");
            Assert.That(rCode, Is.EqualTo(0), rErr);
            Assert.That(File.Exists(Path.Combine(run, "final", "model.safetensors")));

            var (eCode, eOut, eErr) = Run("evaluate", "--run", run, "--json");
            Assert.That(eCode, Is.EqualTo(0), eErr);
            Assert.That(eOut, Does.Contain("\"uf1\""));

            string clip = Directory.GetDirectories(Path.Combine(synth, "CASME2_RAW_selected", "sub01"))[0];
            var (qCode, qOut, qErr) = Run("predict", "--model", run, "--frames", clip, "--json");
            Assert.That(qCode, Is.EqualTo(0), qErr);
            using var p = System.Text.Json.JsonDocument.Parse(qOut.Trim());
            var probs = p.RootElement.GetProperty("probabilities").EnumerateObject().Select(x => x.Value.GetDouble()).ToList();
            Assert.That(probs, Has.Count.EqualTo(3));
            Assert.That(probs.Sum(), Is.EqualTo(1.0).Within(1e-3));

            // A motion model cannot train on this cache: one line naming what it reads and what the cache holds.
            var (mCode, _, mErr) = Run("train", "--data", cache, "--model", "slstt-tiny", "--out", Path.Combine(dir, "run-motion"), "--epochs", "1", "--fold", "1");
            Assert.That(mCode, Is.Not.EqualTo(0));
            Assert.That(mErr, Does.Contain("motion frames").And.Contain("RGB face frames"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Test]
    public void DemoTakesTheSizeAModelFixesAndKeepsTheSmallSizeForModelsThatAdapt()
    {
        Assert.That(MicroExpr.Cli.Commands.DemoCommand.DemoSize(MicroExpr.Models.SttPresets.R18, 4), Is.EqualTo(112), "ResNet-18 reads 112 px exactly");
        Assert.That(MicroExpr.Cli.Commands.DemoCommand.DemoSize(MicroExpr.Models.SttPresets.Tiny, 4), Is.EqualTo(32));
        Assert.That(MicroExpr.Cli.Commands.DemoCommand.DemoSize(MicroExpr.Models.ModelRegistry.Preset("slstt-b16"), 4), Is.EqualTo(32), "slstt adapts to the cache's size");
        Assert.That(MicroExpr.Training.CacheKinds.Preprocess(MicroExpr.Models.SttPresets.R18), Is.EqualTo(CacheInputs.Rgb));
        Assert.That(MicroExpr.Training.CacheKinds.Preprocess(MicroExpr.Models.SttPresets.Tiny), Is.EqualTo(CacheInputs.Motion));
    }

    [Test]
    public void AnUnknownInputKindIsAUsageError()
    {
        var (code, _, err) = Run("preprocess", "--dataset", "manifest", "--root", "/nonexistent", "--out", "/nonexistent/out", "--inputs", "motion,flow");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("--inputs").And.Contain("'flow'"));
    }
}
