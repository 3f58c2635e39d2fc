using System.Globalization;
using System.Text;

namespace MicroExpr.Cli.Args;

/// <summary>What an option takes: nothing (a switch), an integer, a number or free text.</summary>
internal enum OptionKind { Switch, Int, Float, Text }

/// <summary>
/// One option of a command, e.g. <c>--threads N</c>. <see cref="Min"/> bounds integers and numbers from below
/// (inclusive); <see cref="Default"/> is only shown in help, the command supplies the value.
/// </summary>
internal sealed record OptionSpec(string Name, OptionKind Kind, string Help, string? Default = null, double Min = double.NegativeInfinity)
{
    public string ValueName => Kind switch
    {
        OptionKind.Int => "N",
        OptionKind.Float => "X",
        OptionKind.Text => "TEXT",
        _ => "",
    };

    /// <summary>What a value must look like, for error messages: "an integer >= 1".</summary>
    public string Expected => Kind switch
    {
        OptionKind.Int when double.IsFinite(Min) => $"an integer >= {Min.ToString(CultureInfo.InvariantCulture)}",
        OptionKind.Int => "an integer",
        OptionKind.Float when double.IsFinite(Min) => $"a number >= {Min.ToString(CultureInfo.InvariantCulture)}",
        OptionKind.Float => "a number",
        OptionKind.Text => "a value",
        _ => "no value",
    };
}

/// <summary>A command's name (e.g. "bench gemm"), one-line summary, longer description and options.</summary>
internal sealed record CommandSpec(string Name, string Summary, IReadOnlyList<OptionSpec> Options, string? Description = null)
{
    public OptionSpec? Find(string name) => Options.FirstOrDefault(o => o.Name == name);

    /// <summary>The text printed by <c>--help</c>.</summary>
    public string HelpText()
    {
        var sb = new StringBuilder();
        sb.Append("usage: microexpr ").Append(Name);
        if (Options.Count > 0) sb.Append(" [options]");
        sb.AppendLine().AppendLine().AppendLine(Summary);
        if (Description != null) sb.AppendLine().AppendLine(Description.TrimEnd());
        var all = Options.Append(new OptionSpec("help", OptionKind.Switch, "show this help")).ToList();
        var left = all.Select(o => o.Kind == OptionKind.Switch ? $"--{o.Name}" : $"--{o.Name} {o.ValueName}").ToList();
        int width = left.Max(s => s.Length) + 2;
        sb.AppendLine().AppendLine("options:");
        for (int i = 0; i < all.Count; i++)
        {
            sb.Append("  ").Append(left[i].PadRight(width)).Append(all[i].Help);
            if (all[i].Default != null) sb.Append(" (default ").Append(all[i].Default).Append(')');
            sb.AppendLine();
        }
        return sb.ToString();
    }
}

/// <summary>A wrong command line: the message names the option and what was expected. Exit code 2.</summary>
internal sealed class CliUsageException(string message) : Exception(message);

/// <summary>The parsed options of one command: typed values by option name (without dashes).</summary>
internal sealed class ParsedArgs
{
    readonly Dictionary<string, object> values = new(StringComparer.Ordinal);

    /// <summary>True when <c>--help</c> or <c>-h</c> was given: the command prints help and does nothing else.</summary>
    public bool Help { get; internal set; }

    internal void Set(string name, object value) => values[name] = value;

    public bool Has(string name) => values.ContainsKey(name);
    public bool Switch(string name) => values.TryGetValue(name, out var v) && (bool)v;
    public int Int(string name, int fallback) => values.TryGetValue(name, out var v) ? (int)v : fallback;
    public double Float(string name, double fallback) => values.TryGetValue(name, out var v) ? (double)v : fallback;
    public string? Text(string name) => values.TryGetValue(name, out var v) ? (string)v : null;
}

