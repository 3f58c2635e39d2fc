using ILGPU.Runtime;
using MicroExpr.Bench;
using MicroExpr.Cli.Args;
using MicroExpr.Tensors;
using MicroExpr.Tensors.Ilgpu;

namespace MicroExpr.Cli.Bench;

/// <summary>
/// One version of a kernel for <c>bench OP --version</c>: <see cref="Check"/> runs it once and returns the output elements
/// it wrote (a prefix of the reference's when it is checked on fewer heads or rows), <see cref="Call"/> is what is timed.
/// </summary>
internal sealed class KernelVersion
{
    public required string Id { get; init; }
    public required string Label { get; init; }
    public required string File { get; init; }
    public required Func<float[]> Check { get; init; }
    public required Action Call { get; init; }
    public Action? Synchronize { get; init; }

    /// <summary>Why it is not timed here (null: it is).</summary>
    public string? NotTimed { get; init; }
}

/// <summary>
/// <c>bench attention|softmax|layernorm --version v1|v2|…|all</c>: the versions of one kernel side by side, as llm.c's
/// dev/cuda files are. Each version is run once on the bench inputs and compared, element by element with
/// atol + rtol·|ref|, with the op's double reference; only a version that passes is timed (same harness, same inputs,
/// same thread count), and the table shows each version's max error, time, rate and speed-up over v1.
/// <para>The ILGPU version runs on CUDA when a usable GPU is found, else on ILGPU's CPU accelerator: there it is checked
/// (on a slice of the input, the CPU accelerator being slow: one OS thread per lane) and not timed, since its times are
/// not speeds.</para>
/// </summary>
internal static class KernelVersions
{
    public static OptionSpec Option(string ids) =>
        new("version", OptionKind.Text, $"kernel versions side by side: {ids} or all (checked against the double reference, then timed; forward only)");

    /// <summary>The <c>--version</c> value, checked against <paramref name="ids"/>; null when the option is absent.</summary>
    public static string? Pick(ParsedArgs args, IReadOnlyList<string> ids)
    {
        if (args.Text("version") is not { } v) return null;
        v = v.Trim().ToLowerInvariant();
        if (v != "all" && !ids.Contains(v))
            throw new CliUsageException($"--version {v}: expected {string.Join(", ", ids)} or all");
        if (args.Switch("backward")) throw new CliUsageException("--version compares forward kernels; drop --backward");
        return v;
    }

    /// <summary>
    /// Checks and times the versions <paramref name="pick"/> names against <paramref name="reference"/> into
    /// <paramref name="outcome"/>.Versions.
    /// </summary>
    public static void Run(string op, string pick, IReadOnlyList<KernelVersion> versions, float[] reference, double atol, double rtol,
        Metric metric, double workPerCall, string counting, IReadOnlyList<(string, int)> shape, BenchSettings s, Progress progress, BenchOutcome outcome)
    {
        foreach (var v in versions.Where(v => pick == "all" || pick == v.Id))
        {
            progress.Report($"{op} {v.Id}: checking");
            var got = v.Check();
            progress.Clear();
            double maxError = 0;
            bool passed = got.Length > 0 && got.Length <= reference.Length;
            for (int i = 0; i < Math.Min(got.Length, reference.Length); i++)
            {
                double e = Math.Abs((double)got[i] - reference[i]);
                if (!(e <= atol + rtol * Math.Abs(reference[i]))) passed = false; // NaN fails too
                maxError = double.IsNaN(e) ? double.NaN : Math.Max(maxError, e);
            }
            BenchResult? timed = null;
            string? notTimed = passed ? v.NotTimed : "it failed the check against the reference";
            if (notTimed == null)
            {
                var timing = BenchHarness.Measure($"{op} {v.Id}", v.Call, s.Warmup, s.Runs, progress, v.Synchronize);
                timed = new BenchResult($"{op}.{v.Id}", v.Id, shape, s.Threads, timing, metric, workPerCall, counting, null, null);
            }
            outcome.Versions.Add(new VersionResult(op, v.Id, v.Label, v.File, maxError, got.Length, reference.Length, passed, timed, notTimed));
        }
    }

    /// <summary>
    /// The accelerator the ILGPU versions run on: CUDA when usable, else ILGPU's CPU accelerator; with the words for the
    /// table (which accelerator) and, on the CPU accelerator, why it is not timed.
    /// </summary>
    public static (Accelerator Accelerator, string Where, string? NotTimed) Ilgpu()
    {
        var cuda = Devices.TryCuda(out string? why);
        var device = cuda ?? Devices.IlgpuCpu;
        var accelerator = ((IlgpuBackend)device.Unprofiled).Accelerator;
        return cuda != null
            ? (accelerator, $"CUDA, {accelerator.Name}", null)
            : (accelerator, "ILGPU CPU accelerator: no GPU", $"ILGPU's CPU accelerator (no usable GPU: {why}) runs the GPU kernel one OS thread per lane; its times are not speeds");
    }

    /// <summary>A device copy of <paramref name="data"/>.</summary>
    public static MemoryBuffer1D<float, ILGPU.Stride1D.Dense> Upload(Accelerator a, ReadOnlySpan<float> data) => a.Allocate1D(data.ToArray());

    /// <summary>Fills a device buffer with NaN: an element a kernel does not write fails the check.</summary>
    public static void Poison(MemoryBuffer1D<float, ILGPU.Stride1D.Dense> buffer) =>
        buffer.View.CopyFromCPU(Enumerable.Repeat(float.NaN, checked((int)buffer.Length)).ToArray());

    /// <summary>The first <paramref name="n"/> floats of a device buffer, after the stream's work is done.</summary>
    public static float[] Download(Accelerator a, MemoryBuffer1D<float, ILGPU.Stride1D.Dense> buffer, long n)
    {
        a.DefaultStream.Synchronize();
        var r = new float[n];
        buffer.View.SubView(0, n).CopyToCPU(r);
        return r;
    }
}
