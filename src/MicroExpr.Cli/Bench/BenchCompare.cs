using System.Globalization;
using System.Text.Json;
using MicroExpr.Cli.Args;

namespace MicroExpr.Cli.Bench;

/// <summary>
/// <c>bench OP … --compare OPTION=A,B [--rounds N]</c>: runs the same benchmark with <c>--OPTION A</c> and
/// <c>--OPTION B</c> interleaved in one process (rounds of A B, then B A, …, so a drift of the machine's speed hits both
/// alike) and prints, per benchmark line, each setting's median of the rounds' medians with min–max and the ratio
/// B/A per round (median, min–max). On a noisy shared machine a ratio measured this way is the figure to quote; two
/// figures measured minutes apart are not comparable. Every bench op works: each prints JSON lines with "name", "shape" and
/// "median_ms" under <c>--json</c>, which is what this reads.
/// </summary>
internal static class BenchCompare
{
    /// <summary>What to compare: --OPTION A against --OPTION B, over this many rounds, the bench's other arguments unchanged.</summary>
    public sealed record Comparison(string Option, string A, string B, int Rounds, IReadOnlyList<string> Others);

    public const int DefaultRounds = 3;

    /// <summary>Splits <c>--compare</c> and <c>--rounds</c> off <paramref name="args"/>; null when there is no <c>--compare</c>.</summary>
    public static Comparison? Parse(IReadOnlyList<string> args)
    {
        int at = args.ToList().FindIndex(s => s == "--compare" || s.StartsWith("--compare=", StringComparison.Ordinal));
        if (at < 0) return null;
        var rest = args.ToList();
        string spec;
        if (rest[at].StartsWith("--compare=", StringComparison.Ordinal)) { spec = rest[at]["--compare=".Length..]; rest.RemoveAt(at); }
        else
        {
            if (at + 1 >= rest.Count) throw new CliUsageException("--compare needs OPTION=A,B (e.g. --compare threads=1,2)");
            spec = rest[at + 1];
            rest.RemoveRange(at, 2);
        }
        int eq = spec.IndexOf('=', StringComparison.Ordinal);
        var values = eq > 0 ? spec[(eq + 1)..].Split(',') : [];
        if (eq <= 0 || values.Length != 2 || values.Any(string.IsNullOrWhiteSpace))
            throw new CliUsageException($"--compare {spec}: expected OPTION=A,B with two values (e.g. --compare threads=1,2)");
        string option = spec[..eq].TrimStart('-');
        if (rest.Any(s => s == "--" + option || s.StartsWith($"--{option}=", StringComparison.Ordinal)))
            throw new CliUsageException($"--compare {spec}: --{option} is also given on its own; give it only in --compare");
        int rounds = DefaultRounds;
        int r = rest.IndexOf("--rounds");
        if (r >= 0)
        {
            if (r + 1 >= rest.Count || !int.TryParse(rest[r + 1], NumberStyles.None, CultureInfo.InvariantCulture, out rounds) || rounds < 1)
                throw new CliUsageException("--rounds expects an integer >= 1");
            rest.RemoveRange(r, 2);
        }
        rest.RemoveAll(s => s == "--json");
        return new Comparison(option, values[0].Trim(), values[1].Trim(), rounds, rest);
    }

    /// <summary>One benchmark line's key (name and shape) and median, from a bench's --json output.</summary>
    static IEnumerable<(string Key, double MedianMs)> Lines(string json)
    {
        foreach (var line in json.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!line.StartsWith('{')) continue;
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            if (!root.TryGetProperty("median_ms", out var median)) continue;
            string name = root.TryGetProperty("name", out var n) ? n.ToString() : "bench";
            string shape = root.TryGetProperty("shape", out var s) ? " " + s.GetRawText() : root.TryGetProperty("batch", out var b) ? $" batch {b}" : "";
            yield return (name + shape, median.GetDouble());
        }
    }

    /// <summary>Runs the rounds through <paramref name="bench"/> (one bench command line → exit code, stdout captured) and prints the table.</summary>
    public static int Run(string op, Comparison c, Func<IReadOnlyList<string>, int> bench)
    {
        var medians = new Dictionary<string, (List<double> A, List<double> B)>();
        var order = new List<string>();
        for (int round = 0; round < c.Rounds; round++)
        {
            foreach (bool first in round % 2 == 0 ? new[] { true, false } : [false, true])
            {
                string value = first ? c.A : c.B;
                Console.Error.WriteLine($"compare: round {round + 1}/{c.Rounds}, --{c.Option} {value}");
                var outWriter = new StringWriter();
                var old = Console.Out;
                Console.SetOut(outWriter);
                int code;
                try
                {
                    code = bench([op, .. c.Others, "--" + c.Option, value, "--json"]);
                }
                finally
                {
                    Console.SetOut(old);
                }
                if (code != 0) return code;
                foreach (var (key, ms) in Lines(outWriter.ToString()))
                {
                    if (!medians.TryGetValue(key, out var lists)) { medians[key] = lists = ([], []); order.Add(key); }
                    (first ? lists.A : lists.B).Add(ms);
                }
            }
        }
        if (order.Count == 0) throw new InvalidOperationException($"bench {op}: printed no timing to compare");
        string F(double v) => v.ToString(v >= 100 ? "F1" : v >= 1 ? "F3" : "F4", CultureInfo.InvariantCulture);
        Console.Out.WriteLine($"bench {op}: --{c.Option} {c.A} (A) vs {c.B} (B), {c.Rounds} interleaved rounds; ms per call or step: median of the rounds' medians (min-max); ratio = A/B per round (> 1: B is faster)");
        foreach (string key in order)
        {
            var (a, b) = medians[key];
            int n = Math.Min(a.Count, b.Count);
            var ratios = Enumerable.Range(0, n).Select(i => a[i] / b[i]).ToList();
            Console.Out.WriteLine($"  {key}");
            Console.Out.WriteLine($"    A {F(Median(a))} ({F(a.Min())}-{F(a.Max())})   B {F(Median(b))} ({F(b.Min())}-{F(b.Max())})   A/B {Median(ratios).ToString("F3", CultureInfo.InvariantCulture)} ({ratios.Min().ToString("F3", CultureInfo.InvariantCulture)}-{ratios.Max().ToString("F3", CultureInfo.InvariantCulture)})");
        }
        return 0;
    }

    static double Median(IReadOnlyList<double> v)
    {
        var s = v.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }
}
