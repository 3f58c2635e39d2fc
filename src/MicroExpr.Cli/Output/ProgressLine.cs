using Spectre.Console;

namespace MicroExpr.Cli.Output;

/// <summary>
/// The command line's one progress bar: a Spectre.Console live display on stderr with the task's description, a bar,
/// the percentage, the elapsed and the remaining time (ETA, from the rate of progress), or a spinner when the total is
/// not known. Drawn only when stderr is a terminal; otherwise every call does nothing, so stdout stays clean for
/// <c>--json</c> and logs get only the commands' own lines. Thread-safe: parallel workers may report.
/// </summary>
/// <remarks>
/// Spectre.Console draws inside a callback (<c>Progress.Start(ctx =&gt; ...)</c>); the engine reports from inside its own
/// loops instead, so the display runs on a thread of its own from the first report until <see cref="Stop"/>, and the
/// reports set the description and value of its task.
/// </remarks>
internal sealed class ProgressLine(bool? enabled = null) : IDisposable
{
    readonly bool enabled = enabled ?? Terminal.ErrorIsTerminal;
    readonly Lock gate = new();
    Thread? thread;
    ProgressTask? task;
    ManualResetEventSlim? stop;

    /// <summary>Shows <paramref name="description"/> with <paramref name="done"/> of <paramref name="total"/> steps done.</summary>
    public void Report(string description, double done, double total)
    {
        if (!enabled) return;
        lock (gate)
        {
            var t = Task(description, Math.Max(total, 1));
            t.IsIndeterminate = false;
            if (t.MaxValue != Math.Max(total, 1)) t.MaxValue = Math.Max(total, 1);
            t.Value = Math.Clamp(done, 0, t.MaxValue);
        }
    }

    /// <summary>Shows <paramref name="description"/> without a known total (a spinner, no ETA).</summary>
    public void Report(string description)
    {
        if (!enabled) return;
        lock (gate) Task(description, 1).IsIndeterminate = true;
    }

    /// <summary>Removes the bar from the terminal; a later report draws a new one.</summary>
    public void Stop()
    {
        Thread? running;
        lock (gate)
        {
            running = thread;
            stop?.Set();
            thread = null;
            task = null;
            stop = null;
        }
        running?.Join();
        lock (Shown) Shown.Remove(this);
    }

    static readonly HashSet<ProgressLine> Shown = [];

    /// <summary>Removes every bar still drawn, before an error line is printed (the command that drew it has ended).</summary>
    public static void StopAll()
    {
        ProgressLine[] shown;
        lock (Shown) shown = [.. Shown];
        foreach (var line in shown) line.Stop();
    }

    public void Dispose() => Stop();

    ProgressTask Task(string description, double total)
    {
        string text = Markup.Escape(description);
        if (task is { } existing)
        {
            if (existing.Description != text) existing.Description = text;
            return existing;
        }
        var started = new ManualResetEventSlim();
        var done = new ManualResetEventSlim();
        ProgressTask? created = null;
        var console = Terminal.On(Console.Error);
        var progress = console.Progress().AutoClear(true).HideCompleted(false).Columns(
            new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
            new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn());
        var t = new Thread(() =>
        {
            try
            {
                progress.Start(ctx =>
                {
                    created = ctx.AddTask(text, autoStart: true, maxValue: total);
                    started.Set();
                    done.Wait();
                });
            }
            finally
            {
                started.Set(); // never leave the reporting thread waiting, whatever the terminal did
            }
        }) { IsBackground = true, Name = "progress" };
        t.Start();
        started.Wait();
        thread = t;
        stop = done;
        lock (Shown) Shown.Add(this);
        // A terminal that refused the live display: a task that is drawn nowhere still takes the reports.
        return task = created ?? new ProgressTask(0, text, total, autoStart: true);
    }
}
