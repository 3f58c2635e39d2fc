using MicroExpr.Cli.Args;
using MicroExpr.Bench;

namespace MicroExpr.Cli.Bench;

/// <summary>Options every <c>bench</c> command accepts.</summary>
internal static class BenchOptions
{
    public const int DefaultThreads = 2, DefaultWarmup = 3, DefaultRuns = 20, DefaultSeed = 1234;

    public static readonly OptionSpec[] Common =
    [
        new("json", OptionKind.Switch, "print one JSON object per line per benchmark instead of a table"),
        new("threads", OptionKind.Int, "threads the kernel may use", DefaultThreads.ToString(System.Globalization.CultureInfo.InvariantCulture), 1),
        new("warmup", OptionKind.Int, "untimed warm-up calls at least; warm-up also goes on for 2 s, so the JIT has optimised the kernel", DefaultWarmup.ToString(System.Globalization.CultureInfo.InvariantCulture), 0),
        new("runs", OptionKind.Int, "timed samples (each repeats the call to last >= 2 ms)", DefaultRuns.ToString(System.Globalization.CultureInfo.InvariantCulture), 1),
        new("seed", OptionKind.Int, "seed of the random inputs", DefaultSeed.ToString(System.Globalization.CultureInfo.InvariantCulture)),
    ];

    public static BenchSettings Read(ParsedArgs args) => new(
        args.Int("threads", DefaultThreads),
        args.Int("warmup", DefaultWarmup),
        args.Int("runs", DefaultRuns),
        args.Int("seed", DefaultSeed),
        args.Switch("json"));
}
