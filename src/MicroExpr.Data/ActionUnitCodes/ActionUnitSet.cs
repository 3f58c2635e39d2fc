using System.Globalization;
using System.Text;

namespace MicroExpr.Data.ActionUnitCodes;

/// <summary>Which side of the face an action unit acts on: both (bilateral, unmarked), the subject's left or right.</summary>
public enum AuSide
{
    Both,
    Left,
    Right,
}

/// <summary>One coded action unit: FACS number, side, and intensity A (trace) … E (maximum) when the coding gives one.</summary>
public readonly record struct ActionUnit(int Number, AuSide Side, char? Intensity = null) : IComparable<ActionUnit>
{
    public int CompareTo(ActionUnit other)
    {
        int c = Number.CompareTo(other.Number);
        return c != 0 ? c : Side != other.Side ? Side.CompareTo(other.Side) : Nullable.Compare(Intensity, other.Intensity);
    }

    public override string ToString() =>
        $"{(Side == AuSide.Left ? "L" : Side == AuSide.Right ? "R" : "")}{Number.ToString(CultureInfo.InvariantCulture)}{Intensity}";
}

/// <summary>
/// The action units of one clip as a canonical set (sorted by number, then side; duplicates merged) plus the string the
/// data set wrote. Canonical text: the units joined by '+', e.g. <c>4+L10</c>; the empty set is "".
/// </summary>
public sealed record ActionUnitSet(IReadOnlyList<ActionUnit> Units, string Raw)
{
    public static readonly ActionUnitSet Empty = new([], "");

    public string Canonical => string.Join("+", Units);

    /// <summary>The AU numbers, sides and intensities ignored: what an AU-set prototype is keyed on.</summary>
    public IReadOnlyList<int> Numbers => Units.Select(u => u.Number).Distinct().Order().ToList();

    public bool IsEmpty => Units.Count == 0;

    public override string ToString() => Canonical;
}

/// <summary>
/// Parses the action-unit codings of the MER data sets as distributed:
/// <list type="bullet">
/// <item>CASME II "Action Units": <c>4</c>, <c>4+7</c>, <c>L12</c>, <c>4+L10</c>, <c>R1+R2</c>, <c>L2+26+38</c>.</item>
/// <item>SAMM "Action Units": intensity letters after the number (<c>R14A</c>, <c>4C+7B</c>, <c>12B</c>), sometimes
/// spaces around '+' or an "AU" prefix.</item>
/// <item>CAS(ME)³ "AU": the same forms.</item>
/// </list>
/// Grammar per unit (case-insensitive, whitespace ignored): <c>[AU] [L|R] number [A-E]</c>, units separated by '+'
/// or ','. FACS numbers are 1–99. An empty cell, "-" or "/" means "not coded" (the empty set). Anything else is
/// refused with the offending part named: the caller reports it with the file and row and keeps the clip's label.
/// </summary>
public static class ActionUnitParser
{
    public static bool TryParse(string? raw, out ActionUnitSet set, out string? error)
    {
        raw ??= "";
        set = ActionUnitSet.Empty;
        error = null;
        string text = raw.Trim();
        if (text.Length == 0 || text is "-" or "/" or "–")
        {
            set = new ActionUnitSet([], raw);
            return true;
        }
        var units = new SortedSet<ActionUnit>();
        foreach (string part0 in text.Split('+', ','))
        {
            string part = part0.Trim().Replace(" ", "", StringComparison.Ordinal).ToUpperInvariant();
            if (part.Length == 0)
            {
                error = $"empty unit in '{raw}' (two '+' in a row, or a '+' at an end)";
                return false;
            }
            if (!TryUnit(part, out var unit))
            {
                error = $"'{part0.Trim()}' is not an action unit (expected [L|R]number[A-E], e.g. 4, L12, R14A)";
                return false;
            }
            units.Add(unit);
        }
        set = new ActionUnitSet(units.ToList(), raw);
        return true;
    }

    /// <summary>Parses or throws a one-line <see cref="FormatException"/> (the caller adds file and row).</summary>
    public static ActionUnitSet Parse(string? raw) =>
        TryParse(raw, out var set, out var error) ? set : throw new FormatException(error);

