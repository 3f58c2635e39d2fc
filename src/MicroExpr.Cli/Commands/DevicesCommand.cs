using System.Globalization;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Text;
using System.Text.Json;
using MicroExpr.Cli.Args;
using MicroExpr.Kernels;

namespace MicroExpr.Cli.Commands;

/// <summary><c>microexpr devices</c>: what this machine offers the engine: SIMD, cores, OS/runtime, ILGPU accelerators.</summary>
internal static class DevicesCommand
{
    public static CommandSpec Spec { get; } = new("devices",
        "Show SIMD support, logical cores, OS/runtime and the ILGPU accelerators of this machine.",
        [
            new("json", OptionKind.Switch, "print one JSON object instead of text"),
            new("probe", OptionKind.Switch, "also compile and run a tiny kernel on each accelerator (slower)"),
        ],
        "An accelerator that cannot be initialised (no driver, unsupported GPU) is listed with a one-line reason;\n" +
        "it never makes this command fail. ilgpu-cpu runs kernels on host threads: for tests and teaching, not speed.");

    public static int Run(IReadOnlyList<string> args)
    {
        if (!ArgParser.ParseOrHelp(Spec, args, out var parsed)) return 0;
        var catalog = AcceleratorCatalog.List(parsed.Switch("probe"));
        if (parsed.Switch("json"))
            WriteJson(Console.Out, catalog);
        else
            WriteText(Console.Out, catalog);
        return 0;
    }

    /// <summary>Widest vector the JIT accelerates, in floats (16 for Vector512, 8 for Vector256, 4 for Vector128).</summary>
    static (int Floats, string Name) WidestVector() =>
        Vector512.IsHardwareAccelerated ? (Vector512<float>.Count, "Vector512")
        : Vector256.IsHardwareAccelerated ? (Vector256<float>.Count, "Vector256")
        : Vector128.IsHardwareAccelerated ? (Vector128<float>.Count, "Vector128")
        : (1, "scalar");

