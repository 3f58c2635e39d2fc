using MicroExpr.Cli;
using MicroExpr.Data;

namespace MicroExpr.Tests.Cli;

/// <summary>
/// aie-tiny through the commands: preprocess --inputs motion,rgb prints the AU frequency table, train reads RGB and motion
/// frames and the clips' action units (the contrastive term), and predict runs the saved model on a clip without any action
/// units. Tiny on purpose (2 subjects × 3 clips, T = 2, 16 px, one epoch): it proves the path, not the model.
/// </summary>
[NonParallelizable]
public class AieEndToEndTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => ConsoleCapture.Run(() => Entry.Run(args));

    [Test]
    public void AieTinyTrainsOnRgbMotionAndActionUnitsAndPredictsWithoutThem()
    {
        string dir = Directory.CreateTempSubdirectory("aie-e2e").FullName;
        try
        {
            string synth = Path.Combine(dir, "synth"), cache = Path.Combine(dir, "cache"), run = Path.Combine(dir, "run");
            var (sCode, _, sErr) = Run("synth", "--out", synth, "--subjects", "2", "--clips-per-subject", "3", "--size", "32", "--frames", "12");
            Assert.That(sCode, Is.EqualTo(0), sErr);
            var (pCode, pOut, pErr) = Run("preprocess", "--dataset", "casme2", "--root", Path.Combine(synth, "CASME2_RAW_selected"),
                "--annotations", Path.Combine(synth, "CASME2-coding-synthetic.xlsx"), "--out", cache, "--inputs", "motion,rgb", "--size", "16",
                "--frames", "2", "--no-face-detect", "--classes", "3");
            Assert.That(pCode, Is.EqualTo(0), pErr);
            Assert.That(pOut, Does.Contain("action units: 6 of 6 clips coded"), "the AU frequency table");
            Assert.That(PreprocessedCache.Open(cache).Clips.All(c => c.ActionUnits.Length > 0), "the index carries every clip's coding");

            var (tCode, _, tErr) = Run("train", "--data", cache, "--model", "aie-tiny", "--out", run, "--epochs", "1", "--batch", "2");
            Assert.That(tCode, Is.EqualTo(0), tErr);
            Assert.That(File.Exists(Path.Combine(run, "final", "model.safetensors")));
            var (eCode, eOut, eErr) = Run("evaluate", "--run", run, "--json");
            Assert.That(eCode, Is.EqualTo(0), eErr);
            Assert.That(eOut, Does.Contain("\"uf1\""));

            string clip = Directory.GetDirectories(Path.Combine(synth, "CASME2_RAW_selected", "sub01"))[0];
            var (qCode, qOut, qErr) = Run("predict", "--model", run, "--frames", clip, "--json");
            Assert.That(qCode, Is.EqualTo(0), qErr);
            Assert.That(qOut, Does.Contain("probabilities"));

            // The control runs the same way (the codings shuffled across clips).
            var (cCode, _, cErr) = Run("train", "--data", cache, "--model", "aie-tiny", "--out", Path.Combine(dir, "run-shuffled"), "--epochs", "1",
                "--batch", "2", "--shuffle-aus", "--no-final", "--fold", "1");
            Assert.That(cCode, Is.EqualTo(0), cErr);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
