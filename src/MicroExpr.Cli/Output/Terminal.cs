using Spectre.Console;

namespace MicroExpr.Cli.Output;

/// <summary>
/// Whether a writer is a person's terminal, and a Spectre.Console console on it. Progress bars and framed tables are
/// for terminals only: a redirected stream (a file, a pipe, a CI log, <c>--json</c> read by a script) gets plain text.
/// </summary>
internal static class Terminal
{
    /// <summary>True when <paramref name="writer"/> is the process's stdout or stderr and that is a terminal.</summary>
    public static bool IsTerminal(TextWriter writer)
    {
        if (Environment.GetEnvironmentVariable("TERM") == "dumb") return false;
        if (ReferenceEquals(writer, Console.Out)) return !Console.IsOutputRedirected;
        if (ReferenceEquals(writer, Console.Error)) return !Console.IsErrorRedirected;
        return false;
    }

    /// <summary>True when stderr, where progress is drawn, is a terminal.</summary>
    public static bool ErrorIsTerminal => IsTerminal(Console.Error);

    /// <summary>A Spectre.Console console writing to <paramref name="writer"/> (colours and width detected from the terminal).</summary>
    public static IAnsiConsole On(TextWriter writer) => AnsiConsole.Create(new AnsiConsoleSettings
    {
        Out = new AnsiConsoleOutput(writer),
        Ansi = AnsiSupport.Detect,
        ColorSystem = ColorSystemSupport.Detect,
        Interactive = InteractionSupport.Detect,
    });

    /// <summary>
    /// A table: framed by Spectre.Console on a terminal, else plain columns (two spaces of indent, three between
    /// columns, the widths of the widest cell), the form scripts and logs read.
    /// </summary>
    /// <param name="rightAligned">Per column: numbers are right-aligned.</param>
    public static void WriteTable(TextWriter output, IReadOnlyList<string> header, IReadOnlyList<IReadOnlyList<string>> rows, IReadOnlyList<bool> rightAligned,
        string? title = null)
    {
        if (IsTerminal(output))
        {
            var table = new Table().Border(TableBorder.Rounded);
            if (title != null) table.Title(Markup.Escape(title));
            for (int c = 0; c < header.Count; c++)
            {
                var column = new TableColumn(Markup.Escape(header[c]));
                table.AddColumn(rightAligned[c] ? column.RightAligned() : column);
            }
            foreach (var row in rows) table.AddRow(row.Select(Markup.Escape).ToArray());
            On(output).Write(table);
            return;
        }
        if (title != null) output.WriteLine(title);
        var width = new int[header.Count];
        foreach (var row in rows.Prepend(header))
            for (int c = 0; c < header.Count; c++) width[c] = Math.Max(width[c], row[c].Length);
        foreach (var row in rows.Prepend(header))
        {
            var cells = row.Select((cell, c) => rightAligned[c] ? cell.PadLeft(width[c]) : cell.PadRight(width[c]));
            output.WriteLine(("  " + string.Join("   ", cells)).TrimEnd());
        }
    }
}