    static string? CpuModel()
    {
        try
        {
            if (!File.Exists("/proc/cpuinfo")) return null;
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
                if (line.StartsWith("model name", StringComparison.Ordinal))
                    return line[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }

    static void WriteText(TextWriter o, AcceleratorCatalogResult catalog)
    {
        var (floats, widest) = WidestVector();
        string YesNo(bool b) => b ? "yes" : "no";
        var rows = new List<(string, string)>
        {
            ("Vector512 hardware accelerated", YesNo(Vector512.IsHardwareAccelerated)),
            ("Vector256 hardware accelerated", YesNo(Vector256.IsHardwareAccelerated)),
            ("Avx512F", YesNo(Avx512F.IsSupported)),
            ("Fma", YesNo(Fma.IsSupported)),
            ("widest vector", $"{widest}, {floats} floats"),
            ("Vector<float>.Count", Vector<float>.Count.ToString(CultureInfo.InvariantCulture)),
        };
        o.WriteLine("SIMD");
        WritePairs(o, rows);

        o.WriteLine();
        o.WriteLine("machine");
        WritePairs(o,
        [
            ("CPU", CpuModel() ?? "unknown"),
            ("logical cores", Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture)),
            ("OS", $"{RuntimeInformation.OSDescription} ({RuntimeInformation.OSArchitecture})"),
            ("runtime", $"{RuntimeInformation.FrameworkDescription} ({RuntimeInformation.RuntimeIdentifier})"),
        ]);

        o.WriteLine();
        o.WriteLine("ILGPU accelerators");
        if (catalog.Error != null)
            o.WriteLine($"  {catalog.Error}");
        if (catalog.Accelerators.Count == 0)
        {
            o.WriteLine("  none found");
            return;
        }
        var table = new List<string[]> { new[] { "kind", "name", "memory", "warp", "max group", "usable", "notes" } };
        foreach (var a in catalog.Accelerators)
        {
            // The CPU accelerator's "testing/teaching" note is already in its kind column.
            string? detail = a.Kind == AcceleratorCatalog.CpuKind ? null : a.Detail;
            string notes = string.Join("; ", new[] { detail, a.Reason }.Where(s => !string.IsNullOrEmpty(s)));
            string kind = a.Kind == AcceleratorCatalog.CpuKind ? $"{a.Kind} (testing/teaching)" : a.Kind;
            table.Add([kind, a.Name, FormatMemory(a), a.WarpSize.ToString(CultureInfo.InvariantCulture),
                a.MaxGroupSize.ToString(CultureInfo.InvariantCulture), YesNo(a.Usable), notes.Length == 0 ? "-" : notes]);
        }
        int cols = table[0].Length;
        var width = new int[cols];
        foreach (var row in table)
            for (int i = 0; i < cols; i++) width[i] = Math.Max(width[i], row[i].Length);
        foreach (var row in table)
        {
            var sb = new StringBuilder("  ");
            for (int i = 0; i < cols; i++) sb.Append(row[i].PadRight(width[i] + 3));
            o.WriteLine(sb.ToString().TrimEnd());
        }
        if (catalog.Accelerators.All(a => a.Kind == AcceleratorCatalog.CpuKind))
            o.WriteLine("  no GPU accelerator found (no CUDA or OpenCL device or driver visible to ILGPU)");
    }

    /// <summary>GiB with one decimal; the CPU accelerator reports a nominal size that means "host memory".</summary>
    static string FormatMemory(AcceleratorInfo a)
    {
        if (a.Kind == AcceleratorCatalog.CpuKind) return "host";
        if (a.MemoryBytes <= 0) return "?";
        return (a.MemoryBytes / (double)(1L << 30)).ToString("0.0", CultureInfo.InvariantCulture) + " GiB";
    }

    static void WritePairs(TextWriter o, IReadOnlyList<(string Key, string Value)> rows)
    {
        int width = rows.Max(r => r.Key.Length) + 3;
        foreach (var (key, value) in rows) o.WriteLine($"  {key.PadRight(width)}{value}");
    }

    static void WriteJson(TextWriter o, AcceleratorCatalogResult catalog)
    {
        var (floats, widest) = WidestVector();
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, MicroExpr.Bench.BenchReport.JsonOptions))
        {
            w.WriteStartObject();
            w.WriteStartObject("simd");
            w.WriteBoolean("vector512_accelerated", Vector512.IsHardwareAccelerated);
            w.WriteBoolean("vector256_accelerated", Vector256.IsHardwareAccelerated);
            w.WriteBoolean("avx512f", Avx512F.IsSupported);
            w.WriteBoolean("fma", Fma.IsSupported);
            w.WriteString("widest_vector", widest);
            w.WriteNumber("vector_width_floats", floats);
            w.WriteNumber("vector_t_float_count", Vector<float>.Count);
            w.WriteEndObject();
            if (CpuModel() is { } model) w.WriteString("cpu", model); else w.WriteNull("cpu");
            w.WriteNumber("logical_cores", Environment.ProcessorCount);
            w.WriteString("os", RuntimeInformation.OSDescription);
            w.WriteString("os_architecture", RuntimeInformation.OSArchitecture.ToString());
            w.WriteString("runtime", RuntimeInformation.FrameworkDescription);
            w.WriteString("runtime_identifier", RuntimeInformation.RuntimeIdentifier);
            w.WriteStartArray("accelerators");
            foreach (var a in catalog.Accelerators)
            {
                w.WriteStartObject();
                w.WriteString("kind", a.Kind);
                w.WriteString("name", a.Name);
                if (a.Kind == AcceleratorCatalog.CpuKind) w.WriteNull("memory_bytes"); else w.WriteNumber("memory_bytes", a.MemoryBytes);
                w.WriteNumber("warp_size", a.WarpSize);
                w.WriteNumber("max_group_size", a.MaxGroupSize);
                w.WriteBoolean("usable", a.Usable);
                if (a.Reason != null) w.WriteString("reason", a.Reason); else w.WriteNull("reason");
                if (a.Detail != null) w.WriteString("detail", a.Detail); else w.WriteNull("detail");
                w.WriteEndObject();
            }
            w.WriteEndArray();
            if (catalog.Error != null) w.WriteString("accelerator_error", catalog.Error); else w.WriteNull("accelerator_error");
            w.WriteEndObject();
        }
        o.WriteLine(Encoding.UTF8.GetString(stream.ToArray()));
    }
}
