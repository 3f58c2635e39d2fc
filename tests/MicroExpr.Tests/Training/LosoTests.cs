using MicroExpr.Tensors;
using MicroExpr.Training;

namespace MicroExpr.Tests.Training;

public class LosoTests
{
    private string run = "";

    [SetUp]
    public void SetUp() => run = Path.Combine(Directory.CreateTempSubdirectory("loso").FullName, "run");

    [TearDown]
    public void TearDown() => Directory.Delete(Path.GetDirectoryName(run)!, true);

    /// <summary>3 subjects × 4 clips of [T=2, 3, 16, 16]; the class is a bright square's quadrant in frame 2 only.</summary>
    internal static ClipSet ToyClips(int subjects = 3, int perSubject = 4)
    {
        var rng = new Rng(17);
        var clips = new List<Clip>();
        for (int s = 0; s < subjects; s++)
            for (int i = 0; i < perSubject; i++)
            {
                int label = i % 3;
                var data = new float[2 * 3 * 16 * 16];
                for (int j = 0; j < data.Length; j++) data[j] = (float)(0.1 * rng.NextNormal());
                for (int c = 0; c < 3; c++)
                    for (int y = 0; y < 6; y++)
                        for (int x = 0; x < 6; x++)
                            data[((1 * 3 + c) * 16 + y + (label == 1 ? 8 : 1)) * 16 + x + (label == 2 ? 8 : 1)] += 1f;
                clips.Add(new Clip($"sub{s}/clip{i}", $"sub{s}", label, data));
            }
        return new ClipSet(clips, ["a", "b", "c"], 2, 3, 16, "toy");
    }

    private static readonly TrainOptions Options = new() { Preset = "slstt-tiny", Epochs = 3, BatchSize = 4, LearningRate = 3e-3f, WarmupEpochs = 1, Oracle = true };

    private sealed class CancelAfter(int epochs, CancellationTokenSource cts) : ITrainingProgress
    {
        public void OnEpoch(string fold, int foldIndex, int folds, int epoch, int total, double loss, double seconds)
        {
            if (epoch == epochs) cts.Cancel();
        }
    }

    [Test]
    public void AResumedFoldEndsExactlyWhereAnUninterruptedOneDoes()
    {
        var data = ToyClips();
        var full = LosoRunner.Train(data, Options, run + "-full", Device.Cpu, resume: false, onlyFold: 1).Single();

        using var cts = new CancellationTokenSource();
        Assert.Throws<OperationCanceledException>(() =>
            LosoRunner.Train(data, Options, run, Device.Cpu, resume: false, onlyFold: 1, progress: new CancelAfter(2, cts), cancel: cts.Token));
        Assert.That(File.Exists(Path.Combine(LosoRunner.FoldDir(run, 1, "sub1"), FoldTrainer.CheckpointFile)), "a checkpoint was left");
        var resumed = LosoRunner.Train(data, Options, run, Device.Cpu, resume: true, onlyFold: 1).Single();

        Assert.That(resumed.EpochLoss, Is.EqualTo(full.EpochLoss));
        Assert.That(resumed.Predictions.Select(p => p.Probabilities), Is.EqualTo(full.Predictions.Select(p => p.Probabilities)));
        Directory.Delete(run + "-full", true);
    }

    [Test]
    public void FoldsTrainSeparatelyAndMergeIntoAReport()
    {
        var data = ToyClips();
        var o = Options with { Epochs = 2 };
        foreach (var k in new[] { "1", "sub1", "3" })
            LosoRunner.Train(data, o, run, Device.Cpu, resume: false, onlyFold: LosoRunner.ResolveFold(data, k));
        var summary = LosoRunner.Merge(run);
        Assert.That(summary.Complete, Is.True);
        Assert.That(summary.Honest.Count, Is.EqualTo(12));
        foreach (var f in summary.Folds)
        {
            Assert.That(f.TrainSubjects, Does.Not.Contain(f.Subject), "no test subject in training");
            Assert.That(f.Predictions.All(p => p.Subject == f.Subject), "only the test subject is evaluated");
        }
        Assert.That(summary.Oracle, Is.Not.Null);
        foreach (var file in new[] { "metrics.json", "report.md", "confusion.png", "curves.png", "options.json", "log.jsonl" })
            Assert.That(File.Exists(Path.Combine(run, file)), file);
        Assert.That(File.ReadAllText(Path.Combine(run, "report.md")), Does.Contain("UF1").And.Contain("oracle epoch"));
    }

    [Test]
    public void ARunFolderIsNotOverwrittenWithoutResume()
    {
        var data = ToyClips();
        LosoRunner.Train(data, Options with { Epochs = 1 }, run, Device.Cpu, resume: false, onlyFold: 0);
        var ex = Assert.Throws<InvalidOperationException>(() => LosoRunner.Train(data, Options with { Epochs = 1 }, run, Device.Cpu, resume: false))!;
        Assert.That(ex.Message, Does.Contain("--resume"));
        var ex2 = Assert.Throws<InvalidOperationException>(() => LosoRunner.Train(data, Options with { Epochs = 2 }, run, Device.Cpu, resume: true))!;
        Assert.That(ex2.Message, Does.Contain("other options"));
    }

    [Test]
    public void BadFoldNamesTheChoices()
    {
        var ex = Assert.Throws<ArgumentException>(() => LosoRunner.ResolveFold(ToyClips(), "9"))!;
        Assert.That(ex.Message, Does.Contain("1..3").And.Contain("sub0"));
    }
}

/// <summary>Training on another device and on single motion images (T = 1), as a manifest of precomputed images gives.</summary>
public class TrainingVariantsTests
{
    [Test]
    public void OneMotionImagePerClipTrains()
    {
        var toy = LosoTests.ToyClips();
        // Keep only the second frame of each clip: T = 1.
        var clips = toy.Clips.Select(c => c with { Data = c.Data.AsSpan(3 * 16 * 16).ToArray() }).ToList();
        var data = new ClipSet(clips, toy.ClassNames, 1, 3, 16, "toy T=1");
        string run = Path.Combine(Directory.CreateTempSubdirectory("t1").FullName, "run");
        var r = LosoRunner.Train(data, new TrainOptions { Epochs = 2, BatchSize = 4 }, run, Device.Cpu, resume: false, onlyFold: 0).Single();
        Assert.That(r.Predictions, Has.Count.EqualTo(4));
        Directory.Delete(Path.GetDirectoryName(run)!, true);
    }

    [Test]
    public void AFoldOnIlgpuCpuMatchesTheCpuBackend()
    {
        var data = LosoTests.ToyClips(subjects: 2, perSubject: 3);
        var o = new TrainOptions { Epochs = 1, BatchSize = 3, Seed = 5 };
        string root = Directory.CreateTempSubdirectory("dev").FullName;
        var cpu = LosoRunner.Train(data, o, Path.Combine(root, "cpu"), Device.Cpu, resume: false, onlyFold: 0).Single();
        var ilgpu = LosoRunner.Train(data, o, Path.Combine(root, "ilgpu"), Devices.Resolve("ilgpu-cpu"), resume: false, onlyFold: 0).Single();
        Assert.That(ilgpu.EpochLoss[0], Is.EqualTo(cpu.EpochLoss[0]).Within(1e-4 * Math.Abs(cpu.EpochLoss[0])));
        for (int i = 0; i < cpu.Predictions.Count; i++)
            Assert.That(ilgpu.Predictions[i].Probabilities, Is.EqualTo(cpu.Predictions[i].Probabilities).Within(1e-3f));
        Directory.Delete(root, true);
    }
}