    private static bool TryUnit(string s, out ActionUnit unit)
    {
        unit = default;
        int i = 0;
        if (s.StartsWith("AU", StringComparison.Ordinal)) i = 2;
        var side = AuSide.Both;
        if (i < s.Length && s[i] is 'L' or 'R')
        {
            side = s[i] == 'L' ? AuSide.Left : AuSide.Right;
            i++;
        }
        int start = i;
        while (i < s.Length && char.IsAsciiDigit(s[i])) i++;
        if (i == start || i - start > 2) return false;
        int number = int.Parse(s.AsSpan(start, i - start), CultureInfo.InvariantCulture);
        if (number < 1) return false;
        char? intensity = null;
        if (i < s.Length)
        {
            if (s[i] is < 'A' or > 'E' || i != s.Length - 1) return false;
            intensity = s[i];
        }
        unit = new ActionUnit(number, side, intensity);
        return true;
    }

    /// <summary>"AU  count  name" rows, most frequent first: what <c>preprocess</c> prints.</summary>
    public static string FrequencyTable(IEnumerable<ActionUnitSet> sets)
    {
        var counts = new Dictionary<int, int>();
        int clips = 0, coded = 0;
        foreach (var s in sets)
        {
            clips++;
            if (s.IsEmpty) continue;
            coded++;
            foreach (int n in s.Numbers) counts[n] = counts.GetValueOrDefault(n) + 1;
        }
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"action units: {coded} of {clips} clips coded, {counts.Count} distinct AUs");
        foreach (var (n, c) in counts.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key))
            sb.AppendLine(CultureInfo.InvariantCulture, $"  AU{n,-3} {c,5}  {Facs.Name(n)}");
        return sb.ToString();
    }
}

/// <summary>
/// FACS names of the action units that occur in the MER data sets (Ekman, Friesen and Hager 2002; the names as FACS
/// gives them), for reports and for AIE-CCL's attribute text. An AU without a name here is named "AU n".
/// </summary>
public static class Facs
{
    public static readonly IReadOnlyDictionary<int, string> Names = new Dictionary<int, string>
    {
        [1] = "inner brow raiser", [2] = "outer brow raiser", [4] = "brow lowerer", [5] = "upper lid raiser",
        [6] = "cheek raiser", [7] = "lid tightener", [9] = "nose wrinkler", [10] = "upper lip raiser",
        [11] = "nasolabial deepener", [12] = "lip corner puller", [13] = "sharp lip puller", [14] = "dimpler",
        [15] = "lip corner depressor", [16] = "lower lip depressor", [17] = "chin raiser", [18] = "lip pucker",
        [20] = "lip stretcher", [21] = "neck tightener", [22] = "lip funneler", [23] = "lip tightener",
        [24] = "lip pressor", [25] = "lips part", [26] = "jaw drop", [27] = "mouth stretch", [28] = "lip suck",
        [29] = "jaw thrust", [30] = "jaw sideways", [31] = "jaw clencher", [32] = "lip bite", [33] = "cheek blow",
        [34] = "cheek puff", [35] = "cheek suck", [36] = "tongue bulge", [37] = "lip wipe", [38] = "nostril dilator",
        [39] = "nostril compressor", [41] = "lid droop", [42] = "slit", [43] = "eyes closed", [44] = "squint",
        [45] = "blink", [46] = "wink", [51] = "head turn left", [52] = "head turn right", [53] = "head up",
        [54] = "head down", [55] = "head tilt left", [56] = "head tilt right", [57] = "head forward", [58] = "head back",
        [61] = "eyes turn left", [62] = "eyes turn right", [63] = "eyes up", [64] = "eyes down",
    };

    public static string Name(int number) => Names.TryGetValue(number, out var n) ? n : $"AU {number}";

    /// <summary>A unit as words: side, then the FACS name ("left lip corner puller").</summary>
    public static string Describe(ActionUnit unit) =>
        (unit.Side switch { AuSide.Left => "left ", AuSide.Right => "right ", _ => "" }) + Name(unit.Number);
}
