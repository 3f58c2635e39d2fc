using System.Text.Json;
using MicroExpr.Data;
using MicroExpr.Data.Annotations;
using MicroExpr.Data.Cache;
using MicroExpr.Models;
using MicroExpr.Nn;
using MicroExpr.Tensors;
using MicroExpr.Training;
using static MicroExpr.Tests.Data.DataFixtures;

namespace MicroExpr.Tests.Training;

/// <summary>Issue 16's honest-selection machinery: inner splits, nested selection, seeds, per-data-set figures, freezing.</summary>
public class HonestSelectionTests
{
    private string root = "";

    [SetUp]
    public void SetUp() => root = Directory.CreateTempSubdirectory("honest").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(root, true);

    private static readonly TrainOptions Tiny = new() { Preset = "slstt-tiny", Epochs = 2, BatchSize = 4, LearningRate = 3e-3f, WarmupEpochs = 1 };

    private static Prediction P(string clip, string subject, int label, float[] probs, string dataset = "")
    {
        int arg = 0;
        for (int c = 1; c < probs.Length; c++) if (probs[c] > probs[arg]) arg = c;
        return new Prediction(clip, subject, label, arg, probs, dataset);
    }

    // ---- inner split, by construction ----

    [Test]
    public void InnerGroupsPartitionTheTrainingSubjectsAndNeverHoldTheOuterOne()
    {
        var all = Enumerable.Range(1, 44).Select(i => $"samm_{i:D3}").ToList();
        foreach (var outer in new[] { all[0], all[17], all[43] })
            foreach (int k in new[] { 2, 5, 7 })
            {
                var train = all.Where(s => s != outer).ToList();
                var groups = InnerSplit.Groups(train, outer, k, seed: 3);
                Assert.That(groups, Has.Count.EqualTo(k));
                var flat = groups.SelectMany(g => g).ToList();
                Assert.That(flat, Is.EquivalentTo(train), "every training subject in exactly one group");
                Assert.That(flat, Does.Not.Contain(outer));
                Assert.That(groups.Max(g => g.Count) - groups.Min(g => g.Count), Is.LessThanOrEqualTo(1));
                Assert.That(InnerSplit.Groups(train, outer, k, seed: 3), Is.EqualTo(groups), "deterministic by seed");
                Assert.That(InnerSplit.Groups(train.AsEnumerable().Reverse().ToList(), outer, k, seed: 3), Is.EqualTo(groups), "independent of the input order");
            }
        var t = all.Skip(1).ToList();
        Assert.That(InnerSplit.Groups(t, all[0], 5, 1), Is.Not.EqualTo(InnerSplit.Groups(t, all[0], 5, 2)), "another seed, another split");
        Assert.That(InnerSplit.Groups(["a", "b", "c"], "z", 5, 1), Has.Count.EqualTo(3), "k is capped at the subject count");
        var ex = Assert.Throws<InvalidOperationException>(() => InnerSplit.Groups(all, all[5], 5, 1))!;
        Assert.That(ex.Message, Does.Contain(all[5]));
        Assert.Throws<ArgumentException>(() => InnerSplit.Groups(["a"], "z", 5, 1));
        Assert.Throws<ArgumentException>(() => InnerSplit.Groups(all, "z", 1, 1));
    }

    [Test]
    public void GridsAreParsedAndCheckedAgainstThePreset()
    {
        var g = InnerGrid.Parse("lr=0.0003,0.001")!;
        Assert.That(g.Apply(Tiny, 1).LearningRate, Is.EqualTo(0.001f));
        Assert.That(InnerGrid.Parse("depth=1,2")!.Apply(Tiny, 0).ModelSettings, Is.EqualTo("depth=1"));
        Assert.That(InnerGrid.Parse(""), Is.Null);
        Assert.Throws<ArgumentException>(() => InnerGrid.Parse("lr=1,2,3,4,5"));
        Assert.Throws<ArgumentException>(() => InnerGrid.Parse("lr"));
        Assert.Throws<ArgumentException>(() => InnerGrid.Parse("lr=1,1"));
        Assert.That(Assert.Throws<ArgumentException>(() => InnerGrid.Parse("nosuchfield=1,2")!.Check(Tiny))!.Message, Does.Contain("nosuchfield"));
        Assert.Throws<ArgumentException>(() => InnerGrid.Parse("lr=fast")!.Check(Tiny));
        Assert.Throws<ArgumentException>(() => InnerGrid.Parse("epochs=10,20")!.Check(Tiny));
        Assert.Throws<ArgumentException>(() => InnerGrid.Parse("depth=1,2")!.Check(Tiny with { ModelSettings = "depth=3" }));
    }

