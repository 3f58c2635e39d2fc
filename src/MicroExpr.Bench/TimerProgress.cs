namespace MicroExpr.Bench;

/// <summary>
/// What a timing loop reports before each call or step: its <paramref name="Text"/> and, in the timed phase,
/// <paramref name="Done"/> of <paramref name="Total"/> samples finished, so that a progress bar can show the remaining
/// time. <paramref name="Total"/> 0: a phase without a known end (the warm-up, which runs until the JIT has settled).
/// </summary>
public readonly record struct TimerProgress(string Text, int Done, int Total)
{
    public bool HasTotal => Total > 0;

    public override string ToString() => Text;
}
