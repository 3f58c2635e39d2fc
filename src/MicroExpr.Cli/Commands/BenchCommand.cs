using MicroExpr.Cli.Args;
using MicroExpr.Cli.Bench;
using MicroExpr.Bench;

namespace MicroExpr.Cli.Commands;

/// <summary><c>microexpr bench OP</c>: times one CPU kernel and prints a table or JSON lines.</summary>
internal static class BenchCommand
{
    delegate void Runner(ParsedArgs args, BenchSettings settings, Progress progress, BenchOutcome outcome);

    static readonly (CommandSpec Spec, Runner Run, string Kernel)[] Ops =
    [
        (GemmBench.Spec, GemmBench.Run, "GemmSimd"),
        (AttentionBench.Spec, AttentionBench.Run, "AttentionSimd"),
        (LayerNormBench.Spec, LayerNormBench.Run, "LayerNormSimd"),
        (SoftmaxBench.Spec, SoftmaxBench.Run, "SoftmaxSimd"),
        (ConvBench.Spec2d, ConvBench.Run2d, "ConvSimd"),
        (ConvBench.Spec3d, ConvBench.Run3d, "ConvSimd"),
        (NormPoolBench.BatchNormSpec, NormPoolBench.RunBatchNorm, "BatchNormSimd"),
        (NormPoolBench.MaxPoolSpec, NormPoolBench.RunMaxPool, "PoolCpu"),
    ];

    public const string Summary = "Time a CPU kernel or the bench model: bench gemm | attention | layernorm | softmax | conv2d | conv3d | batchnorm | maxpool | train-step | inference | resnet18";

    static string OpName(CommandSpec spec) => spec.Name["bench ".Length..];

    public static string HelpText()
    {
        var lines = new List<string>
        {
            "usage: microexpr bench <op> [options]",
            "",
            "Times one SIMD CPU kernel: warm-up calls, then timed runs (each run repeats the call until it lasts",
            "about 2 ms); prints the median, min-max and GFLOP/s or GB/s, next to the machine's ceiling and the",
            "libtorch figure recorded in performance.md. --json prints one JSON object per line instead.",
            "",
            "ops:",
        };
        int width = Ops.Max(o => OpName(o.Spec).Length) + 2;
        foreach (var (spec, _, _) in Ops) lines.Add($"  {OpName(spec).PadRight(width)}{spec.Summary}");
        lines.Add($"  {"train-step".PadRight(width)}{ModelBench.Spec("train-step").Summary}");
        lines.Add($"  {"inference".PadRight(width)}{ModelBench.Spec("inference").Summary}");
        lines.Add($"  {"resnet18".PadRight(width)}{ResNetBench.Spec.Summary}");
        lines.Add("");
        lines.Add("'microexpr bench <op> --help' lists the op's options.");
        lines.Add("");
        lines.Add("--compare OPTION=A,B [--rounds N] (any op) runs the op with --OPTION A and --OPTION B interleaved, N rounds");
        lines.Add($"(default {BenchCompare.DefaultRounds}), and prints each setting's median (min-max) and the ratio A/B per round: on a noisy");
        lines.Add("machine, quote ratios measured this way. Example: microexpr bench gemm --compare threads=1,2");
        return string.Join(Environment.NewLine, lines) + Environment.NewLine;
    }

    public static int Run(IReadOnlyList<string> args)
    {
        if (args.Count == 0)
            throw new CliUsageException("'microexpr bench' needs an op: gemm, attention, layernorm, softmax, conv2d or conv3d; see 'microexpr bench --help'");
        if (args[0] is "-h" or "--help" or "help")
        {
            Console.Out.Write(HelpText());
            return 0;
        }
        if (BenchCompare.Parse(args.Skip(1).ToList()) is { } compare) return BenchCompare.Run(args[0], compare, Run);
        if (args[0] is "train-step" or "inference") return ModelBench.Run(args[0], args.Skip(1).ToList());
        if (args[0] == "resnet18") return ResNetBench.Run(args.Skip(1).ToList());
        var op = Ops.FirstOrDefault(o => OpName(o.Spec) == args[0]);
        if (op.Spec == null)
            throw new CliUsageException($"unknown bench op '{args[0]}'; expected one of: {string.Join(", ", Ops.Select(o => OpName(o.Spec)))}");

        if (!ArgParser.ParseOrHelp(op.Spec, args.Skip(1).ToList(), out var parsed)) return 0;
        var settings = BenchOptions.Read(parsed);
        if (settings.Threads > Environment.ProcessorCount)
            Console.Error.WriteLine($"microexpr: warning: --threads {settings.Threads} is more than the {Environment.ProcessorCount} logical cores here; timings will suffer");

        var progress = new Progress();
        var outcome = new BenchOutcome();
        string? failure = null;
        try
        {
            op.Run(parsed, settings, progress, outcome);
        }
        catch (NotImplementedException)
        {
            // The kernels land in separate work; say which one is missing rather than print a stack trace.
            progress.Clear();
            string pass = outcome.Results.Count == 0 ? "" : " (backward)";
            failure = $"microexpr: the {OpName(op.Spec)} kernel{pass} ({op.Kernel}) is not implemented in this build yet; it was not timed";
        }

        if (outcome.Versions.Count > 0)
        {
            if (settings.Json) BenchReport.WriteVersionsJson(Console.Out, outcome.Versions);
            else BenchReport.WriteVersions(Console.Out, outcome.Title, outcome.Versions);
            if (failure == null && outcome.Versions.FirstOrDefault(v => !v.Passed) is { } bad)
                failure = $"microexpr: {bad.Op} {bad.Version} ({bad.File}) differs from the reference by {bad.MaxError:0.0e+0}; it was not timed";
        }
        else if (settings.Json)
            BenchReport.WriteJson(Console.Out, outcome.Results);
        else
            BenchReport.WriteTable(Console.Out, outcome.Title, outcome.Results);
        if (failure != null)
        {
            Console.Error.WriteLine(failure);
            return 1;
        }
        return 0;
    }
}
