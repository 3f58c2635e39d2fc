using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Parsing;
using System.Globalization;

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

    /// <summary>The text printed by <c>--help</c>: System.CommandLine's help (description, usage, options with defaults).</summary>
    public string HelpText()
    {
        var text = new StringWriter();
        var scl = SclCommand.Build(this);
        // The terminal's width only here, where help is printed: Console.WindowWidth on a terminal reads its terminfo
        // entry, which every parse would otherwise pay for.
        if (scl.Help.Action is HelpAction action) action.MaxWidth = ArgParser.HelpWidth();
        scl.Command.Parse(["--help"]).Invoke(new InvocationConfiguration { Output = text, Error = text });
        return text.ToString();
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

    /// <summary>System.CommandLine's parse of the command line (null for help and for a completion probe).</summary>
    internal ParseResult? Result { get; init; }

    internal void Set(string name, object value) => values[name] = value;

    public bool Has(string name) => values.ContainsKey(name);
    public bool Switch(string name) => values.TryGetValue(name, out var v) && (bool)v;
    public int Int(string name, int fallback) => values.TryGetValue(name, out var v) ? (int)v : fallback;
    public double Float(string name, double fallback) => values.TryGetValue(name, out var v) ? (double)v : fallback;
    public string? Text(string name) => values.TryGetValue(name, out var v) ? (string)v : null;
}

/// <summary>
/// A <see cref="CommandSpec"/> as a System.CommandLine <see cref="System.CommandLine.Command"/>: one typed
/// <see cref="Option{T}"/> per spec (bool, int, double, string), its parents (<c>microexpr</c>, <c>bench</c>) for the
/// usage line, and <c>-h</c>/<c>--help</c>. Integers and numbers are converted with the invariant culture and checked
/// against <see cref="OptionSpec.Min"/> by a custom parser, so the error names the option, what was expected and the value.
/// </summary>
internal sealed class SclCommand
{
    public required Command Command { get; init; }
    public required IReadOnlyList<(OptionSpec Spec, Option Option)> Options { get; init; }
    public required HelpOption Help { get; init; }

    /// <param name="root">The <c>microexpr</c> command to hang it in (tab completion's tree; a placeholder of the
    /// same name is replaced), or null for a tree of its own.</param>
    public static SclCommand Build(CommandSpec spec, Command? root = null)
    {
        // "bench gemm" is the command gemm inside bench inside microexpr: the parents only name the usage line.
        var words = spec.Name.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Command parent = root ?? new Command("microexpr");
        foreach (var word in words[..^1])
        {
            var group = parent.Subcommands.FirstOrDefault(c => c.Name == word);
            if (group is null) parent.Subcommands.Add(group = new Command(word));
            parent = group;
        }
        string description = spec.Description is null ? spec.Summary : spec.Summary + Environment.NewLine + Environment.NewLine + spec.Description.TrimEnd();
        var command = new Command(words[^1], description);
        if (parent.Subcommands.FirstOrDefault(c => c.Name == words[^1]) is { } placeholder) parent.Subcommands.Remove(placeholder);
        parent.Subcommands.Add(command);

        var options = new List<(OptionSpec, Option)>();
        foreach (var o in spec.Options)
        {
            var option = Option(o);
            option.Description = o.Help + (o.Default is null ? "" : $" (default {o.Default})");
            command.Options.Add(option);
            options.Add((o, option));
        }
        // Not HelpOption()'s "/h" and "/?": on Linux those are paths.
        var help = new HelpOption("--help", "-h");
        command.Options.Add(help);
        return new SclCommand { Command = command, Options = options, Help = help };
    }

