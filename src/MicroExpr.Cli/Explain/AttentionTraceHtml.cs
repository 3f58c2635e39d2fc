using System.Net;
using System.Text;

namespace MicroExpr.Cli.Explain;

/// <summary>
/// The trace as one self-contained HTML page (no script, no external file): each step as a card with its formula, the
/// code that performs it, and its matrices as tables whose cells are coloured by value (blue negative, white zero, red
/// positive, scaled to the matrix's largest magnitude), so a teacher can project it and point at a row.
/// </summary>
internal static class AttentionTraceHtml
{
    public static string Render(AttentionTrace t, AttentionKernelRun kernel, double tolerance)
    {
        var sb = new StringBuilder();
        sb.Append("""
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Attention, step by step</title>
            <style>
            body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; line-height: 1.4; }
            h1 { font-size: 1.6em; } h2 { font-size: 1.15em; margin: 0 0 .3em 0; }
            .step { border: 1px solid #ddd; border-radius: 6px; padding: .8em 1em; margin: 1em 0; background: #fcfcfc; }
            .formula { font-family: ui-monospace, monospace; background: #f3f3f3; padding: .3em .5em; border-radius: 4px; display: inline-block; }
            .where { color: #666; font-size: .85em; margin: .4em 0; font-family: ui-monospace, monospace; }
            .note { color: #555; font-style: italic; margin-top: .4em; }
            .mats { display: flex; flex-wrap: wrap; gap: 1.2em; align-items: flex-start; }
            table { border-collapse: collapse; font-family: ui-monospace, monospace; font-size: .8em; }
            caption { font-weight: 600; text-align: left; padding-bottom: .2em; font-family: system-ui, sans-serif; }
            td, th { padding: .15em .45em; text-align: right; border: 1px solid #e4e4e4; }
            th { color: #777; font-weight: normal; background: #fafafa; }
            .ok { color: #1a7f37; font-weight: 600; } .bad { color: #c62828; font-weight: 600; }
            </style></head><body>
            """);
        sb.Append("<h1>Scaled dot-product attention, step by step</h1>");
        sb.Append($"<p>One head, N = {t.N} tokens, D = {t.D}, key tile = {t.Tile}, s = 1/√D = {t.Scale.ToString("F4", Fmt.Inv)}. " +
                  "First the naive computation, which forms the N×N score matrix; then the same result as the fused kernel computes it, " +
                  "one tile of keys at a time with an online softmax, never holding more than one tile of scores. " +
                  "Each step names the file and function of the engine that performs it.</p>");
        int i = 1;
        foreach (var step in t.Steps)
        {
            sb.Append("<div class=\"step\">");
            sb.Append($"<h2>{i++}. {E(step.Title)}</h2>");
            sb.Append($"<div class=\"formula\">{E(step.Formula)}</div>");
            sb.Append($"<div class=\"where\">code: {E(step.Where)}</div>");
            sb.Append("<div class=\"mats\">");
            foreach (var m in step.Matrices) Table(sb, m);
            sb.Append("</div>");
            if (step.Note != null) sb.Append($"<div class=\"note\">{E(step.Note)}</div>");
            sb.Append("</div>");
        }
        sb.Append("<div class=\"step\"><h2>Check against the engine's kernel</h2><p>The same inputs through the real fused kernel " +
                  "(AttentionSimd, float32, one thread): the largest difference per output, |kernel − trace| / max(1, |trace|).</p><table>");
        sb.Append("<tr><th>output</th><th>difference</th><th></th></tr>");
        foreach (var (name, diff) in AttentionTraceText.Checks(t, kernel))
            sb.Append($"<tr><td>{name}</td><td>{diff:E2}</td><td class=\"{(diff <= tolerance ? "ok\">agree" : "bad\">differ")}</td></tr>");
        sb.Append("</table></div></body></html>\n");
        return sb.ToString();
    }

    private static void Table(StringBuilder sb, TraceMatrix m)
    {
        double max = m.Values.Where(double.IsFinite).Select(Math.Abs).DefaultIfEmpty(0).Max();
        sb.Append($"<table><caption>{E(m.Name)} <span style=\"color:#888;font-weight:normal\">[{m.Rows}×{m.Cols}]</span></caption><tr><th></th>");
        for (int c = 0; c < m.Cols; c++) sb.Append($"<th>{E(m.ColLabels?[c] ?? $"c{c}")}</th>");
        sb.Append("</tr>");
        for (int r = 0; r < m.Rows; r++)
        {
            sb.Append($"<tr><th>{E(m.RowLabels?[r] ?? $"r{r}")}</th>");
            for (int c = 0; c < m.Cols; c++)
            {
                double v = m[r, c];
                sb.Append($"<td style=\"background:{Colour(v, max)}\">{E(AttentionTraceText.Cell(v))}</td>");
            }
            sb.Append("</tr>");
        }
        sb.Append("</table>");
    }

    /// <summary>White at zero, towards #d73027 (red) at +max and #4575b4 (blue) at −max.</summary>
    internal static string Colour(double v, double max)
    {
        if (!double.IsFinite(v) || max <= 0) return "#ffffff";
        double a = Math.Min(1, Math.Abs(v) / max) * 0.75;
        var (r, g, b) = v >= 0 ? (215, 48, 39) : (69, 117, 180);
        int Mix(int x) => (int)Math.Round(255 + (x - 255) * a);
        return $"#{Mix(r):x2}{Mix(g):x2}{Mix(b):x2}";
    }

    private static string E(string s) => WebUtility.HtmlEncode(s);
}