/// <summary>
/// A small hand-written parser. Accepts <c>--name value</c>, <c>--name=value</c> and switches (<c>--json</c>, or
/// <c>--json=true|false</c>); <c>-h</c>/<c>--help</c> anywhere asks for help. Refuses unknown options, missing or
/// malformed values, repeated options and stray positional arguments, each with a message naming the option.
/// </summary>
internal static class ArgParser
{
    /// <summary>
    /// Parses <paramref name="args"/>; when they ask for help, prints the command's help and returns false (the command
    /// then ends with success), else returns true with the parsed options.
    /// </summary>
    public static bool ParseOrHelp(CommandSpec command, IReadOnlyList<string> args, out ParsedArgs parsed)
    {
        parsed = Parse(command, args);
        if (!parsed.Help) return true;
        Console.Out.Write(command.HelpText());
        return false;
    }

    public static ParsedArgs Parse(CommandSpec command, IReadOnlyList<string> args)
    {
        var result = new ParsedArgs();
        string hint = $"see 'microexpr {command.Name} --help'";
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (arg is "-h" or "--help")
            {
                result.Help = true;
                continue;
            }
            if (!arg.StartsWith("--", StringComparison.Ordinal) || arg.Length == 2)
            {
                if (arg.StartsWith('-') && arg.Length > 1)
                    throw new CliUsageException($"unknown option '{arg}' for 'microexpr {command.Name}'; options are written --name; {hint}");
                throw new CliUsageException($"unexpected argument '{arg}' for 'microexpr {command.Name}'; {hint}");
            }

            string body = arg[2..];
            string name = body;
            string? inline = null;
            int eq = body.IndexOf('=');
            if (eq >= 0)
            {
                name = body[..eq];
                inline = body[(eq + 1)..];
            }
            if (name == "help")
            {
                result.Help = true;
                continue;
            }

            var spec = command.Find(name)
                ?? throw new CliUsageException($"unknown option '--{name}' for 'microexpr {command.Name}'{Suggest(command, name)}; {hint}");
            if (result.Has(name))
                throw new CliUsageException($"option --{name} was given more than once");

            if (spec.Kind == OptionKind.Switch)
            {
                bool on = inline switch
                {
                    null => true,
                    "true" or "1" => true,
                    "false" or "0" => false,
                    _ => throw new CliUsageException($"option --{name} is a switch: give it alone, or as --{name}=true / --{name}=false, not '{inline}'"),
                };
                result.Set(name, on);
                continue;
            }

            string value;
            if (inline != null)
            {
                value = inline;
            }
            else
            {
                // A following "--something" is the next option, not this one's value; "-1" is a value.
                if (i + 1 >= args.Count || args[i + 1].StartsWith("--", StringComparison.Ordinal))
                    throw new CliUsageException($"option --{name} expects {spec.Expected}, but no value was given");
                value = args[++i];
            }
            result.Set(name, Convert(spec, value));
        }
        return result;
    }

    static object Convert(OptionSpec spec, string value)
    {
        switch (spec.Kind)
        {
            case OptionKind.Int:
                if (!int.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int n) || n < spec.Min)
                    throw new CliUsageException($"option --{spec.Name} expects {spec.Expected}, got '{value}'");
                return n;
            case OptionKind.Float:
                if (!double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double x) || !double.IsFinite(x) || x < spec.Min)
                    throw new CliUsageException($"option --{spec.Name} expects {spec.Expected}, got '{value}'");
                return x;
            default:
                if (value.Length == 0)
                    throw new CliUsageException($"option --{spec.Name} expects {spec.Expected}, got an empty string");
                return value;
        }
    }

    /// <summary>" (did you mean --threads?)" when one known option is within two edits of the typo.</summary>
    static string Suggest(CommandSpec command, string name)
    {
        var best = command.Options
            .Select(o => (o.Name, Distance: Levenshtein(o.Name, name)))
            .Where(t => t.Distance <= 2)
            .OrderBy(t => t.Distance)
            .FirstOrDefault();
        return best.Name != null ? $" (did you mean --{best.Name}?)" : "";
    }

    static int Levenshtein(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }
}
