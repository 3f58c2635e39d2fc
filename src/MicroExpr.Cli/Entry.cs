using System.Reflection;
using MicroExpr.Cli.Args;
using MicroExpr.Cli.Commands;
using MicroExpr.Data;

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
    internal static int Run(IReadOnlyList<string> args) => Run(args, Dispatch);

    /// <summary>
    /// Runs <paramref name="dispatch"/> on <paramref name="args"/>: every error becomes one line on stderr and an exit
    /// code, never a stack trace. A wrong command line: exit 2. Bad input (a missing file, a corrupt annotation, a
    /// checkpoint of another model) and OpenCV's native library failing to load (named, with the package that installs
    /// it): exit 1. Anything else is a bug: one line with the exception, and the trace when MICROEXPR_DEBUG=1.
    /// </summary>
    internal static int Run(IReadOnlyList<string> args, Func<IReadOnlyList<string>, int> dispatch)
    {
        try
        {
            return dispatch(args);
        }
        catch (CliUsageException e)
        {
            return Report(e.Message, Usage, null);
        }
        catch (Exception e) when (OpenCvCheck.Describe(e) is { } line)
        {
            return Report(line, Failed, e);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or InvalidOperationException
                                   or UnauthorizedAccessException or NotSupportedException)
        {
            // The message names the file and the problem; the stack trace would only hide it.
            return Report(e.Message, Failed, e);
        }
        catch (Exception e)
        {
            var inner = e is AggregateException { InnerExceptions.Count: 1 } a ? a.InnerExceptions[0] : e;
            return Report($"unexpected error: {inner.GetType().Name}: {OneLine(inner.Message)} (a bug: please report it; {DebugVariable}=1 prints the stack trace)",
                Failed, e);
        }
    }

    /// <summary>Clears a progress bar still drawn, prints the one line (and the trace when asked for), returns the exit code.</summary>
    static int Report(string line, int code, Exception? e)
    {
        Output.ProgressLine.StopAll();
        Console.Error.WriteLine($"microexpr: {line}");
        if (e != null && Environment.GetEnvironmentVariable(DebugVariable) is "1" or "true") Console.Error.WriteLine(e);
        return code;
    }

    /// <summary>Set to 1 to print the stack trace of an error after its one-line message.</summary>
    public const string DebugVariable = "MICROEXPR_DEBUG";

    static string OneLine(string message) => string.Join(' ', message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    /// <summary>The top-level commands and their summaries (help, "did you mean", tab completion).</summary>
    internal static IReadOnlyList<(string Name, string Summary)> Commands() =>
    [
        ("devices", DevicesCommand.Spec.Summary),
        ("bench", BenchCommand.Summary),
        ("demo", DemoCommand.Spec.Summary),
        ("synth", SynthCommand.Spec.Summary),
        ("preprocess", PreprocessCommand.Spec.Summary),
        ("train", TrainCommand.Spec.Summary),
        ("evaluate", EvaluateCommand.Spec.Summary),
        ("merge", "Alias of evaluate."),
        ("predict", PredictCommand.Spec.Summary),
        ("attention-map", AttentionMapCommand.Spec.Summary),
    ];

    /// <summary>The ops of <c>bench</c>, read from its help ("ops:" then one indented line per op), for tab completion.</summary>
    internal static IReadOnlyList<(string Name, string Summary)> Subcommands(string command)
    {
        if (command != "bench") return [];
        var ops = new List<(string, string)>();
        bool inOps = false;
        foreach (var line in BenchCommand.HelpText().Split('\n'))
        {
            if (line.TrimEnd() == "ops:") { inOps = true; continue; }
            if (!inOps) continue;
            if (!line.StartsWith("  ", StringComparison.Ordinal) || line.Trim().Length == 0) break;
            string text = line.Trim();
            int space = text.IndexOf(' ');
            ops.Add(space < 0 ? (text, "") : (text[..space], text[space..].Trim()));
        }
        return ops;
    }

    internal static int Dispatch(IReadOnlyList<string> args)
    {
        if (Completion.IsRequest(args))
            return Completion.Run(args, Console.Out, Commands(), Subcommands, Dispatch);
        if (args.Count == 0 || args[0] is "-h" or "--help" or "help")
        {
            if (args.Count > 1 && args[0] == "help")
                return Dispatch([args[1], "--help"]);
            Console.Out.Write(HelpText());
            return Ok;
        }
        if (args[0] == "--version")
        {
            Console.Out.WriteLine($"microexpr {Version()}");
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
            case "attention-map":
                return AttentionMapCommand.Run(rest);
        }
        throw new CliUsageException($"unknown command '{command}'{ArgParser.Suggest(command, Commands().Select(c => c.Name), "")}; see 'microexpr --help'");
    }

    /// <summary>
    /// The version <c>--version</c> prints: the assembly's informational version (the package version, and after a '+'
    /// the commit the SDK stamps in when it builds from a git checkout), as System.CommandLine's own version option prints it.
    /// </summary>
    internal static string Version() =>
        typeof(Entry).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(Entry).Assembly.GetName().Version?.ToString() ?? "unknown";

    internal static string HelpText() =>
        $"""
        microexpr: command line of MicroExpr.Engine, a from-scratch C# engine for micro-expression recognition

        usage: microexpr <command> [options]
               microexpr <command> --help      options of one command
               microexpr --version             the version of this build

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
          attention-map
                      {AttentionMapCommand.Spec.Summary}

        exit codes: 0 success, 1 failure, 2 usage error
        tab completion: dotnet-suggest (see README.md); MICROEXPR_DEBUG=1 prints the stack trace of an error

        """;
}
