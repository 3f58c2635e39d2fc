using System.Diagnostics;

namespace MicroExpr.Bench;

/// <summary>
/// Median and spread of the per-call time over <see cref="Runs"/> samples of <see cref="CallsPerRun"/> calls each;
/// <see cref="Warmup"/> is the number of untimed calls actually made before them.
/// </summary>
public sealed record Timing(double MedianMs, double MinMs, double MaxMs, int Runs, int CallsPerRun, int Warmup);

/// <summary>
/// The timing loop of every benchmark here: warm-up calls first (JIT, caches, thread pool, kernel compilation), then
/// <c>runs</c> samples. A sample repeats the call until it lasts about <see cref="KernelTimerOptions.TargetSampleMs"/>,
/// so fast kernels are not measured at the timer's resolution; each sample is reported per call. With
/// <c>synchronize</c> (an asynchronous device), every sample and the calibration call are bracketed by it.
/// </summary>
public static class KernelTimer
{
    public static Timing Measure(string label, Action call, int warmup, int runs, Action<TimerProgress>? progress = null,
        Action? synchronize = null, KernelTimerOptions? options = null)
    {
        if (runs < 1) throw new ArgumentOutOfRangeException(nameof(runs), runs, "runs must be >= 1");
        var o = options ?? KernelTimerOptions.Default;
        // .NET's tiered JIT runs a kernel as quick, unoptimised code (with on-stack replacement for long loops) until
        // call counting and the background tier-1 compile (with dynamic PGO) catch up. Stopping the warm-up after 50
        // calls measured softmax [9600, 50] at 0.226 ms instead of 0.062 ms, so the warm-up runs at least `warmup`
        // calls and then continues until WarmupMinMs have passed. The fastest warm-up call calibrates how many calls
        // make one sample; with warmup 0 exactly one untimed call runs to calibrate.
        double fastest = double.PositiveInfinity;
        int done = 0;
        long start = Stopwatch.GetTimestamp();
        while (done < Math.Max(warmup, 1)
               || (warmup > 0 && Stopwatch.GetElapsedTime(start).TotalMilliseconds < o.WarmupMinMs))
        {
            progress?.Invoke(new($"{label}: warm-up call {done + 1}", 0, 0));
            synchronize?.Invoke();
            long t0 = Stopwatch.GetTimestamp();
            call();
            synchronize?.Invoke();
            fastest = Math.Min(fastest, Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            done++;
        }
        int callsPerRun = (int)Math.Clamp(Math.Ceiling(o.TargetSampleMs / Math.Max(fastest, 1e-6)), 1, o.MaxCallsPerRun);

        GC.Collect();
        GC.WaitForPendingFinalizers();
        var samples = new double[runs];
        for (int r = 0; r < runs; r++)
        {
            progress?.Invoke(new($"{label}: run {r + 1}/{runs} ({callsPerRun} call{(callsPerRun == 1 ? "" : "s")} each)", r, runs));
            synchronize?.Invoke();
            long t0 = Stopwatch.GetTimestamp();
            for (int j = 0; j < callsPerRun; j++) call();
            synchronize?.Invoke();
            samples[r] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds / callsPerRun;
        }
        Array.Sort(samples);
        return new Timing(Median(samples), samples[0], samples[^1], runs, callsPerRun, done);
    }

    /// <summary>The median of sorted values (the mean of the middle two for an even count).</summary>
    public static double Median(double[] sorted)
    {
        int n = sorted.Length;
        return n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    }
}

/// <summary>How long a warm-up lasts at least, how long a sample lasts, and how many calls a sample may repeat.</summary>
public sealed record KernelTimerOptions(double WarmupMinMs, double TargetSampleMs, int MaxCallsPerRun)
{
    /// <summary>The CLI's: warm-up ≥ 2 s (the tiered JIT), 2 ms samples, at most 10⁶ calls a sample.</summary>
    public static KernelTimerOptions Default { get; } = new(2000, 2.0, 1_000_000);
}
