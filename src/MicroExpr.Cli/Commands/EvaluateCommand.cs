using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MicroExpr.Cli.Args;
using MicroExpr.Cli.Bench;
using MicroExpr.Models;
using MicroExpr.Tensors;
using MicroExpr.Training;

namespace MicroExpr.Cli.Commands;

/// <summary><c>microexpr evaluate --run RUN</c> (alias <c>merge</c>): pools the fold results of a run and writes its report.</summary>
internal static class EvaluateCommand
{
    public static CommandSpec Spec { get; } = new("evaluate",
        "Pool the fold results of a training run (folds may come from separate 'train --fold K' processes) and write its report.",
        [
            new("run", OptionKind.Text, "run folder written by 'microexpr train'"),
            new("json", OptionKind.Switch, "print a final JSON line with uf1, uar, accuracy, seconds"),
        ]);

    public static int Run(IReadOnlyList<string> args)
    {
        if (!ArgParser.ParseOrHelp(Spec, args, out var a)) return Entry.Ok;
        string run = a.Text("run") ?? throw new CliUsageException("evaluate: --run RUN is required");
        var watch = Stopwatch.StartNew();
        return TrainCommand.Finish(run, a.Switch("json"), watch.Elapsed.TotalSeconds);
    }
}
