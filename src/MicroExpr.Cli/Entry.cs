using MicroExpr.Cli.Args;
using MicroExpr.Cli.Commands;

namespace MicroExpr.Cli;

/// <summary>
/// <c>microexpr</c>: the engine's command line. Exit codes: 0 success, 1 the work failed, 2 the command line was wrong
/// (or names a command that is not available yet).
/// </summary>
internal static class Entry
{
    public const int Ok = 0, Failed = 1, Usage = 2;


    public static int Main(string[] args) => Run(args);

    /// <summary>Runs a command line and turns errors into a message and an exit code, as the process does.</summary>
    internal static int Run(IReadOnlyList<string> args)
    {
        try
        {
            return Dispatch(args);
        }
        catch (CliUsageException e)
        {
            Console.Error.WriteLine($"microexpr: {e.Message}");
            return Usage;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or InvalidOperationException
                                   or UnauthorizedAccessException or NotSupportedException)
        {
            // Bad input (a missing file, a corrupt annotation, a checkpoint of another model): the message names the
            // file and the problem; the stack trace would only hide it.
            Console.Error.WriteLine($"microexpr: {e.Message}");
            return Failed;
        }
    }

    internal static int Dispatch(IReadOnlyList<string> args)
    {
        if (args.Count == 0 || args[0] is "-h" or "--help" or "help")
        {
            if (args.Count > 1 && args[0] == "help")
                return Dispatch([args[1], "--help"]);
            Console.Out.Write(HelpText());
            return Ok;
        }

        string command = args[0];
        var rest = args.Skip(1).ToList();
        switch (command)
        {
            case "devices":
                return DevicesCommand.Run(rest);
            case "bench":
                return BenchCommand.Run(rest);
            case "demo":
                return DemoCommand.Run(rest);
            case "synth":
                return SynthCommand.Run(rest);
            case "preprocess":
                return PreprocessCommand.Run(rest);
            case "train":
                return TrainCommand.Run(rest);
            case "evaluate" or "merge":
                return EvaluateCommand.Run(rest);
            case "predict":
                return PredictCommand.Run(rest);
            case "convert":
                return ConvertCommand.Run(rest);
            case "explain":
                return ExplainCommand.Run(rest);
        }
        throw new CliUsageException($"unknown command '{command}'; see 'microexpr --help'");
    }

    internal static string HelpText() =>
        $"""
        microexpr: command line of MicroExpr.Engine, a from-scratch C# engine for micro-expression recognition

        usage: microexpr <command> [options]
               microexpr <command> --help      options of one command

        commands:
          devices     {DevicesCommand.Spec.Summary}
          bench       {BenchCommand.Summary}
          demo        {DemoCommand.Spec.Summary}
          synth       {SynthCommand.Spec.Summary}
          preprocess  {PreprocessCommand.Spec.Summary}
          train       {TrainCommand.Spec.Summary}
          evaluate    {EvaluateCommand.Spec.Summary}
          predict     {PredictCommand.Spec.Summary}
          convert     {ConvertCommand.Spec.Summary}
          explain     {ExplainCommand.Spec.Summary}

        exit codes: 0 success, 1 failure, 2 usage error

        """;
}
