using MicroExpr.Cli;
using MicroExpr.Cli.Args;

namespace MicroExpr.Tests;

/// <summary>The argument parser of the <c>microexpr</c> command line (System.CommandLine under the command specs).</summary>
public class CliArgsTests
{
    static readonly CommandSpec Command = new("bench test", "a command for tests",
    [
        new("json", OptionKind.Switch, "json output"),
        new("n", OptionKind.Int, "tokens", "50", 1),
        new("threads", OptionKind.Int, "threads", "2", 1),
        new("eps", OptionKind.Float, "epsilon", "1e-5", 0),
        new("name", OptionKind.Text, "a name"),
    ]);

    static ParsedArgs Parse(params string[] args) => ArgParser.Parse(Command, args);

    static string UsageError(params string[] args) =>
        Assert.Throws<CliUsageException>(() => Parse(args))!.Message;

    [Test]
    public void SpaceAndEqualsFormsParseTheSame()
    {
        Assert.That(Parse("--n", "5").Int("n", 0), Is.EqualTo(5));
        Assert.That(Parse("--n=5").Int("n", 0), Is.EqualTo(5));
    }

    [Test]
    public void AbsentOptionsFallBackAndSwitchesAreOffByDefault()
    {
        var parsed = Parse();
        Assert.That(parsed.Int("n", 50), Is.EqualTo(50));
        Assert.That(parsed.Switch("json"), Is.False);
        Assert.That(parsed.Has("threads"), Is.False);
        Assert.That(parsed.Help, Is.False);
    }

    [Test]
    public void SwitchesNumbersAndTextParse()
    {
        var parsed = Parse("--json", "--eps", "0.001", "--name=a=b", "--threads=1");
        Assert.That(parsed.Switch("json"), Is.True);
        Assert.That(parsed.Float("eps", 0), Is.EqualTo(0.001));
        Assert.That(parsed.Text("name"), Is.EqualTo("a=b"));
        Assert.That(parsed.Int("threads", 0), Is.EqualTo(1));
        Assert.That(Parse("--json=false").Switch("json"), Is.False);
    }

    [Test]
    public void UnknownOptionErrorNamesTheOption()
    {
        string message = UsageError("--n", "5", "--bogus", "3");
        Assert.That(message, Does.Contain("--bogus"));
        Assert.That(message, Does.Contain("unknown option"));
    }

    [Test]
    public void UnknownOptionCloseToAKnownOneSuggestsIt()
    {
        Assert.That(UsageError("--thread", "2"), Does.Contain("did you mean --threads?"));
    }

    [TestCase("abc")]
    [TestCase("1.5")]
    [TestCase("99999999999")]
    public void BadIntegerErrorNamesTheOptionAndTheValue(string value)
    {
        string message = UsageError("--n", value);
        Assert.That(message, Does.Contain("--n"));
        Assert.That(message, Does.Contain("integer"));
        Assert.That(message, Does.Contain($"'{value}'"));
    }

    [Test]
    public void IntegerBelowTheMinimumIsRefused()
    {
        Assert.That(UsageError("--threads=0"), Does.Contain("--threads expects an integer >= 1"));
    }

    [Test]
    public void MissingValueIsRefused()
    {
        Assert.That(UsageError("--n"), Does.Contain("--n expects an integer >= 1, but no value was given"));
        Assert.That(UsageError("--n", "--json"), Does.Contain("no value was given"));
    }

    [Test]
    public void RepeatedOptionIsRefused()
    {
        Assert.That(UsageError("--n", "1", "--n=2"), Does.Contain("--n was given more than once"));
    }

    [Test]
    public void StrayPositionalAndSingleDashOptionsAreRefused()
    {
        Assert.That(UsageError("5"), Does.Contain("unexpected argument '5'"));
        Assert.That(UsageError("-n", "5"), Does.Contain("unknown option '-n'"));
    }

    [Test]
    public void SwitchWithAValueOtherThanTrueOrFalseIsRefused()
    {
        Assert.That(UsageError("--json=yes"), Does.Contain("--json is a switch"));
    }

    [Test]
    public void HelpIsRecognisedAnywhere()
    {
        Assert.That(Parse("--n", "5", "--help").Help, Is.True);
        Assert.That(Parse("-h").Help, Is.True);
    }

    [Test]
    public void HelpTextListsEveryOptionWithItsDefault()
    {
        string help = Command.HelpText();
        Assert.That(help, Does.Contain("microexpr bench test [options]"));
        Assert.That(help, Does.Contain("--n <N>"));
        Assert.That(help, Does.Contain("(default 50)"));
        Assert.That(help, Does.Contain("--json"));
    }

    [Test]
    public void EveryKindTakesTheEqualsForm()
    {
        var parsed = Parse("--eps=0.5", "--name=x", "--json=true");
        Assert.That(parsed.Float("eps", 0), Is.EqualTo(0.5));
        Assert.That(parsed.Text("name"), Is.EqualTo("x"));
        Assert.That(parsed.Switch("json"), Is.True);
    }

    [Test]
    public void ANegativeNumberIsAValueNotAnOption()
    {
        Assert.That(UsageError("--eps", "-1"), Does.Contain("--eps expects a number >= 0, got '-1'"));
        Assert.That(UsageError("--threads", "-3"), Does.Contain("--threads expects an integer >= 1, got '-3'"));
    }

    [Test]
    public void RepeatedSwitchIsRefused()
    {
        Assert.That(UsageError("--json", "--json"), Does.Contain("--json was given more than once"));
    }

    [Test]
    public void HelpWinsOverOtherErrors()
    {
        Assert.That(Parse("--n", "x", "--help").Help, Is.True);
        Assert.That(Parse("--bogus", "-h").Help, Is.True);
    }

    [Test]
    public void AFarTypoGetsNoSuggestion()
    {
        string message = UsageError("--frobnicate");
        Assert.That(message, Does.Contain("unknown option '--frobnicate'"));
        Assert.That(message, Does.Not.Contain("did you mean"));
    }

    [Test]
    public void AResponseFileIsJustAValue()
    {
        Assert.That(Parse("--name", "@args.txt").Text("name"), Is.EqualTo("@args.txt"));
    }

    [Test]
    public void UnknownCommandSuggestsTheNearestOne()
    {
        var e = Assert.Throws<CliUsageException>(() => Entry.Dispatch(["trian"]))!;
        Assert.That(e.Message, Does.Contain("unknown command 'trian' (did you mean train?)"));
    }

    [Test]
    public void UnknownCommandAndUnknownBenchOpAreUsageErrors()
    {
        Assert.Throws<CliUsageException>(() => Entry.Dispatch(["frobnicate"]));
        Assert.Throws<CliUsageException>(() => Entry.Dispatch(["bench", "conv"]));
        Assert.Throws<CliUsageException>(() => Entry.Dispatch(["bench", "gemm", "--m", "x"]));
    }
}
