using System.Diagnostics;
using MicroExpr.Bench;

namespace MicroExpr.Cli.Bench;

/// <summary>Settings shared by every <c>bench</c> command.</summary>
internal sealed record BenchSettings(int Threads, int Warmup, int Runs, int Seed, bool Json);

/// <summary>The CLI's face of the harness's timing loop (<see cref="KernelTimer"/>), drawing its progress line.</summary>
internal static class BenchHarness
{
    public static Timing Measure(string label, Action call, int warmup, int runs, Progress progress, Action? synchronize = null)
    {
        var timing = KernelTimer.Measure(label, call, warmup, runs, p => progress.Report(p), synchronize);
        progress.Clear();
        return timing;
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

    /// <summary>A timing loop's report: a spinner in the warm-up, a bar with the remaining time over the timed samples.</summary>
    public void Report(TimerProgress p, string prefix = "")
    {
        if (p.HasTotal) line.Report(prefix + p.Text, p.Done, p.Total);
        else line.Report(prefix + p.Text);
    }

    /// <summary><paramref name="done"/> of <paramref name="total"/> steps: a bar with the remaining time.</summary>
    public void Report(string text, int done, int total) => line.Report(text, done, total);

    public void Clear() => line.Stop();
}