    static Option Option(OptionSpec o)
    {
        string name = "--" + o.Name;
        switch (o.Kind)
        {
            case OptionKind.Switch:
                return new Option<bool>(name);
            case OptionKind.Int:
                return new Option<int>(name)
                {
                    HelpName = o.ValueName,
                    CustomParser = r => Value(o, r, (string v, out int n) =>
                        int.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out n) && n >= o.Min),
                };
            case OptionKind.Float:
                return new Option<double>(name)
                {
                    HelpName = o.ValueName,
                    CustomParser = r => Value(o, r, (string v, out double x) =>
                        double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out x) && double.IsFinite(x) && x >= o.Min),
                };
            default:
                return new Option<string>(name)
                {
                    HelpName = o.ValueName,
                    CustomParser = r => Value(o, r, (string v, out string text) => (text = v).Length > 0),
                };
        }
    }

    delegate bool TryConvert<T>(string value, out T converted);

    /// <summary>Converts the option's one token, or records an error that names the option and the value.</summary>
    static T? Value<T>(OptionSpec o, ArgumentResult r, TryConvert<T> convert)
    {
        // A following "--something" is the next option, not this one's value; "-1" is a value.
        if (r.Tokens.Count == 0 || r.Tokens[0].Value.StartsWith("--", StringComparison.Ordinal))
        {
            r.AddError($"option --{o.Name} expects {o.Expected}, but no value was given");
            return default;
        }
        string value = r.Tokens[0].Value;
        if (!convert(value, out var converted))
            r.AddError(value.Length == 0
                ? $"option --{o.Name} expects {o.Expected}, got an empty string"
                : $"option --{o.Name} expects {o.Expected}, got '{value}'");
        return converted;
    }
}

/// <summary>
/// Parses a command's options with System.CommandLine (<c>--name value</c>, <c>--name=value</c>, switches as
/// <c>--json</c> or <c>--json=true|false</c>; <c>-h</c>/<c>--help</c> anywhere asks for help) and turns its errors into
/// one message naming the option: unknown options (with the nearest known one), missing or malformed values, repeated
/// options and stray positional arguments. No response files (<c>@file</c> is a value like any other).
/// </summary>
internal static class ArgParser
{
    internal static readonly ParserConfiguration Config = new() { EnablePosixBundling = false, ResponseFileTokenReplacer = null };

    /// <summary>Help is wrapped to the terminal; redirected (a file, a test) it is not wrapped below 120 columns.</summary>
    internal static int HelpWidth()
    {
        if (Console.IsOutputRedirected) return 120;
        try
        {
            return Math.Max(80, Console.WindowWidth);
        }
        catch (IOException)
        {
            return 120;
        }
    }

    /// <summary>
    /// Parses <paramref name="args"/>; when they ask for help, prints the command's help and returns false (the command
    /// then ends with success), else returns true with the parsed options.
    /// </summary>
    public static bool ParseOrHelp(CommandSpec command, IReadOnlyList<string> args, out ParsedArgs parsed)
    {
        if (Probing)
        {
            // Tab completion asks which options the command has: say, and let the command end without doing anything.
            Probed = command;
            parsed = new ParsedArgs { Help = true };
            return false;
        }
        parsed = Parse(command, args);
        if (!parsed.Help) return true;
        Console.Out.Write(command.HelpText());
        return false;
    }

    public static ParsedArgs Parse(CommandSpec command, IReadOnlyList<string> args)
    {
        var scl = SclCommand.Build(command);
        var result = scl.Command.Parse(args, Config);
        // Help clears the parse errors: "--n x --help" prints help, as "--help" alone does.
        if (result.GetResult(scl.Help) is not null) return new ParsedArgs { Help = true };
        if (Error(command, scl, result) is { } message) throw new CliUsageException(message);

        var parsed = new ParsedArgs { Result = result };
        foreach (var (spec, option) in scl.Options)
        {
            if (result.GetResult(option) is not { } r || r.Implicit) continue;
            object? value = option switch
            {
                Option<bool> b => result.GetValue(b),
                Option<int> i => result.GetValue(i),
                Option<double> d => result.GetValue(d),
                Option<string> s => result.GetValue(s),
                _ => null,
            };
            if (value is not null) parsed.Set(spec.Name, value);
        }
        return parsed;
    }

