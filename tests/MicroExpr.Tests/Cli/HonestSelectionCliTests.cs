using System.Text.Json;
using MicroExpr.Cli;
using MicroExpr.Training;

namespace MicroExpr.Tests.Cli;

/// <summary>--seeds, --select inner, --freeze and evaluate's figures, through the command line on a tiny synthetic set.</summary>
[NonParallelizable]
public class HonestSelectionCliTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => ConsoleCapture.Run(() => Entry.Run(args));

    [Test]
    public void DemoWithSeedsThenTrainWithInnerSelectionThenEvaluate()
    {
        string dir = Directory.CreateTempSubdirectory("honest-cli").FullName;
        try
        {
            var (code, output, err) = Run("demo", "--out", dir, "--subjects", "3", "--clips-per-subject", "3", "--epochs", "1", "--frames", "2",
                "--size", "16", "--seeds", "1,2", "--json");
            Assert.That(code, Is.EqualTo(0), err);
            using (var json = JsonDocument.Parse(output.Trim()))
            {
                foreach (var key in new[] { "uf1", "uf1_sd", "uar", "uar_sd", "ensemble", "seeds" })
                    Assert.That(json.RootElement.TryGetProperty(key, out _), key);
                Assert.That(json.RootElement.GetProperty("seeds").GetArrayLength(), Is.EqualTo(2));
            }
            Assert.That(err, Does.Contain("ensemble of the seeds").And.Contain("seed 2:"));
            string run = Path.Combine(dir, "run");
            Assert.That(File.Exists(Path.Combine(run, "seed-1", "final", "model.safetensors")), "the first seed trains the final model");
            Assert.That(File.Exists(Path.Combine(run, "seed-2", "final", "model.safetensors")), Is.False);
            Assert.That(File.ReadAllText(Path.Combine(run, "report.md")), Does.Contain("mean ± sd"));
            var (eCode, eOut, eErr) = Run("evaluate", "--run", run);
            Assert.That(eCode, Is.EqualTo(0), eErr);
            Assert.That(eOut, Does.Contain("LOSO over 2 seeds").And.Contain("ensemble"));

            string cache = Path.Combine(dir, "cache"), inner = Path.Combine(dir, "inner");
            var (tCode, tOut, tErr) = Run("train", "--data", cache, "--out", inner, "--epochs", "2", "--batch", "4", "--select", "inner", "--inner-folds", "2");
            Assert.That(tCode, Is.EqualTo(0), tErr);
            // The final model's own choice, beside it and in one line.
            var finalChoice = InnerSelection.ReadFinal(Path.Combine(inner, "final", InnerSelection.ChoiceFile));
            Assert.That(tErr, Does.Contain(finalChoice.Describe()).And.Contain("over 2 groups of all 3 subjects"));
            Assert.That(File.Exists(Path.Combine(inner, "final", "model.safetensors")));
            Assert.That(tErr, Does.Contain("2 inner folds × 1 setting(s) + 1 = 3 trainings per outer fold"));
            Assert.That(tOut, Does.Contain("inner selection (3 folds").And.Contain("oracle — looks at test labels, for comparison with published numbers only"));
            var (iCode, iOut, iErr) = Run("evaluate", "--run", inner, "--json");
            Assert.That(iCode, Is.EqualTo(0), iErr);
            using (var json = JsonDocument.Parse(iOut.Trim()))
            {
                Assert.That(json.RootElement.GetProperty("inner").GetProperty("uf1").GetDouble(), Is.InRange(0, 1));
                Assert.That(json.RootElement.GetProperty("oracle_epoch").GetProperty("uf1").GetDouble(), Is.InRange(0, 1));
            }
            Assert.That(iErr, Does.Contain("inner selection"));

            var (fCode, _, fErr) = Run("train", "--data", cache, "--out", Path.Combine(dir, "frozen"), "--epochs", "1", "--freeze", "spatial", "--no-final", "--fold", "1");
            Assert.That(fCode, Is.EqualTo(0), fErr);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [TestCase("--freeze", "temporal", "temporal")]
    [TestCase("--grid", "lr=0.1,0.2", "needs --select inner")]
    [TestCase("--select", "outer", "--select outer")]
    [TestCase("--seeds", "3", "at least two seeds")]
    [TestCase("--select", "inner --steps 50", "not --steps")]
    public void WrongSelectionOptionsAreUsageErrors(string option, string value, string message)
    {
        var (code, _, err) = Run(["train", "--data", "nowhere", "--out", "nowhere-run", option, .. value.Split(' ')]);
        Assert.That(code, Is.EqualTo(2), err);
        Assert.That(err, Does.Contain(message));
        Assert.That(Directory.Exists("nowhere-run"), Is.False, "nothing is written before the options are checked");
    }

    [Test]
    public void SelectInnerWithAGridFieldThePresetLacksFailsBeforeAnyWork()
    {
        var (code, _, err) = Run("train", "--data", "nowhere", "--out", "nowhere-run", "--select", "inner", "--grid", "wingspan=1,2");
        Assert.That(code, Is.EqualTo(2), err);
        Assert.That(err, Does.Contain("wingspan"));
    }
}
