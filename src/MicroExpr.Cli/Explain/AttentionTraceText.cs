using System.Text;

namespace MicroExpr.Cli.Explain;

/// <summary>The trace as plain text: each step's title, formula, code location and matrices (4 decimals).</summary>
internal static class AttentionTraceText
{
    public static string Render(AttentionTrace t, AttentionKernelRun kernel, double tolerance)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"attention, one head: N = {t.N} tokens, D = {t.D}, key tile = {t.Tile}{(t.Tile == AttentionTrace.KernelTile ? " (the CPU kernel's)" : "")}, s = 1/√D = {t.Scale.ToString("F4", Fmt.Inv)}");
        int i = 1;
        foreach (var step in t.Steps)
        {
            sb.AppendLine();
            sb.AppendLine($"== {i++}. {step.Title}");
            sb.AppendLine($"   {step.Formula}");
            sb.AppendLine($"   code: {step.Where}");
            foreach (var m in step.Matrices) Matrix(sb, m);
            if (step.Note != null) sb.AppendLine($"   note: {step.Note}");
        }
        sb.AppendLine();
        sb.AppendLine("== check: the trace against the engine's real kernel (float, AttentionSimd, 1 thread)");
        foreach (var (name, diff) in Checks(t, kernel))
            sb.AppendLine($"   {name,-4} max |kernel − trace| / max(1, |trace|) = {diff:E2}  {(diff <= tolerance ? "agree" : "DIFFER")} (tolerance {tolerance:E0})");
        return sb.ToString();
    }

    public static IEnumerable<(string Name, double Diff)> Checks(AttentionTrace t, AttentionKernelRun k)
    {
        yield return ("O", AttentionKernelRun.Difference(k.O, t.FusedO));
        yield return ("lse", AttentionKernelRun.Difference(k.Lse, t.FusedLse));
        if (k.DQ != null)
        {
            yield return ("dQ", AttentionKernelRun.Difference(k.DQ, t.DQ!));
            yield return ("dK", AttentionKernelRun.Difference(k.DK!, t.DK!));
            yield return ("dV", AttentionKernelRun.Difference(k.DV!, t.DV!));
        }
    }

    private static void Matrix(StringBuilder sb, TraceMatrix m)
    {
        sb.AppendLine($"   {m.Name} [{m.Rows}×{m.Cols}]");
        const int w = 9;
        sb.Append("   ").Append(new string(' ', 6));
        for (int c = 0; c < m.Cols; c++) sb.Append((m.ColLabels?[c] ?? $"c{c}").PadLeft(w));
        sb.AppendLine();
        for (int r = 0; r < m.Rows; r++)
        {
            sb.Append("   ").Append((m.RowLabels?[r] ?? $"r{r}").PadRight(6));
            for (int c = 0; c < m.Cols; c++) sb.Append(Cell(m[r, c]).PadLeft(w));
            sb.AppendLine();
        }
    }

    internal static string Cell(double v) =>
        double.IsNegativeInfinity(v) ? "−∞" : double.IsPositiveInfinity(v) ? "∞" : v.ToString("F4", Fmt.Inv);
}
