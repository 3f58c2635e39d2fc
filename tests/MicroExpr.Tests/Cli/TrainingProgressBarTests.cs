using MicroExpr.Cli.Commands;
using MicroExpr.Tests.Support;
using MicroExpr.Training;

namespace MicroExpr.Tests.Cli;

/// <summary>
/// The training progress counts every training of a run (seeds × folds × (inner trainings + 1) + the final model's, its own
/// inner trainings included), so the
/// ETA of a multi-seed or nested run covers all of it (it used to count one seed's outer folds only).
/// </summary>
[NonParallelizable]
public class TrainingProgressBarTests
{
    [Test]
    public void ARunsTrainingsCoverSeedsInnerFoldsGridAndTheFinalModel()
    {
        var plain = new TrainOptions();
        Assert.That(TrainingProgressBar.Trainings(plain, folds: 10, seeds: 1, final: false), Is.EqualTo(10));
        Assert.That(TrainingProgressBar.Trainings(plain, folds: 10, seeds: 3, final: true), Is.EqualTo(31));
        var inner = plain with { Select = "inner", InnerFolds = 3 };
        Assert.That(TrainingProgressBar.Trainings(inner, folds: 10, seeds: 2, final: true), Is.EqualTo(2 * 10 * (3 + 1) + (3 + 1)), "the final model's own selection and training");
        var grid = inner with { Grid = "lr=1e-3,3e-4" };
        Assert.That(TrainingProgressBar.Trainings(grid, folds: 5, seeds: 1, final: false), Is.EqualTo(5 * (3 * 2 + 1)));
    }

    [Test]
    public void TheLogLineCountsTrainingsAndLeavesTrainingsDoneEarlierOutOfTheRate()
    {
        var (_, _, err) = ConsoleCapture.Run(() =>
        {
            var bar = new TrainingProgressBar(4);
            bar.OnEpoch("s1", 0, 2, 2, 2, double.NaN, 0); // found done by --resume
            bar.OnEpoch("s2", 1, 2, 1, 2, 0.9, 0.01);
            bar.OnEpoch("s2", 1, 2, 2, 2, 0.8, 0.01);
            bar.Done();
            return 0;
        });
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(2), err);
        Assert.That(lines[0], Does.Contain("fold 1/2 (s1) epoch 2/2 done earlier [training 1/4] ETA 0:00:00"));
        Assert.That(lines[1], Does.Contain("fold 2/2 (s2) epoch 2/2 loss 0.800 [training 2/4] ETA"));
    }
}
