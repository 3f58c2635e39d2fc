using System.Globalization;
using MicroExpr.Data.Xlsx;

namespace MicroExpr.Data.Annotations;

/// <summary>
/// A worksheet read as a table: the header row is found (it need not be the first row: SAMM's files have title rows
/// above it), columns are looked up by name ignoring case, spaces and punctuation ("Onset Frame" = "OnsetFrame").
/// </summary>
internal sealed class SheetTable
{
    public string File { get; }
    public int HeaderRow { get; }
    public IReadOnlyList<SheetRow> Rows { get; }
    readonly Dictionary<string, int> columns;

    SheetTable(string file, int headerRow, Dictionary<string, int> columns, IReadOnlyList<SheetRow> rows)
    {
        File = file;
        HeaderRow = headerRow;
        this.columns = columns;
        Rows = rows;
    }

    /// <summary>
    /// Reads <paramref name="sheet"/> (the first sheet when null) and finds the first row, among the first 30, that names
    /// every column of <paramref name="required"/> (each given as alternatives). Throws <see cref="InvalidDataException"/>
    /// naming the file and the columns when none does.
    /// </summary>
    public static SheetTable Read(string file, string? sheet, params string[][] required)
    {
        var rows = XlsxReader.ReadSheet(file, sheet);
        for (int r = 0; r < Math.Min(rows.Count, 30); r++)
        {
            var cols = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int c = 0; c < rows[r].Cells.Length; c++)
            {
                string key = Key(rows[r].Cells[c]);
                if (key.Length > 0) cols.TryAdd(key, c);
            }
            if (required.All(alts => alts.Any(a => cols.ContainsKey(Key(a)))))
                return new SheetTable(file, rows[r].Number, cols, rows.Skip(r + 1).ToList());
        }
        throw new InvalidDataException(
            $"{file}: no header row with the columns {string.Join(", ", required.Select(a => string.Join("/", a)))} in the first 30 rows" +
            (sheet != null ? $" of sheet '{sheet}'" : ""));
    }

    /// <summary>Column index of the first alternative present, or -1.</summary>
    public int Col(params string[] alternatives)
    {
        foreach (var a in alternatives)
            if (columns.TryGetValue(Key(a), out int c)) return c;
        return -1;
    }

    static string Key(string header) => new(header.Where(char.IsLetterOrDigit).Select(char.ToLowerInvariant).ToArray());

    /// <summary>
    /// A frame number cell: blank, "-1", "/" or "n/a" → -1 (unknown); an integer (also "46.0") → its value. Anything else
    /// → false with <paramref name="error"/> saying what was expected.
    /// </summary>
    public static bool TryFrame(string cell, string column, out int frame, out string error)
    {
        string s = cell.Trim();
        error = "";
        frame = -1;
        if (s.Length == 0 || s == "-1" || s == "/" || s == "-" || s.Equals("n/a", StringComparison.OrdinalIgnoreCase)) return true;
        if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && d == Math.Floor(d) && d >= 0 && d < int.MaxValue)
        {
            frame = (int)d;
            return true;
        }
        error = $"{column} '{cell}' is not a frame number (expected a whole number, or blank/-1 for unknown)";
        return false;
    }
}
