using System.Diagnostics;

namespace MicroExpr.Cli.Bench;

/// <summary>
/// Median and spread of the per-call time over <see cref="Runs"/> samples of <see cref="CallsPerRun"/> calls each;
/// <see cref="Warmup"/> is the number of untimed calls actually made before them.
/// </summary>
internal sealed record Timing(double MedianMs, double MinMs, double MaxMs, int Runs, int CallsPerRun, int Warmup);

/// <summary>Settings shared by every <c>bench</c> command.</summary>
internal sealed record BenchSettings(int Threads, int Warmup, int Runs, int Seed, bool Json);

/// <summary>
/// Times one call: warm-up calls first (JIT, caches, thread pool), then <c>runs</c> samples. A sample repeats the
/// call until it lasts about <see cref="TargetSampleMs"/>, so fast kernels are not measured at the timer's resolution;
/// each sample is reported per call.
/// </summary>
internal static class BenchHarness
{
    public const double TargetSampleMs = 2.0;
    const int MaxCallsPerRun = 1_000_000;

    /// <summary>Warm-up goes on past the requested calls until this much time has passed.</summary>
    const double WarmupMinMs = 2000;

    public static Timing Measure(string label, Action call, int warmup, int runs, Progress progress)
    {
        // .NET's tiered JIT runs a kernel as quick, unoptimised code (with on-stack replacement for long loops) until
        // call counting and the background tier-1 compile (with dynamic PGO) catch up. Stopping the warm-up after 50
        // calls measured softmax [9600, 50] at 0.226 ms instead of 0.062 ms, so the warm-up runs at least `warmup`
        // calls and then continues until WarmupMinMs have passed. The fastest warm-up call calibrates how many calls
        // make one sample; with --warmup 0 exactly one untimed call runs to calibrate.
        double fastest = double.PositiveInfinity;
        int done = 0;
        long start = Stopwatch.GetTimestamp();
        while (done < Math.Max(warmup, 1)
               || (warmup > 0 && Stopwatch.GetElapsedTime(start).TotalMilliseconds < WarmupMinMs))
        {
            progress.Report($"{label}: warm-up call {done + 1}");
            long t0 = Stopwatch.GetTimestamp();
            call();
            fastest = Math.Min(fastest, Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            done++;
        }
        int callsPerRun = (int)Math.Clamp(Math.Ceiling(TargetSampleMs / Math.Max(fastest, 1e-6)), 1, MaxCallsPerRun);

        GC.Collect();
        GC.WaitForPendingFinalizers();
        var samples = new double[runs];
        for (int r = 0; r < runs; r++)
        {
            progress.Report($"{label}: run {r + 1}/{runs} ({callsPerRun} call{(callsPerRun == 1 ? "" : "s")} each)", r, runs);
            long t0 = Stopwatch.GetTimestamp();
            for (int j = 0; j < callsPerRun; j++) call();
            samples[r] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds / callsPerRun;
        }
        progress.Clear();

        Array.Sort(samples);
        double median = runs % 2 == 1 ? samples[runs / 2] : 0.5 * (samples[runs / 2 - 1] + samples[runs / 2]);
        return new Timing(median, samples[0], samples[^1], runs, callsPerRun, done);
    }
}

/// <summary>
/// The progress bar on stderr (<see cref="Output.ProgressLine"/>, Spectre.Console), drawn only when stderr is a terminal
/// (never in CI logs or pipes).
/// </summary>
internal sealed class Progress
{
    readonly Output.ProgressLine line = new();

    /// <summary>A phase without a known end (warm-up): a spinner.</summary>
    public void Report(string text) => line.Report(text);

    /// <summary><paramref name="done"/> of <paramref name="total"/> steps: a bar with the remaining time.</summary>
    public void Report(string text, int done, int total) => line.Report(text, done, total);

    public void Clear() => line.Stop();
}
