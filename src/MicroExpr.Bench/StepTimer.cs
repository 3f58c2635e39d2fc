using System.Diagnostics;
using MicroExpr.Models;

namespace MicroExpr.Bench;

/// <summary>
/// Times <see cref="ModelStep"/>s (the workload of <c>microexpr bench train-step|inference</c> and GpuCheck's
/// <c>--train-step</c>): the model layer builds and runs a step, the harness times it.
/// </summary>
public static class StepTimer
{
    /// <summary>
    /// Warm-up, then <paramref name="runs"/> timed steps. Warm-up runs at least <paramref name="warmup"/> steps and, when
    /// <paramref name="warmup"/> &gt; 0, goes on until <paramref name="minWarmupSeconds"/> have passed (so the tiered JIT
    /// has optimised the CPU kernels and ILGPU has compiled every device kernel). Each timed step is bracketed by
    /// <see cref="ModelStep.Synchronize"/>. <paramref name="beforeTimed"/> runs between warm-up and the timed steps,
    /// <paramref name="afterTimedStep"/> after each timed step, outside its timing (e.g. reading a profile's device events);
    /// <paramref name="progress"/> gets "warm-up step k" (no total) or "step i/n" (i − 1 of n done) before every step. When <paramref name="timeBudgetSeconds"/> &gt; 0 and the
    /// last warm-up step says the timed steps would take longer, fewer steps are timed (at least
    /// <paramref name="minRuns"/>): <see cref="StepTimes.RunsCut"/> says so.
    /// </summary>
    public static StepTimes Measure(ModelStep step, int warmup, int runs, double minWarmupSeconds = 2, Action<TimerProgress>? progress = null, Action? beforeTimed = null,
        double timeBudgetSeconds = 0, int minRuns = 5, Action? afterTimedStep = null)
    {
        if (runs < 1) throw new ArgumentOutOfRangeException(nameof(runs), runs, "runs must be >= 1");
        float first = float.NaN;
        double lastWarmMs = double.NaN;
        var warm = Stopwatch.StartNew();
        int warmed = 0;
        while (warmed < warmup || (warmup > 0 && warm.Elapsed.TotalSeconds < minWarmupSeconds))
        {
            warmed++; // not inside progress?.Invoke(...): its arguments are skipped when progress is null
            progress?.Invoke(new($"warm-up step {warmed}", 0, 0));
            long w0 = Stopwatch.GetTimestamp();
            float loss = step.Run();
            step.Synchronize();
            lastWarmMs = Stopwatch.GetElapsedTime(w0).TotalMilliseconds;
            if (warmed == 1) first = loss;
        }
        int planned = runs;
        if (timeBudgetSeconds > 0 && double.IsFinite(lastWarmMs) && lastWarmMs * runs > timeBudgetSeconds * 1000)
            planned = Math.Clamp((int)(timeBudgetSeconds * 1000 / lastWarmMs), Math.Min(minRuns, runs), runs);
        beforeTimed?.Invoke();
        var ms = new double[planned];
        float last = float.NaN;
        for (int i = 0; i < planned; i++)
        {
            progress?.Invoke(new($"step {i + 1}/{planned}", i, planned));
            step.Synchronize();
            long t0 = Stopwatch.GetTimestamp();
            last = step.Run();
            step.Synchronize();
            ms[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            afterTimedStep?.Invoke();
            if (warmed == 0 && i == 0) first = last;
        }
        return new StepTimes(ms, warmed, planned < runs ? runs : 0, first, last);
    }
}

/// <summary>
/// The timed steps of <see cref="StepTimer.Measure"/>, in run order (ms), the warm-up steps run, the steps asked for
/// when a time budget cut them (0 when not cut), and the loss of the very first step and of the last timed step
/// (NaN for inference).
/// </summary>
public sealed record StepTimes(double[] Ms, int WarmupSteps, int RunsCut, float FirstLoss, float LastLoss)
{
    private double[] Sorted => Ms.Order().ToArray();

    /// <summary>The median (the mean of the middle two for an even count).</summary>
    public double MedianMs
    {
        get
        {
            var s = Sorted;
            int n = s.Length;
            return n % 2 == 1 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
        }
    }

    public double MinMs => Ms.Min();
    public double MaxMs => Ms.Max();
    public double TotalMs => Ms.Sum();

    /// <summary>Clips per second at the median step time.</summary>
    public double ClipsPerSecond(int batch) => batch / (MedianMs / 1000);
}
