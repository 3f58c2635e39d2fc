using System.Diagnostics;
using MicroExpr.Bench;

namespace MicroExpr.Cli.Bench;

/// <summary>Settings shared by every <c>bench</c> command.</summary>
internal sealed record BenchSettings(int Threads, int Warmup, int Runs, int Seed, bool Json);

/// <summary>The CLI's face of the harness's timing loop (<see cref="KernelTimer"/>), drawing its progress line.</summary>
internal static class BenchHarness
{
    public static Timing Measure(string label, Action call, int warmup, int runs, Progress progress)
    {
        var timing = KernelTimer.Measure(label, call, warmup, runs, progress.Report);
        progress.Clear();
        return timing;
    }
}

/// <summary>A one-line progress indicator on stderr, drawn only when stderr is a terminal (never in CI logs or pipes).</summary>
internal sealed class Progress
{
    readonly bool enabled = !Console.IsErrorRedirected;
    int lastLength;
    long lastDraw;

    public void Report(string text)
    {
        if (!enabled) return;
        // At most ~20 redraws a second: a terminal is slow next to a microsecond kernel.
        long now = Stopwatch.GetTimestamp();
        if (lastLength > 0 && Stopwatch.GetElapsedTime(lastDraw, now).TotalMilliseconds < 50) return;
        lastDraw = now;
        Console.Error.Write("\r" + text.PadRight(lastLength));
        lastLength = text.Length;
    }

    public void Clear()
    {
        if (!enabled || lastLength == 0) return;
        Console.Error.Write("\r" + new string(' ', lastLength) + "\r");
        lastLength = 0;
    }
}