    /// <summary>The first thing wrong with the command line, in the order of its tokens, or null.</summary>
    static string? Error(CommandSpec command, SclCommand scl, ParseResult result)
    {
        string hint = $"see 'microexpr {command.Name} --help'";
        var byName = scl.Options.ToDictionary(o => o.Option.Name, o => (o.Spec, o.Option), StringComparer.Ordinal);
        var tokens = result.Tokens;
        var unmatched = new HashSet<string>(result.UnmatchedTokens, StringComparer.Ordinal);
        for (int i = 0; i < tokens.Count; i++)
        {
            var token = tokens[i];
            if (token.Type == TokenType.Option && byName.TryGetValue(token.Value, out var known))
            {
                var (spec, option) = known;
                var r = result.GetResult(option);
                // Both occurrences land in one result, whose arity error would otherwise speak of a missing value.
                if (r is { IdentifierTokenCount: > 1 }) return $"option --{spec.Name} was given more than once";
                var error = result.Errors.FirstOrDefault(e => e.SymbolResult is ArgumentResult a && a.Parent == r || e.SymbolResult == r);
                if (error is not null)
                {
                    // Our parsers' messages name the option; System.CommandLine's own (a missing value) get the same shape.
                    return error.Message.StartsWith("option --", StringComparison.Ordinal) ? error.Message
                        : $"option --{spec.Name} expects {spec.Expected}, but no value was given";
                }
                continue;
            }
            if (token.Type is TokenType.Argument && unmatched.Contains(token.Value))
            {
                string arg = token.Value;
                if (i > 0 && tokens[i - 1].Type == TokenType.Option && byName.TryGetValue(tokens[i - 1].Value, out var previous)
                    && previous.Spec is { Kind: OptionKind.Switch } swSpec)
                    return $"option --{swSpec.Name} is a switch: give it alone, or as --{swSpec.Name}=true / --{swSpec.Name}=false, not '{arg}'";
                if (arg.StartsWith("--", StringComparison.Ordinal) && arg.Length > 2)
                {
                    string name = arg[2..].Split('=')[0];
                    return $"unknown option '--{name}' for 'microexpr {command.Name}'{Suggest(name, command.Options.Select(o => o.Name), "--")}; {hint}";
                }
                if (arg.StartsWith('-') && arg.Length > 1 && !double.TryParse(arg, NumberStyles.Float, CultureInfo.InvariantCulture, out _))
                    return $"unknown option '{arg}' for 'microexpr {command.Name}'; options are written --name; {hint}";
                return $"unexpected argument '{arg}' for 'microexpr {command.Name}'; {hint}";
            }
        }
        // Anything else System.CommandLine refused (not expected with these option kinds).
        return result.Errors.Count > 0 ? $"{result.Errors[0].Message.TrimEnd('.')} ('microexpr {command.Name}'); {hint}" : null;
    }

    /// <summary>" (did you mean --threads?)" when one known name is within two edits of the typo.</summary>
    internal static string Suggest(string typo, IEnumerable<string> known, string prefix)
    {
        var best = known
            .Select(name => (Name: name, Distance: Levenshtein(name, typo)))
            .Where(t => t.Distance <= Math.Min(2, Math.Max(1, typo.Length / 2)))
            .OrderBy(t => t.Distance)
            .FirstOrDefault();
        return best.Name != null ? $" (did you mean {prefix}{best.Name}?)" : "";
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

    /// <summary>Set while tab completion asks a command for its spec (<see cref="Completion"/>).</summary>
    [ThreadStatic] internal static bool Probing;

    /// <summary>The spec the probed command handed to <see cref="ParseOrHelp"/>.</summary>
    [ThreadStatic] internal static CommandSpec? Probed;
}
