using System.Globalization;
using System.Runtime.Intrinsics;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace MicroExpr.Bench;

/// <summary>Prints benchmark results: an aligned table for people, or one JSON object per line for scripts.</summary>
public static class BenchReport
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    // Plain ASCII output such as "2*M*N*K" or "(x + y) bytes" stays readable: no \u002B escapes. Safe here: the
    // output is a terminal or a file, never HTML.
    public static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>One JSON object per result, one per line (JSON Lines). Numbers are invariant-culture by construction.</summary>
    public static void WriteJson(TextWriter output, IEnumerable<BenchResult> results)
    {
        foreach (var r in results)
        {
            using var stream = new MemoryStream();
            using (var w = new Utf8JsonWriter(stream, JsonOptions))
            {
                w.WriteStartObject();
                w.WriteString("name", r.Name);
                w.WriteStartObject("shape");
                foreach (var (key, value) in r.Shape) w.WriteNumber(key, value);
                w.WriteEndObject();
                w.WriteNumber("threads", r.Threads);
                w.WriteNumber("runs", r.Timing.Runs);
                w.WriteNumber("calls_per_run", r.Timing.CallsPerRun);
                w.WriteNumber("warmup", r.Timing.Warmup);
                w.WriteNumber("median_ms", Math.Round(r.Timing.MedianMs, 6));
                w.WriteNumber("min_ms", Math.Round(r.Timing.MinMs, 6));
                w.WriteNumber("max_ms", Math.Round(r.Timing.MaxMs, 6));
                if (r.Metric == Metric.Gflops)
                {
                    w.WriteNumber("gflops", Math.Round(r.Rate, 3));
                    w.WriteNumber("flops_per_call", r.WorkPerCall);
                }
                else
                {
                    w.WriteNumber("gbps", Math.Round(r.Rate, 3));
                    w.WriteNumber("bytes_per_call", r.WorkPerCall);
                }
                w.WriteString("counting", r.Counting);
                if (r.Ceiling is { } c)
                {
                    w.WriteNumber("ceiling", c.Value);
                    w.WriteNumber("ceiling_pct", Math.Round(r.CeilingPercent!.Value, 2));
                }
                else
                {
                    w.WriteNull("ceiling");
                    w.WriteNull("ceiling_pct");
                }
                if (r.Peer is { } p) w.WriteNumber("libtorch", p); else w.WriteNull("libtorch");
                w.WriteString("simd", Vector512.IsHardwareAccelerated ? "Vector512" : Vector256.IsHardwareAccelerated ? "Vector256" : "none");
                w.WriteEndObject();
            }
            output.WriteLine(Encoding.UTF8.GetString(stream.ToArray()));
        }
    }

    /// <summary>
    /// The human-readable form: a header per benchmark (shape, threads, how the work is counted), one table row per
    /// pass, then where the ceiling and the peer figure come from.
    /// </summary>
    public static void WriteTable(TextWriter output, string title, IReadOnlyList<BenchResult> results)
    {
        if (results.Count == 0) return;
        var first = results[0];
        output.WriteLine(title);
        output.WriteLine($"  {first.Threads} thread{(first.Threads == 1 ? "" : "s")}, {first.Timing.Runs} timed runs after {first.Timing.Warmup} warm-up call{(first.Timing.Warmup == 1 ? "" : "s")}; time per call");
        foreach (var r in results)
            output.WriteLine($"  {r.Title}: {r.Counting} = {FormatWork(r)} per call, {r.Timing.CallsPerRun} call{(r.Timing.CallsPerRun == 1 ? "" : "s")} per run");
        output.WriteLine();

        string[] header = ["pass", "median ms", "min-max ms", first.Unit, "% of ceiling", ReferenceFigures.PeerLabel, "vs libtorch"];
        var rows = new List<string[]> { header };
        foreach (var r in results)
        {
            string format = MsFormat(r.Timing.MedianMs);
            rows.Add([
                r.Title,
                r.Timing.MedianMs.ToString(format, Inv),
                $"{r.Timing.MinMs.ToString(format, Inv)}-{r.Timing.MaxMs.ToString(format, Inv)}",
                r.Rate.ToString("0.0", Inv),
                r.CeilingPercent is { } pct ? pct.ToString("0.0", Inv) + " %" : "n/a",
                r.Peer is { } p ? $"{p.ToString("0.0", Inv)} {r.Unit}"
                    : r.Name.EndsWith(".backward", StringComparison.Ordinal) ? "n/a (forward only)" : "n/a (other shape or threads)",
                r.PeerRatio is { } x ? x.ToString("0.00", Inv) + "x" : "-",
            ]);
        }
        WriteAligned(output, rows, rightAligned: [false, true, true, true, true, false, true]);

        output.WriteLine();
        var ceilings = results.Where(r => r.Ceiling != null).Select(r => r.Ceiling!.Value).Distinct().ToList();
        foreach (var c in ceilings)
            output.WriteLine($"  ceiling: {c.Label} = {c.Value.ToString("0.#", Inv)} {first.Unit}");
        if (ceilings.Count == 0)
            output.WriteLine("  ceiling: n/a (no accelerated Vector256 or Vector512 on this machine)");
        output.WriteLine("  ceilings and libtorch figures were measured on the reference machine (2 vCPUs, Zen 5, AVX-512),");
        output.WriteLine("  not on this one; libtorch is quoted only at its exact shape, forward, 2 threads.");
        if (ReferenceFigures.OtherCpuNote() is { } note) output.WriteLine("  " + note);
    }

    /// <summary>
    /// <c>--version</c>'s table: one row per kernel version — id and idea, max error against the double reference, median
    /// and min–max time, rate, and speed-up over v1 (the first row timed) — then the file of each version and notes.
    /// </summary>
    public static void WriteVersions(TextWriter output, string title, IReadOnlyList<VersionResult> versions)
    {
        if (versions.Count == 0) return;
        output.WriteLine(title);
        var firstTimed = versions.FirstOrDefault(v => v.Timed != null)?.Timed;
        if (firstTimed != null)
            output.WriteLine($"  {firstTimed.Threads} thread{(firstTimed.Threads == 1 ? "" : "s")}, {firstTimed.Timing.Runs} timed runs per version; time per call; {firstTimed.Counting} = {FormatWork(firstTimed)} per call");
        output.WriteLine("  each version is checked against the double reference (atol + rtol*|ref| per element) before it is timed");
        output.WriteLine();
        var baseline = versions.FirstOrDefault(v => v.Version == "v1")?.Timed;
        string unit = versions.Select(v => v.Timed?.Unit).FirstOrDefault(u => u != null) ?? "rate";
        string[] header = ["version", "what", "max error", "check", "median ms", "min-max ms", unit, "vs v1"];
        var rows = new List<string[]> { header };
        foreach (var v in versions)
        {
            var t = v.Timed;
            string format = t is null ? "" : MsFormat(t.Timing.MedianMs);
            rows.Add([
                v.Version,
                v.Label,
                v.MaxError.ToString("0.0e+0", Inv),
                (v.Passed ? "ok" : "FAIL") + (v.CheckedElements < v.TotalElements ? $" ({v.CheckedElements}/{v.TotalElements})" : ""),
                t is null ? "-" : t.Timing.MedianMs.ToString(format, Inv),
                t is null ? "-" : $"{t.Timing.MinMs.ToString(format, Inv)}-{t.Timing.MaxMs.ToString(format, Inv)}",
                t is null ? "-" : t.Rate.ToString("0.0", Inv),
                t is null || baseline is null ? "-" : (baseline.Timing.MedianMs / t.Timing.MedianMs).ToString("0.0", Inv) + "x",
            ]);
        }
        WriteAligned(output, rows, rightAligned: [false, false, true, false, true, true, true, true]);
        output.WriteLine();
        foreach (var v in versions) output.WriteLine($"  {v.Version}: {v.File}");
        foreach (var v in versions.Where(v => v.NotTimed != null)) output.WriteLine($"  {v.Version} not timed: {v.NotTimed}");
        output.WriteLine("  (n/m): the version was checked on the first n of the m output elements");
    }

    /// <summary><c>--version --json</c>: one JSON object per version, one per line.</summary>
    public static void WriteVersionsJson(TextWriter output, IEnumerable<VersionResult> versions)
    {
        foreach (var v in versions)
        {
            using var stream = new MemoryStream();
            using (var w = new Utf8JsonWriter(stream, JsonOptions))
            {
                w.WriteStartObject();
                w.WriteString("name", $"{v.Op}.{v.Version}");
                w.WriteString("version", v.Version);
                w.WriteString("label", v.Label);
                w.WriteString("file", v.File);
                w.WriteNumber("max_error", v.MaxError);
                w.WriteNumber("checked_elements", v.CheckedElements);
                w.WriteNumber("total_elements", v.TotalElements);
                w.WriteBoolean("passed", v.Passed);
                if (v.Timed is { } t)
                {
                    w.WriteNumber("threads", t.Threads);
                    w.WriteNumber("median_ms", Math.Round(t.Timing.MedianMs, 6));
                    w.WriteNumber("min_ms", Math.Round(t.Timing.MinMs, 6));
                    w.WriteNumber("max_ms", Math.Round(t.Timing.MaxMs, 6));
                    w.WriteNumber(t.Metric == Metric.Gflops ? "gflops" : "gbps", Math.Round(t.Rate, 3));
                    w.WriteString("counting", t.Counting);
                }
                else
                {
                    w.WriteNull("median_ms");
                    w.WriteString("not_timed", v.NotTimed);
                }
                w.WriteEndObject();
            }
            output.WriteLine(Encoding.UTF8.GetString(stream.ToArray()));
        }
    }

    static string FormatWork(BenchResult r) => r.Metric == Metric.Gflops
        ? $"{(r.WorkPerCall / 1e9).ToString("0.###", Inv)} GFLOP"
        : $"{(r.WorkPerCall / 1e6).ToString("0.###", Inv)} MB";

    /// <summary>About four significant digits at the median's magnitude; min and max use the same format.</summary>
    static string MsFormat(double ms) => ms switch
    {
        >= 100 => "0.0",
        >= 1 => "0.000",
        _ => "0.0000",
    };

    static void WriteAligned(TextWriter output, List<string[]> rows, bool[] rightAligned)
    {
        int cols = rows[0].Length;
        var width = new int[cols];
        foreach (var row in rows)
            for (int i = 0; i < cols; i++) width[i] = Math.Max(width[i], row[i].Length);
        foreach (var row in rows)
        {
            var sb = new StringBuilder("  ");
            for (int i = 0; i < cols; i++)
            {
                if (i > 0) sb.Append("   ");
                sb.Append(rightAligned[i] ? row[i].PadLeft(width[i]) : row[i].PadRight(width[i]));
            }
            output.WriteLine(sb.ToString().TrimEnd());
        }
    }
}
