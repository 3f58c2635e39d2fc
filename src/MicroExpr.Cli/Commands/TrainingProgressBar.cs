using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MicroExpr.Cli.Args;
using MicroExpr.Cli.Bench;
using MicroExpr.Models;
using MicroExpr.Tensors;
using MicroExpr.Training;

namespace MicroExpr.Cli.Commands;

/// <summary>Fold, epoch, loss and ETA on one stderr line (per-fold lines when stderr is not a terminal).</summary>
internal sealed class TrainingProgressBar(int epochs) : ITrainingProgress
{
    private readonly Progress bar = new();
    private readonly Stopwatch watch = Stopwatch.StartNew();
    private int epochsDone;
    private readonly bool terminal = !Console.IsErrorRedirected;

    public void OnEpoch(string fold, int foldIndex, int folds, int epoch, int total, double loss, double seconds)
    {
        epochsDone++;
        int remaining = (folds - foldIndex - 1) * epochs + (total - epoch);
        double perEpoch = watch.Elapsed.TotalSeconds / Math.Max(1, epochsDone);
        var eta = TimeSpan.FromSeconds(remaining * perEpoch);
        int width = 20, filled = (int)Math.Round(width * (foldIndex * (double)epochs + epoch) / (folds * (double)epochs));
        string lossText = double.IsNaN(loss) ? "done earlier" : $"loss {loss.ToString("F3", CultureInfo.InvariantCulture)}";
        string where = foldIndex >= folds - 1 && fold == "all subjects" ? "final model (all subjects)" : $"fold {foldIndex + 1}/{folds} ({fold})";
        string line = $"[{new string('#', filled)}{new string('.', width - filled)}] {where} epoch {epoch}/{total} {lossText} ETA {eta:mm\\:ss}";
        if (terminal) bar.Report(line);
        else if (epoch == total) Console.Error.WriteLine(line);
    }

    public void Done() => bar.Clear();
}
