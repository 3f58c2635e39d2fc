using System.Diagnostics;
using System.Globalization;
using MicroExpr.Cli.Output;
using MicroExpr.Training;

namespace MicroExpr.Cli.Commands;

/// <summary>
/// Fold, epoch and loss on the progress bar (<see cref="ProgressLine"/>: epochs done of all folds' epochs, with the
/// remaining time); when stderr is not a terminal, one line per fold with its own ETA (logs of batch jobs).
/// </summary>
internal sealed class TrainingProgressBar(int epochs) : ITrainingProgress
{
    private readonly ProgressLine bar = new();
    private readonly bool terminal = Terminal.ErrorIsTerminal;
    private readonly Stopwatch watch = Stopwatch.StartNew();
    private int epochsDone;

    public void OnEpoch(string fold, int foldIndex, int folds, int epoch, int total, double loss, double seconds)
    {
        epochsDone++;
        string lossText = double.IsNaN(loss) ? "done earlier" : $"loss {loss.ToString("F3", CultureInfo.InvariantCulture)}";
        string where = foldIndex >= folds - 1 && fold == "all subjects" ? "final model (all subjects)" : $"fold {foldIndex + 1}/{folds} ({fold})";
        string line = $"{where} epoch {epoch}/{total} {lossText}";
        if (terminal)
        {
            bar.Report(line, foldIndex * (double)epochs + epoch, folds * (double)epochs);
        }
        else if (epoch == total)
        {
            int remaining = (folds - foldIndex - 1) * epochs;
            var eta = TimeSpan.FromSeconds(remaining * watch.Elapsed.TotalSeconds / Math.Max(1, epochsDone));
            Console.Error.WriteLine($"{line} ETA {eta:mm\\:ss}");
        }
    }

    public void Done() => bar.Stop();
}
