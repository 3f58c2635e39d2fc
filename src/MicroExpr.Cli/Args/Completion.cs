using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Parsing;

namespace MicroExpr.Cli.Args;

/// <summary>
/// Tab completion: System.CommandLine's <c>[suggest]</c> directive, the protocol of <c>dotnet-suggest</c>.
/// <c>microexpr "[suggest:P]" "microexpr train --ep"</c> prints one completion per line (here <c>--epochs</c>) for the
/// word at character P of the line (the end of the line with <c>[suggest]</c>). The tree it completes in is built on
/// demand: the commands and their summaries, and for the command being typed its <see cref="CommandSpec"/>, obtained by
/// running the command with <see cref="ArgParser.Probing"/> set (its <see cref="ArgParser.ParseOrHelp"/> hands the spec
/// over and the command ends without doing anything), so every command completes without being listed here.
/// </summary>
internal static class Completion
{
    public static bool IsRequest(IReadOnlyList<string> args) =>
        args.Count > 0 && args[0].StartsWith("[suggest", StringComparison.Ordinal) && args[0].EndsWith(']');

    /// <param name="commands">The top-level commands: name and summary.</param>
    /// <param name="subcommands">The subcommands of a command (bench's ops), empty for most.</param>
    /// <param name="dispatch">Runs a command line, as <see cref="Entry.Dispatch"/> does.</param>
    public static int Run(IReadOnlyList<string> args, TextWriter output, IReadOnlyList<(string Name, string Summary)> commands,
        Func<string, IReadOnlyList<(string Name, string Summary)>> subcommands, Func<IReadOnlyList<string>, int> dispatch)
    {
        string line = string.Join(' ', args.Skip(1));
        int position = line.Length;
        string directive = args[0];
        if (directive.StartsWith("[suggest:", StringComparison.Ordinal)
            && int.TryParse(directive["[suggest:".Length..^1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int p))
            position = Math.Min(p, line.Length);
        string text = StripExecutable(line[..position]);
        var words = CommandLineParser.SplitCommandLine(text).ToList();
        bool newWord = text.Length == 0 || char.IsWhiteSpace(text[^1]);
        int complete = newWord ? words.Count : words.Count - 1; // index of the word being completed

        var root = new Command("microexpr");
        root.Options.Add(new HelpOption("--help", "-h"));
        root.Options.Add(new VersionOption());
        foreach (var (name, summary) in commands) root.Subcommands.Add(new Command(name, summary));
        if (complete >= 1 && commands.Any(c => c.Name == words[0]))
        {
            var subs = subcommands(words[0]);
            if (subs.Count == 0)
            {
                if (Probe(dispatch, [words[0]]) is { } spec) SclCommand.Build(spec, root);
            }
            else
            {
                var group = root.Subcommands.First(c => c.Name == words[0]);
                foreach (var (name, summary) in subs) group.Subcommands.Add(new Command(name, summary));
                if (complete >= 2 && subs.Any(s => s.Name == words[1]) && Probe(dispatch, [words[0], words[1]]) is { } spec)
                    SclCommand.Build(spec, root);
            }
        }
        var result = root.Parse(text, ArgParser.Config);
        foreach (var item in result.GetCompletions(text.Length).Select(c => c.Label).Distinct())
            output.WriteLine(item);
        return Entry.Ok;
    }

    /// <summary>dotnet-suggest passes the line as typed: "microexpr train", "./microexpr train", "/usr/bin/microexpr train".</summary>
    static string StripExecutable(string text)
    {
        string trimmed = text.TrimStart();
        int end = 0;
        while (end < trimmed.Length && !char.IsWhiteSpace(trimmed[end])) end++;
        string first = trimmed[..end].Trim('"', '\'');
        string name = Path.GetFileNameWithoutExtension(first);
        return name is "microexpr" or "MicroExpr.Cli" ? trimmed[end..].TrimStart() : trimmed;
    }

    /// <summary>The spec that the command line <paramref name="args"/> parses its options with, or null.</summary>
    static CommandSpec? Probe(Func<IReadOnlyList<string>, int> dispatch, IReadOnlyList<string> args)
    {
        ArgParser.Probing = true;
        ArgParser.Probed = null;
        try
        {
            dispatch(args);
            return ArgParser.Probed;
        }
        catch (CliUsageException)
        {
            return null;
        }
        finally
        {
            ArgParser.Probing = false;
        }
    }
}
