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
    public void BenchBuildsTheRgbInputsTheModelDeclares()
    {
        var (code, output, err) = Run("bench", "train-step", "--model", "stt-r18", "--device", "cpu", "--batch", "1", "--warmup", "0", "--runs", "1", "--json");
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(output, Does.Contain("stt-r18"));
    }

    [Test]
    public void AnUnknownInputKindIsAUsageError()
    {
        var (code, _, err) = Run("preprocess", "--dataset", "manifest", "--root", "/nonexistent", "--out", "/nonexistent/out", "--inputs", "motion,flow");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("--inputs").And.Contain("'flow'"));
    }

    /// <summary>A model reading RGB frames and the dynamic image: predict's inputs for a clip are the cache's, value for value.</summary>
    sealed record RgbAndDiConfig(int Size) : MicroExpr.Models.IMerModelConfig
    {
        public string Name => "rgb-di-test";
        public string Family => "test";
        public int Classes => 2;
        public IReadOnlyList<MicroExpr.Models.InputShape> Inputs =>
            [new(MicroExpr.Models.InputKind.RgbFrames, 0, 3, Size), new(MicroExpr.Models.InputKind.DynamicImage, 1, 1, Size)];
        public IReadOnlyList<string> Differences(MicroExpr.Models.IMerModelConfig other) => [];
        public MicroExpr.Models.IMerModelConfig ForData(MicroExpr.Models.DataShape data) => this;
    }

    [Test]
    public void PredictComputesTheKindsAModelReadsExactlyAsTheCacheHoldsThem()
    {
        string dir = Directory.CreateTempSubdirectory("rgb-predict").FullName;
        try
        {
            string synth = Path.Combine(dir, "synth"), cache = Path.Combine(dir, "cache");
            var summary = MicroExpr.Data.Synthetic.SyntheticDataset.Generate(
                new MicroExpr.Data.Synthetic.SyntheticOptions { Subjects = 1, ClipsPerSubject = 2, Size = 48, Frames = 12, Seed = 3 }, synth, preview: false);
            var list = MicroExpr.Data.Annotations.Casme2Reader.Read(summary.RawDir, summary.CodingFile, MicroExpr.Data.Annotations.ClassScheme.Three);
            var settings = new PreprocessSettings(Frames: 3, Size: 32, FaceDetect: false,
                Inputs: CacheInputs.Motion | CacheInputs.Rgb | CacheInputs.Grey | CacheInputs.DynamicImage);
            MicroExpr.Data.Cache.Preprocessor.Run(list, settings, cache, workers: 1);
            var opened = PreprocessedCache.Open(cache);
            var config = new RgbAndDiConfig(32);
            for (int i = 0; i < list.Clips.Count; i++)
            {
                using var loaded = MicroExpr.Data.Frames.ClipLoader.Load(list.Clips[i]);
                // As predict is given them: the clip's frames, onset 0, the annotated apex, the last frame; the recorded settings.
                var got = MicroExpr.Cli.Commands.PredictCommand.Inputs(loaded.Frames, 0, loaded.Apex, loaded.Frames.Count - 1, opened.Settings!, config, "model");
                Assert.That(got.Keys, Is.EquivalentTo(new[] { MicroExpr.Models.InputKind.RgbFrames, MicroExpr.Models.InputKind.DynamicImage }), "only what the model reads");
                Assert.That(got[MicroExpr.Models.InputKind.RgbFrames].Data, Is.EqualTo(opened.Load(opened.Clips[i], CacheInputs.Rgb)));
                Assert.That(got[MicroExpr.Models.InputKind.DynamicImage].Data, Is.EqualTo(opened.Load(opened.Clips[i], CacheInputs.DynamicImage)), "a grey DI, as the cache pooled it");
            }
            using var first = MicroExpr.Data.Frames.ClipLoader.Load(list.Clips[0]);
            var wrong = Assert.Throws<InvalidDataException>(() =>
                MicroExpr.Cli.Commands.PredictCommand.Inputs(first.Frames, 0, first.Apex, first.Frames.Count - 1, opened.Settings!, new RgbAndDiConfig(64), "model.safetensors"))!;
            Assert.That(wrong.Message, Does.Contain("model.safetensors").And.Contain("RGB face frames"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
