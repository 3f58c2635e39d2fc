using System.Text.Json;
using MicroExpr.Models;
using MicroExpr.Tensors;
using MicroExpr.Training;
using static MicroExpr.Tests.Hardening.HostileFiles;

namespace MicroExpr.Tests.Hardening;

/// <summary>Issue 19 items 2, 4, 8 and 9 (checkpoints, run records).</summary>
public class ModelHardeningTests
{
    string dir = "";

    [SetUp]
    public void SetUp() => dir = Directory.CreateTempSubdirectory("mx-model-hostile-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(dir, true);

    static byte[] Floats(int n) => new byte[4 * n];

    // ---- item 8: the safetensors header ----

    [TestCase("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", "data offsets")]
    [TestCase("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", "data offsets")]
    [TestCase("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", "overlap")]
    [TestCase("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", "'dtype'")]
    [TestCase("{\"a\":{\"dtype\":\"F32\",\"shape\":[3000000000],\"data_offsets\":[0,8]}}", "shape value 3000000000")]
    [TestCase("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", "shape value 1.5")]
    [TestCase("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", "shape value -2")]
    [TestCase("{\"a\":{\"dtype\":\"F32\",\"shape\":[65536,65536,65536],\"data_offsets\":[0,16]}}", "more values than an array holds")]
    [TestCase("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", "appears twice")]
    [TestCase("[1,2,3]", "expected an object")]
    [TestCase("{\"a\":[1]}", "expected an object")]
    [TestCase("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", "data_offsets")]
    [TestCase("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,99999999999999999999]}}", "data offset")]
    [TestCase("{\"__metadata__\":{\"k\":5}}", "__metadata__")]
    [TestCase("{\"__metadata__\":[]}", "__metadata__")]
    public void AHostileHeaderIsRefusedNamingTheFile(string header, string expected)
    {
        string path = Path.Combine(dir, "bad.safetensors");
        RawSafetensors(path, header, Floats(4));
        long bytes = Allocated(() =>
        {
            var ex = Assert.Throws<InvalidDataException>(() => MicroExpr.Models.Safetensors.Read(path))!;
            Assert.That(ex.Message, Does.StartWith(path).And.Contain(expected));
        });
        Assert.That(bytes, Is.LessThan(16 << 20));
    }

    // ---- items 4 and 8: the model config ----

    static string WithConfig(SlsttConfig real, string configJson)
    {
        var meta = new Dictionary<string, string> { ["microexpr.config"] = configJson };
        var parts = new List<string> { $"\"__metadata__\":{JsonSerializer.Serialize(meta)}" };
        parts.Add("\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}");
        _ = real;
        return "{" + string.Join(",", parts) + "}";
    }

    [Test]
    public void AConfigClaimingAHugeModelInASmallFileIsRefusedBeforeBuildingIt()
    {
        string path = Path.Combine(dir, "huge.safetensors");
        // A real tiny checkpoint whose config is rewritten to width 4096, depth 12.
        using (var m = new SlsttModel(SlsttPresets.Tiny, new Rng(1))) Weights.Save(m, path);
        var (arrays, meta) = MicroExpr.Models.Safetensors.Read(path);
        meta["microexpr.config"] = JsonSerializer.Serialize(SlsttPresets.Tiny with { Width = 4096, Depth = 12, MlpHidden = 16384, Heads = 16 });
        MicroExpr.Models.Safetensors.Write(path, arrays, meta);
        long bytes = Allocated(() =>
        {
            var ex = Assert.Throws<InvalidDataException>(() => Weights.ReadConfig(path))!;
            Assert.That(ex.Message, Does.StartWith(path).And.Contain("width 4096").And.Contain("does not belong"));
        });
        Assert.That(bytes, Is.LessThan(4 * new FileInfo(path).Length + (16 << 20)), "nothing beyond reading the file");
    }

    [TestCase("{\"Name\":\"x\",\"Heads\":0}", "Heads = 0")]
    [TestCase("{\"Name\":\"x\",\"Width\":64,\"Heads\":5}", "not a multiple of Heads")]
    [TestCase("{\"Name\":\"x\",\"PatchSize\":0}", "PatchSize = 0")]
    [TestCase("{\"Name\":\"x\",\"Classes\":0}", "Classes = 0")]
    [TestCase("{\"Name\":\"x\",\"Temporal\":9}", "Temporal = 9")]
    [TestCase("{\"Name\":\"x\",\"LayerNormEps\":-1}", "LayerNormEps")]
    [TestCase("{not json", "not a valid model config")]
    [TestCase("{\"Width\":64}", "not a valid model config")]
    [TestCase("null", "null")]
    public void ABrokenConfigNamesTheField(string config, string expected)
    {
        string path = Path.Combine(dir, "cfg.safetensors");
        RawSafetensors(path, WithConfig(SlsttPresets.Tiny, config), Floats(4));
        var ex = Assert.Throws<InvalidDataException>(() => Weights.ReadConfig(path))!;
        Assert.That(ex.Message, Does.StartWith(path).And.Contain(expected));
    }

    // ---- items 2 and 9: resuming ----

    static readonly TrainOptions Options = new() { Preset = "slstt-tiny", Epochs = 2, BatchSize = 4, LearningRate = 3e-3f, WarmupEpochs = 1 };

    sealed class CancelAfter(int epochs, CancellationTokenSource cts) : ITrainingProgress
    {
        public void OnEpoch(string fold, int foldIndex, int folds, int epoch, int total, double loss, double seconds)
        {
            if (epoch == epochs) cts.Cancel();
        }
    }

    [Test]
    public void ResumingOntoOtherDataIsRefusedNamingTheDifference()
    {
        string run = Path.Combine(dir, "run");
        var data = Tests.Training.LosoTests.ToyClips();
        LosoRunner.Train(data, Options with { Epochs = 1 }, run, Device.Cpu, resume: false, onlyFold: 0);
        // Same shape, same subjects and classes, one clip's values changed: another data set.
        var clips = data.Clips.Select((c, i) => i == 5 ? c with { Data = c.Data.Select(v => v + 0.5f).ToArray() } : c).ToList();
        var changed = new ClipSet(clips, data.ClassNames, data.Frames, data.Channels, data.Size, data.Source);
        var ex = Assert.Throws<InvalidOperationException>(() => LosoRunner.Train(changed, Options with { Epochs = 1 }, run, Device.Cpu, resume: true))!;
        Assert.That(ex.Message, Does.Contain("clip fingerprint").And.Contain("other data"));
        var moved = new ClipSet(data.Clips, data.ClassNames, data.Frames, data.Channels, data.Size, "another-cache");
        var ex2 = Assert.Throws<InvalidOperationException>(() => LosoRunner.Train(moved, Options with { Epochs = 1 }, run, Device.Cpu, resume: true))!;
        Assert.That(ex2.Message, Does.Contain("data: ").And.Contain("another-cache"));
        // The same data resumes (fold 1 is done: nothing to train for it).
        Assert.That(LosoRunner.Train(data, Options with { Epochs = 1 }, run, Device.Cpu, resume: true, onlyFold: 0), Has.Count.EqualTo(1));
    }

    [Test]
    public void ACheckpointWithoutOptimizerStepIsRefusedNamingTheField()
    {
        string run = Path.Combine(dir, "run");
        var data = Tests.Training.LosoTests.ToyClips();
        using var cts = new CancellationTokenSource();
        Assert.Throws<OperationCanceledException>(() =>
            LosoRunner.Train(data, Options, run, Device.Cpu, resume: false, onlyFold: 1, progress: new CancelAfter(1, cts), cancel: cts.Token));
        string ckpt = Path.Combine(LosoRunner.FoldDir(run, 1, "sub1"), FoldTrainer.CheckpointFile);
        var (arrays, meta) = MicroExpr.Models.Safetensors.Read(ckpt);
        meta.Remove("optimizer_step");
        MicroExpr.Models.Safetensors.Write(ckpt, arrays, meta);
        var ex = Assert.Throws<InvalidDataException>(() => LosoRunner.Train(data, Options, run, Device.Cpu, resume: true, onlyFold: 1))!;
        Assert.That(ex.Message, Does.StartWith(ckpt).And.Contain("optimizer_step"));
    }
}

/// <summary>Issue 19 item 12 (predict): the numbers the user gave, before anything is loaded.</summary>
public class PredictArgumentTests
{
    [TestCase("--apex", "101", "--apex 101 is before --onset 105")]
    [TestCase("--offset", "100", "--offset 100 is before --onset 105")]
    public void OnsetApexOffsetOutOfOrderRepeatTheNumbersGiven(string option, string value, string expected)
    {
        var ex = Assert.Throws<MicroExpr.Cli.Args.CliUsageException>(() =>
            MicroExpr.Cli.Entry.Dispatch(["predict", "--model", "/nonexistent/run", "--frames", "/nonexistent/frames", "--onset", "105", option, value]))!;
        Assert.That(ex.Message, Does.Contain(expected));
    }
}
