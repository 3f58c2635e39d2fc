using MicroExpr.Cli.Args;
using MicroExpr.Cli.Explain;

namespace MicroExpr.Cli.Commands;

/// <summary><c>microexpr explain attention</c>: scaled dot-product attention step by step, naive and fused, on tiny numbers.</summary>
internal static class ExplainCommand
{
    /// <summary>Agreement asked of the trace (double) and the kernel (float): relative, absolute below 1.</summary>
    public const double Tolerance = 1e-6;

    public static CommandSpec Spec { get; } = new("explain",
        "Explain how attention is computed: every step of the naive and the fused computation on numbers small enough to read.",
        [
            new("n", OptionKind.Int, "N, tokens (queries = keys)", "4", 1),
            new("d", OptionKind.Int, "D, head dimension", "2", 1),
            new("tile", OptionKind.Int, "keys per tile of the fused computation (default: the CPU kernel's own, 64)", "64", 1),
            new("seed", OptionKind.Int, "seed of the inputs (rounded to one decimal)", "1", 0),
            new("backward", OptionKind.Switch, "also trace the backward: dO → D, dP, dS → dQ, dK, dV, recomputing P from the saved lse"),
            new("html", OptionKind.Text, "also write the trace as one self-contained HTML page to FILE"),
        ],
        "usage: microexpr explain attention [--n 4 --d 2 --tile 2 --seed 1] [--backward] [--html FILE]\n" +
        "Prints Q, K, V, S = QKᵀ/√D, the naive softmax and output; then the fused computation key tile by key tile (running\n" +
        "max m, running sum ℓ, the rescaling α of the partial output, the saved log-sum-exp); then checks the result against\n" +
        "the engine's real kernel. Each step names the file and function that performs it. With the default tile every\n" +
        "key is in one tile, as in the kernel for N ≤ 64; --tile 2 shows the online softmax at work.");

    public static int Run(IReadOnlyList<string> args)
    {
        if (args.Count == 0 || args[0] is "-h" or "--help")
        {
            Console.Out.Write(Spec.HelpText());
            return Entry.Ok;
        }
        if (args[0] != "attention") throw new CliUsageException($"explain: unknown topic '{args[0]}'; expected 'attention'");
        if (!ArgParser.ParseOrHelp(Spec, args.Skip(1).ToList(), out var p)) return Entry.Ok;
        int n = p.Int("n", 4), d = p.Int("d", 2), tile = p.Int("tile", AttentionTrace.KernelTile);
        if (n > 64 || d > 64) throw new CliUsageException("explain attention: --n and --d are at most 64 (the trace prints every number)");
        var trace = AttentionTrace.Create(n, d, tile, p.Int("seed", 1), p.Switch("backward"));
        var kernel = AttentionKernelRun.Of(trace);
        Console.Out.Write(AttentionTraceText.Render(trace, kernel, Tolerance));
        if (p.Text("html") is { } html)
        {
            string? dir = Path.GetDirectoryName(Path.GetFullPath(html));
            if (dir != null && !Directory.Exists(dir)) throw new CliUsageException($"--html: folder {dir} does not exist");
            File.WriteAllText(html, AttentionTraceHtml.Render(trace, kernel, Tolerance));
            Console.Error.WriteLine($"explain: wrote {html}");
        }
        bool agree = AttentionTraceText.Checks(trace, kernel).All(c => c.Diff <= Tolerance);
        return agree ? Entry.Ok : Entry.Failed;
    }
}