    // ---- inner selection end to end ----

    [Test]
    public void InnerSelectionNeverTrainsOrScoresOnTheOuterSubject()
    {
        var data = LosoTests.ToyClips(subjects: 4, perSubject: 3);
        string run = Path.Combine(root, "run");
        var o = Tiny with { Select = "inner", InnerFolds = 2 };
        LosoRunner.Train(data, o, run, Device.Cpu, resume: false);
        var summary = LosoRunner.Merge(run);

        Assert.That(summary.InnerChoices, Has.Count.EqualTo(4));
        Assert.That(summary.Inner, Is.Not.Null);
        Assert.That(summary.Oracle, Is.Not.Null, "--select inner implies the oracle record");
        Assert.That(summary.Inner!.Count, Is.EqualTo(12));
        for (int i = 0; i < data.Subjects.Count; i++)
        {
            string outer = data.Subjects[i];
            var choice = summary.InnerChoices.Single(c => c.Subject == outer);
            Assert.That(choice.Groups.SelectMany(g => g), Is.EquivalentTo(data.Subjects.Where(s => s != outer)));
            Assert.That(choice.Predictions.All(p => p.Subject == outer), "the outer subject is what the choice is tested on");
            Assert.That(choice.Trainings, Is.EqualTo(2 * 1 + 1), "k × grid + 1");
            Assert.That(choice.PooledUf1.Single(), Has.Count.EqualTo(2), "one pooled inner UF1 per epoch");
            // Every inner training on disk: trained without the outer subject, scored on its held-out group only.
            var innerDirs = Directory.GetDirectories(InnerSelection.FoldDir(run, i, outer));
            Assert.That(innerDirs, Has.Length.EqualTo(2));
            foreach (var d in innerDirs)
            {
                var r = LosoRunner.ReadFold(Path.Combine(d, FoldTrainer.ResultFile));
                Assert.That(r.TrainSubjects, Does.Not.Contain(outer));
                var scored = r.OracleByEpoch!.SelectMany(e => e).Select(p => p.Subject).Concat(r.Predictions.Select(p => p.Subject)).Distinct().ToList();
                Assert.That(scored, Does.Not.Contain(outer));
                Assert.That(scored.Intersect(r.TrainSubjects), Is.Empty);
            }
            // Without a grid the outer model is the fixed-epoch fold; its prediction at the chosen epoch is the honest one.
            var fixedFold = summary.Folds.Single(f => f.Subject == outer);
            Assert.That(choice.Predictions.Select(p => p.Probabilities), Is.EqualTo(fixedFold.OracleByEpoch![choice.ChosenEpoch - 1].Select(p => p.Probabilities)));
        }
        var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "metrics.json"))).RootElement;
        Assert.That(metrics.GetProperty("inner_selection").GetProperty("trainings").GetInt32(), Is.EqualTo(12));
        Assert.That(File.ReadAllText(Path.Combine(run, "report.md")), Does.Contain("inner selection").And.Contain("looks at test labels"));

        // Resuming reads the choices instead of training again.
        var before = File.GetLastWriteTimeUtc(Path.Combine(InnerSelection.FoldDir(run, 0, data.Subjects[0]), InnerSelection.ChoiceFile));
        LosoRunner.Train(data, o, run, Device.Cpu, resume: true);
        Assert.That(File.GetLastWriteTimeUtc(Path.Combine(InnerSelection.FoldDir(run, 0, data.Subjects[0]), InnerSelection.ChoiceFile)), Is.EqualTo(before));
    }

    [Test]
    public void AGridValueOtherThanTheRunsOwnIsRetrainedAndStoppedAtTheChosenEpoch()
    {
        var data = LosoTests.ToyClips(subjects: 4, perSubject: 3);
        string run = Path.Combine(root, "grid");
        // Neither value is the run's own lr (3e-3), so the chosen one is retrained on all training subjects.
        var o = Tiny with { Select = "inner", InnerFolds = 2, Grid = "lr=0.01,0.0001" };
        LosoRunner.Train(data, o, run, Device.Cpu, resume: false, onlyFold: 1);
        var choice = InnerSelection.ReadAll(run).Single();
        Assert.That(choice.Settings, Is.EqualTo(new[] { "lr=0.01", "lr=0.0001" }));
        Assert.That(choice.PooledUf1, Has.Count.EqualTo(2));
        Assert.That(choice.Trainings, Is.EqualTo(2 * 2 + 2), "k × grid inner, the retraining and the fixed-epoch fold");
        var retrained = LosoRunner.ReadFold(Path.Combine(InnerSelection.FoldDir(run, 1, "sub1"), "chosen", FoldTrainer.ResultFile));
        Assert.That(retrained.Epochs, Is.EqualTo(choice.ChosenEpoch));
        Assert.That(retrained.TrainSubjects, Is.EquivalentTo(new[] { "sub0", "sub2", "sub3" }));
        Assert.That(choice.Predictions.Select(p => p.Probabilities), Is.EqualTo(retrained.Predictions.Select(p => p.Probabilities)));
    }

    // ---- the final model under --select inner ----

    /// <summary>Counts the trainings a run reports finished (its last epoch), as the progress bar does.</summary>
    private sealed class CountingProgress : ITrainingProgress
    {
        public int Finished, Earlier;
        public void OnEpoch(string fold, int foldIndex, int folds, int epoch, int epochs, double loss, double seconds)
        {
            if (epoch != epochs) return;
            Finished++;
            if (double.IsNaN(loss)) Earlier++;
        }
    }

    [Test]
    public void TheFinalModelIsChosenByTheSameInnerSelectionOverAllSubjectsAndResumes()
    {
        var data = LosoTests.ToyClips(subjects: 4, perSubject: 3);
        string run = Path.Combine(root, "final");
        var o = Tiny with { Select = "inner", InnerFolds = 2, Epochs = 4, LearningRate = 3e-2f };
        var progress = new CountingProgress();
        LosoRunner.Train(data, o, run, Device.Cpu, resume: false, progress: progress, trainFinal: true);
        string final = LosoRunner.FinalDir(run), choicePath = Path.Combine(final, InnerSelection.ChoiceFile), modelPath = Path.Combine(final, FoldTrainer.FinalModelFile);
        var choice = InnerSelection.ReadFinal(choicePath);

        Assert.That(choice.Groups, Has.Count.EqualTo(2));
        Assert.That(choice.Groups.SelectMany(g => g), Is.EquivalentTo(data.Subjects), "the final's groups partition all subjects");
        Assert.That(choice.PooledUf1.Single(), Has.Count.EqualTo(o.Epochs));
        Assert.That(choice.Trainings, Is.EqualTo(2 + 1));
        Assert.That(choice.Describe(), Does.Contain($"epoch {choice.ChosenEpoch} of {o.Epochs}"));
        // The pooled UF1 is that of the final's inner held-out groups, read back from its splits on disk.
        var splits = Directory.GetDirectories(InnerSelection.FinalInnerDir(final)).Order(StringComparer.Ordinal).Select(d => LosoRunner.ReadFold(Path.Combine(d, FoldTrainer.ResultFile))).ToList();
        Assert.That(splits, Has.Count.EqualTo(2));
        for (int e = 0; e < o.Epochs; e++)
            Assert.That(choice.PooledUf1[0][e], Is.EqualTo(Math.Round(MetricSet.Compute(splits.SelectMany(r => r.OracleByEpoch![e]).ToList(), 3).Uf1, 6)));
        foreach (var (r, j) in splits.Select((r, j) => (r, j)))
        {
            Assert.That(r.TrainSubjects.Concat(choice.Groups[j]), Is.EquivalentTo(data.Subjects));
            Assert.That(r.Predictions.Select(p => p.Subject).Distinct(), Is.EquivalentTo(choice.Groups[j]), "scored on its held-out group only");
        }
        Assert.That(choice.PooledUf1[0].Skip(choice.ChosenEpoch).All(u => u < choice.PooledUf1[0][choice.ChosenEpoch - 1]), "later epochs score lower (ties go to the later epoch)");
        Assert.That(choice.PooledUf1[0].Take(choice.ChosenEpoch).All(u => u <= choice.PooledUf1[0][choice.ChosenEpoch - 1]));
        // This tiny run's choice stops early, so the final model is visibly not the fixed-epoch one.
        Assert.That(choice.ChosenEpoch, Is.LessThan(o.Epochs), "test setup: a run whose inner selection stops before --epochs");

        // The final model trained for the chosen epochs of the --epochs schedule: the fixed-epoch final's first epochs.
        var result = LosoRunner.ReadFold(Path.Combine(final, FoldTrainer.ResultFile));
        Assert.That(result.Epochs, Is.EqualTo(choice.ChosenEpoch));
        Assert.That(Safetensors.Read(modelPath).Metadata["epochs"], Is.EqualTo(choice.ChosenEpoch.ToString()));
        string plain = Path.Combine(root, "plain-final");
        FoldTrainer.TrainFinal(data, o, plain, Device.Cpu, data.Subjects.Count);
        var fixedFinal = LosoRunner.ReadFold(Path.Combine(plain, FoldTrainer.ResultFile));
        Assert.That(fixedFinal.EpochLoss, Has.Count.EqualTo(o.Epochs));
        Assert.That(result.EpochLoss, Is.EqualTo(fixedFinal.EpochLoss.Take(choice.ChosenEpoch)));
        Assert.That(Safetensors.Read(Path.Combine(plain, FoldTrainer.FinalModelFile)).Metadata.ContainsKey("epochs"), Is.False, "without a choice the model file is as before");

        // The progress total (what the bar is given) is the trainings actually run: the folds' and the final's.
        int total = MicroExpr.Cli.Commands.TrainingProgressBar.Trainings(o, data.Subjects.Count, 1, final: true);
        Assert.That(total, Is.EqualTo((4 + 1) * (2 + 1)));
        Assert.That(progress.Finished, Is.EqualTo(total));
        Assert.That(progress.Earlier, Is.Zero);

        // Resuming a finished run trains nothing and reports every training as done earlier.
        var written = (File.GetLastWriteTimeUtc(choicePath), File.GetLastWriteTimeUtc(modelPath));
        var again = new CountingProgress();
        LosoRunner.Train(data, o, run, Device.Cpu, resume: true, progress: again, trainFinal: true);
        Assert.That((File.GetLastWriteTimeUtc(choicePath), File.GetLastWriteTimeUtc(modelPath)), Is.EqualTo(written));
        Assert.That((again.Finished, again.Earlier), Is.EqualTo((total, total)));

        // Killed after one inner split of the final: the resumed run keeps that split and reaches the same choice and model.
        var modelBefore = Safetensors.Read(modelPath).Arrays.Select(a => a.Data).ToList();
        string kept = Path.Combine(InnerSelection.FinalInnerDir(final), "s1-k1", FoldTrainer.ResultFile);
        var keptTime = File.GetLastWriteTimeUtc(kept);
        File.Delete(choicePath);
        File.Delete(modelPath);
        Directory.Delete(Path.Combine(InnerSelection.FinalInnerDir(final), "s1-k2"), recursive: true);
        var resumed = new CountingProgress();
        LosoRunner.Train(data, o, run, Device.Cpu, resume: true, progress: resumed, trainFinal: true);
        Assert.That(File.GetLastWriteTimeUtc(kept), Is.EqualTo(keptTime), "a finished inner split is not retrained");
        Assert.That(InnerSelection.ReadFinal(choicePath) with { Seconds = 0 }, Is.EqualTo(choice with { Seconds = 0 }).Using<FinalChoice>((a, b) =>
            a.ChosenEpoch == b.ChosenEpoch && a.ChosenSetting == b.ChosenSetting && a.PooledUf1.SelectMany(x => x).SequenceEqual(b.PooledUf1.SelectMany(x => x))));
        Assert.That(Safetensors.Read(modelPath).Arrays.Select(a => a.Data), Is.EqualTo(modelBefore));
        Assert.That((resumed.Finished, resumed.Earlier), Is.EqualTo((total, total - 2)), "one inner split and the final model trained again");
    }

    [Test]
    public void TheFinalModelTrainsWithTheGridSettingItsSelectionChose()
    {
        var data = LosoTests.ToyClips(subjects: 3, perSubject: 3);
        string run = Path.Combine(root, "final-grid");
        var o = Tiny with { Select = "inner", InnerFolds = 2, Grid = "lr=0.01,0.0001" };
        var progress = new CountingProgress();
        LosoRunner.Train(data, o, run, Device.Cpu, resume: false, onlyFold: null, progress: progress, trainFinal: true);
        string final = LosoRunner.FinalDir(run);
        var choice = InnerSelection.ReadFinal(Path.Combine(final, InnerSelection.ChoiceFile));
        Assert.That(choice.Settings, Is.EqualTo(new[] { "lr=0.01", "lr=0.0001" }));
        Assert.That(choice.Trainings, Is.EqualTo(2 * 2 + 1));
        Assert.That(Directory.GetDirectories(InnerSelection.FinalInnerDir(final)), Has.Length.EqualTo(2 * 2));
        var meta = Safetensors.Read(Path.Combine(final, FoldTrainer.FinalModelFile)).Metadata;
        Assert.That(meta["inner_choice"], Is.EqualTo(choice.Settings[choice.ChosenSetting]));
        Assert.That(meta["epochs"], Is.EqualTo(choice.ChosenEpoch.ToString()));
        // The same losses as a final trained with that setting alone, stopped there.
        string alone = Path.Combine(root, "alone");
        FoldTrainer.TrainFinal(data, InnerGrid.Parse(o.Grid)!.Apply(o, choice.ChosenSetting) with { Select = "", Oracle = false }, alone, Device.Cpu, data.Subjects.Count,
            stopAfter: choice.ChosenEpoch);
        Assert.That(LosoRunner.ReadFold(Path.Combine(final, FoldTrainer.ResultFile)).EpochLoss,
            Is.EqualTo(LosoRunner.ReadFold(Path.Combine(alone, FoldTrainer.ResultFile)).EpochLoss));
        // Every training counted: the folds' inner ones, their retrainings when another setting won, and the final's.
        int retrained = InnerSelection.ReadAll(run).Sum(c => c.Trainings) - 3 * (2 * 2 + 1);
        Assert.That(progress.Finished, Is.EqualTo(MicroExpr.Cli.Commands.TrainingProgressBar.Trainings(o, 3, 1, final: true) + retrained));
    }

    [Test]
    public void WithSeedsOnlyTheFirstSeedSelectsAndTrainsTheFinalModel()
    {
        var data = LosoTests.ToyClips(subjects: 3, perSubject: 3);
        string run = Path.Combine(root, "seeds-inner");
        var o = Tiny with { Select = "inner", InnerFolds = 2, Epochs = 1 };
        SeedRuns.Train(data, o, [1, 2], run, Device.Cpu, resume: false, trainFinal: true);
        var first = InnerSelection.ReadFinal(Path.Combine(LosoRunner.FinalDir(SeedRuns.SeedDir(run, 1)), InnerSelection.ChoiceFile));
        Assert.That(first.Groups.SelectMany(g => g), Is.EquivalentTo(data.Subjects));
        Assert.That(File.Exists(Path.Combine(LosoRunner.FinalDir(SeedRuns.SeedDir(run, 1)), FoldTrainer.FinalModelFile)));
        Assert.That(Directory.Exists(LosoRunner.FinalDir(SeedRuns.SeedDir(run, 2))), Is.False);
    }

    [Test]
    public void EveryTrainingOfAnInnerRunHasASeedIndexOfItsOwn()
    {
        foreach (int folds in new[] { 2, 4, 28, 68 })
        {
            int k = folds; // the most groups a split can have (the final's, of all subjects)
            var indices = Enumerable.Range(0, folds + 1).ToList(); // the outer folds and the final model
            for (int outer = 0; outer < folds; outer++)
                for (int j = 0; j < Math.Min(k, folds - 1); j++) indices.Add(InnerSelection.InnerSeedIndex(folds, outer, j));
            for (int j = 0; j < k; j++) indices.Add(InnerSelection.InnerSeedIndex(folds, folds, j)); // the final's inner splits
            Assert.That(indices.Distinct().Count(), Is.EqualTo(indices.Count), $"{folds} folds");
        }
    }

    // ---- seeds ----

    [Test]
    public void SpreadIsTheSampleStandardDeviation()
    {
        var s = Spread.Of([0.5, 0.7, 0.9]);
        Assert.That(s.Mean, Is.EqualTo(0.7).Within(1e-12));
        Assert.That(s.Sd, Is.EqualTo(0.2).Within(1e-12));
        Assert.That(Spread.Of([0.4]).Sd, Is.EqualTo(0));
        Assert.That(SeedRuns.Parse("1, 2,3"), Is.EqualTo(new ulong[] { 1, 2, 3 }));
        Assert.Throws<ArgumentException>(() => SeedRuns.Parse("1"));
        Assert.Throws<ArgumentException>(() => SeedRuns.Parse("1,1"));
        Assert.Throws<ArgumentException>(() => SeedRuns.Parse("1,x"));
    }

    [Test]
    public void TheEnsembleAveragesTheSeedsProbabilities()
    {
        var a = new List<Prediction> { P("c1", "s1", 0, [0.6f, 0.3f, 0.1f]), P("c2", "s1", 1, [0.1f, 0.2f, 0.7f]), P("c3", "s2", 2, [0.2f, 0.3f, 0.5f]) };
        var b = new List<Prediction> { P("c2", "s1", 1, [0.0f, 0.9f, 0.1f]), P("c1", "s1", 0, [0.1f, 0.8f, 0.1f]) }; // c3 missing in seed b
        var e = SeedsSummary.EnsembleOf([a, b], 3);
        Assert.That(e.Select(p => p.Clip), Is.EqualTo(new[] { "c1", "c2" }), "clips every seed predicted, in the first seed's order");
        Assert.That(e[0].Probabilities, Is.EqualTo(new[] { 0.35f, 0.55f, 0.1f }).Within(1e-6f));
        Assert.That(e[0].Predicted, Is.EqualTo(1));
        Assert.That(e[1].Probabilities, Is.EqualTo(new[] { 0.05f, 0.55f, 0.4f }).Within(1e-6f));
        Assert.That(e[1].Predicted, Is.EqualTo(1));
        var wrong = new List<Prediction> { P("c1", "s1", 2, [1f, 0f, 0f]) };
        Assert.Throws<InvalidDataException>(() => SeedsSummary.EnsembleOf([a, wrong], 3));
    }

    [Test]
    public void SeedsRunOnceEachAndReportTheirSpreadAndEnsemble()
    {
        var data = LosoTests.ToyClips();
        string run = Path.Combine(root, "seeds");
        var o = Tiny with { Epochs = 1 };
        SeedRuns.Train(data, o, [1, 2], run, Device.Cpu, resume: false);
        var s = SeedRuns.Merge(run);
        Assert.That(s.Complete);
        Assert.That(s.Runs.Select(r => r.Seed), Is.EqualTo(new ulong[] { 1, 2 }));
        Assert.That(s.Runs.Select(r => r.Summary.Record.Options.Seed), Is.EqualTo(new ulong[] { 1, 2 }));
        var uf1 = s.Runs.Select(r => r.Summary.Honest.Uf1).ToList();
        Assert.That(s.Uf1.Mean, Is.EqualTo(uf1.Average()).Within(1e-12));
        Assert.That(s.Uf1.Sd, Is.EqualTo(Math.Abs(uf1[0] - uf1[1]) / Math.Sqrt(2)).Within(1e-12));
        var expected = MetricSet.Compute(SeedsSummary.EnsembleOf([s.Runs[0].Summary.Predictions, s.Runs[1].Summary.Predictions], 3), 3);
        Assert.That(s.Ensemble.Uf1, Is.EqualTo(expected.Uf1));
        Assert.That(s.Ensemble.Count, Is.EqualTo(12));
        foreach (var seed in new[] { 1, 2 }) Assert.That(File.Exists(Path.Combine(run, $"seed-{seed}", "metrics.json")));
        var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "metrics.json"))).RootElement;
        Assert.That(metrics.GetProperty("uf1").GetProperty("mean").GetDouble(), Is.EqualTo(Math.Round(uf1.Average(), 4)));
        Assert.That(metrics.GetProperty("ensemble").GetProperty("clips").GetInt32(), Is.EqualTo(12));

        // Resumable: the finished run is read back; other seeds or no --resume are refused.
        SeedRuns.Train(data, o, [1, 2], run, Device.Cpu, resume: true);
        Assert.That(Assert.Throws<InvalidOperationException>(() => SeedRuns.Train(data, o, [1, 3], run, Device.Cpu, resume: true))!.Message, Does.Contain("--seeds 1,2"));
        Assert.That(Assert.Throws<InvalidOperationException>(() => SeedRuns.Train(data, o, [1, 2], run, Device.Cpu, resume: false))!.Message, Does.Contain("--resume"));
    }

    // ---- per data set ----

    [Test]
    public void PerDatasetFiguresAreTheFiguresOfEachPart()
    {
        var preds = new List<Prediction>
        {
            P("casme2/s1/a", "s1", 0, [0.9f, 0.1f, 0f], "casme2"), P("casme2/s1/b", "s1", 1, [0.9f, 0.1f, 0f], "casme2"),
            P("samm/s2/a", "s2", 2, [0f, 0.1f, 0.9f], "samm"), P("samm/s2/b", "s2", 0, [0.2f, 0.8f, 0f]), // no Dataset field: read from the id
        };
        var per = MetricSet.PerDataset(preds, 3);
        Assert.That(per.Keys, Is.EqualTo(new[] { "casme2", "samm" }));
        Assert.That(per["casme2"].Uf1, Is.EqualTo(MetricSet.Compute(preds.Take(2).ToList(), 3).Uf1));
        Assert.That(per["samm"].Count, Is.EqualTo(2));
        // casme2: class 0 right, class 1 predicted 0 → F1_0 = 2/3, F1_1 = 0 (class 2 absent) → UF1 1/3.
        Assert.That(per["casme2"].Uf1, Is.EqualTo(1.0 / 3).Within(1e-12));
        Assert.That(MetricSet.PerDataset(preds.Take(2).ToList(), 3), Is.Empty, "one data set: no per-data-set table");
        Assert.That(new Prediction("s1/a", "s1", 0, 0, [1f]).DatasetOf(), Is.EqualTo(""));
        // A fold result written before the field existed reads back, its data set taken from the clip id.
        var old = JsonSerializer.Deserialize<Prediction>("""{"Clip":"smic/smic_s01/s01_ne_01","Subject":"smic_s01","Label":0,"Predicted":0,"Probabilities":[1,0,0]}""")!;
        Assert.That(old.DatasetOf(), Is.EqualTo("smic"));
    }

    [Test]
    public void TheManifestsDatasetColumnReachesTheCacheAndThePredictions()
    {
        string data = Path.Combine(root, "data");
        Directory.CreateDirectory(data);
        var rows = new List<string> { "subject,label,path,dataset,clip" };
        for (int s = 0; s < 4; s++)
            for (int c = 0; c < 3; c++)
            {
                using (var img = Texture(32, 32, 10 * s + c + 1)) OpenCvSharp.Cv2.ImWrite(Path.Combine(data, $"m{s}{c}.png"), img);
                rows.Add($"{(s < 2 ? "casme2" : "samm")}_{s},{new[] { "negative", "positive", "surprise" }[c]},m{s}{c}.png,{(s < 2 ? "casme2" : "samm")},e{c}");
            }
        File.WriteAllLines(Path.Combine(data, "manifest.csv"), rows);
        string cache = Path.Combine(root, "cache");
        var pre = Preprocessor.Run(ManifestReader.Read(Path.Combine(data, "manifest.csv")), new PreprocessSettings(Frames: 1, Size: 32, FaceDetect: false), cache, workers: 1);
        Assert.That(pre.Failed, Is.Empty);
        var clips = ClipSet.FromCache(cache);
        Assert.That(clips.Clips.Select(c => c.Dataset).Distinct().Order(), Is.EqualTo(new[] { "casme2", "samm" }));

        string run = Path.Combine(root, "run");
        LosoRunner.Train(clips, Tiny with { Epochs = 1 }, run, Device.Cpu, resume: false);
        var summary = LosoRunner.Merge(run);
        Assert.That(summary.Folds.SelectMany(f => f.Predictions).All(p => p.Dataset == (p.Subject.StartsWith("casme2") ? "casme2" : "samm")));
        Assert.That(summary.PerDataset.Keys, Is.EqualTo(new[] { "casme2", "samm" }));
        Assert.That(summary.PerDataset["samm"].Count, Is.EqualTo(6));
        var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "metrics.json"))).RootElement;
        Assert.That(metrics.GetProperty("per_dataset").GetProperty("casme2").GetProperty("clips").GetInt32(), Is.EqualTo(6));
    }

    // ---- --freeze spatial ----

    [Test]
    public void FrozenSpatialParametersDoNotChangeAndGetNoOptimizerState()
    {
        var cfg = ModelRegistry.Preset("slstt-tiny");
        using var model = (SlsttModel)ModelRegistry.Create(cfg, new Rng(3));
        int frozen = Freezing.Apply(model, "spatial");
        var named = model.NamedParameters().ToList();
        Assert.That(frozen, Is.EqualTo(named.Count(p => p.Name.StartsWith("spatial.") && !p.Name.StartsWith("spatial.norm."))));
        var before = named.ToDictionary(p => p.Name, p => p.Value.ToArray());
        var trained = model.Parameters().Where(p => p.RequiresGrad).ToList();
        Assert.That(trained.Count, Is.EqualTo(named.Count - frozen));
        using var opt = new AdamW(trained, 1e-2f);
        Assert.That(opt.State().Count(), Is.EqualTo(2 * trained.Count), "optimizer state for the trained parameters only");

        var rng = new Rng(9);
        var x = new float[2 * 2 * 3 * 32 * 32];
        for (int i = 0; i < x.Length; i++) x[i] = (float)rng.NextNormal();
        using (new TensorScope())
        {
            var logits = model.Forward(Tensor.FromSpan(x, [2, 2, 3, 32, 32], Device.Cpu));
            var loss = new CrossEntropyLoss().Forward(new ModelOutput(logits), ModelBatch.Of(InputKind.MotionFrames, logits), [0, 2], null, 0f);
            loss.Backward();
        }
        foreach (var (name, p) in named.Where(p => !p.Value.RequiresGrad)) Assert.That(p.Grad, Is.Null, $"{name}: no gradient work");
        opt.Step();
        foreach (var (name, p) in named)
        {
            bool changed = !p.ToArray().SequenceEqual(before[name]);
            bool shouldTrain = !name.StartsWith("spatial.") || name.StartsWith("spatial.norm.");
            if (!shouldTrain) Assert.That(changed, Is.False, $"{name} is frozen");
        }
        Assert.That(!model.Head.Parameters().First().ToArray().SequenceEqual(before["head.weight"]), "the head trains");
        Assert.That(!model.Spatial.Norm.Parameters().First().ToArray().SequenceEqual(before["spatial.norm.weight"]), "the final LayerNorm trains");
        Assert.That(Assert.Throws<ArgumentException>(() => Freezing.Apply(model, "temporal"))!.Message, Does.Contain("spatial"));
        using var stt = ModelRegistry.Create(ModelRegistry.Preset("stt-tiny"), new Rng(1));
        Assert.That(Assert.Throws<ArgumentException>(() => Freezing.Apply(stt, "spatial"))!.Message, Does.Contain("stt-tiny"));
    }

    [Test]
    public void AFoldWithAFrozenEncoderCheckpointsOptimizerStateForTheTrainedPartsOnly()
    {
        var data = LosoTests.ToyClips();
        string a = Path.Combine(root, "all"), f = Path.Combine(root, "frozen");
        var o = Tiny with { Epochs = 1 };
        LosoRunner.Train(data, o, a, Device.Cpu, resume: false, onlyFold: 0);
        LosoRunner.Train(data, o with { Freeze = "spatial" }, f, Device.Cpu, resume: false, onlyFold: 0);
        int State(string run) => Safetensors.Read(Path.Combine(LosoRunner.FoldDir(run, 0, "sub0"), FoldTrainer.CheckpointFile)).Arrays.Count(x => x.Name.StartsWith("optimizer."));
        using var probe = ModelRegistry.Create(o.ModelConfig(data), new Rng(1));
        int all = probe.Parameters().Count(), frozen = Freezing.Apply(probe, "spatial");
        Assert.That(State(a), Is.EqualTo(2 * all));
        Assert.That(State(f), Is.EqualTo(2 * (all - frozen)));
        // The frozen run's spatial blocks are the initial ones: two frozen runs of other learning rates agree on them.
        string g = Path.Combine(root, "frozen-lr");
        LosoRunner.Train(data, o with { Freeze = "spatial", LearningRate = 1e-2f }, g, Device.Cpu, resume: false, onlyFold: 0);
        float[] Block(string run) => Safetensors.Read(Path.Combine(LosoRunner.FoldDir(run, 0, "sub0"), FoldTrainer.CheckpointFile)).Arrays.Single(x => x.Name == "model.spatial.blocks.0.attn.qkv.weight").Data;
        Assert.That(Block(f), Is.EqualTo(Block(g)));
        Assert.That(Block(a), Is.Not.EqualTo(Block(f)), "without --freeze the blocks train");
    }
}
