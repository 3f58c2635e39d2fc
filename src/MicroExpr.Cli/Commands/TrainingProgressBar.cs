using System.Diagnostics;
using System.Globalization;
using MicroExpr.Cli.Output;
using MicroExpr.Training;

namespace MicroExpr.Cli.Commands;

/// <summary>
/// Fold, epoch and loss on the progress bar (<see cref="ProgressLine"/>: trainings done of all the run's trainings, with
/// the remaining time); when stderr is not a terminal, one line per finished training with the run's ETA (logs of batch
/// jobs). A run's trainings are every seed's folds, each outer fold's inner trainings under <c>--select inner</c>, and the
/// final model (<see cref="Trainings"/>), so the ETA of a multi-seed or nested run covers all of it. Progress within a
/// training is its epoch over its epochs (whatever --steps makes of them). Trainings a resumed run finds done count as
/// done but not in the rate.
/// </summary>
internal sealed class TrainingProgressBar(int trainings) : ITrainingProgress
{
    private readonly ProgressLine bar = new();
    private readonly bool terminal = Terminal.ErrorIsTerminal;
    private readonly Stopwatch watch = Stopwatch.StartNew();
    private int done, skipped;

    /// <summary>
    /// The trainings of a run: per seed, each fold's (1, or k × g + 1 under --select inner: the "+1 when another setting
    /// wins" is not known in advance and is left out), plus the final model once (1, or under --select inner its own
    /// selection over all subjects and its training, k × g + 1 as well).
    /// </summary>
    public static int Trainings(TrainOptions o, int folds, int seeds, bool final) =>
        Math.Max(1, (seeds * folds + (final ? 1 : 0)) * InnerSelection.TrainingsPerFold(o));

    public void OnEpoch(string fold, int foldIndex, int folds, int epoch, int total, double loss, double seconds)
    {
        bool earlier = double.IsNaN(loss);
        if (epoch == total)
        {
            done++;
            if (earlier) skipped++;
        }
        string lossText = earlier ? "done earlier" : $"loss {loss.ToString("F3", CultureInfo.InvariantCulture)}";
        string where = foldIndex >= folds - 1 && fold == FoldTrainer.AllSubjects ? $"final model ({FoldTrainer.AllSubjects})" : $"fold {foldIndex + 1}/{folds} ({fold})";
        string line = $"{where} epoch {epoch}/{total} {lossText}";
        double position = Math.Min(trainings, epoch == total ? done : done + epoch / (double)Math.Max(1, total));
        if (terminal)
        {
            bar.Report(line, position, trainings);
        }
        else if (epoch == total)
        {
            double rate = watch.Elapsed.TotalSeconds / Math.Max(1e-9, position - skipped);
            var eta = TimeSpan.FromSeconds(position - skipped > 0 ? Math.Max(0, trainings - position) * rate : 0);
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{line} [training {done}/{trainings}] ETA {(int)eta.TotalHours}:{eta:mm\\:ss}"));
        }
    }

    public void Done() => bar.Stop();
}
