using MicroExpr.Cli;

namespace MicroExpr.Tests.Cli;

/// <summary>Issue 16's recipe options on the command line: listed in --help, a wrong value is one usage line.</summary>
[NonParallelizable]
public class RecipeOptionsCliTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => ConsoleCapture.Run(() => Entry.Run(args));

    [Test]
    public void TrainHelpListsTheRecipeOptions()
    {
        var (code, output, _) = Run("train", "--help");
        Assert.That(code, Is.EqualTo(Entry.Ok));
        Assert.That(output, Does.Contain("--mixup <X>").And.Contain("--balanced").And.Contain("turns class weights off")
            .And.Contain("dropout=0.1").And.Contain("head-dropout").And.Contain("drop-path").And.Contain("stem=conv"));
    }

    [TestCase("--mixup", "-1", "--mixup expects a number >= 0")]
    [TestCase("--set", "dropuot=0.1", "no such field; its fields: ")]
    [TestCase("--grid", "balanced=maybe", "--grid balanced: value 'maybe' is not true or false")]
    public void AWrongValueIsOneUsageLine(string option, string value, string message)
    {
        var args = new List<string> { "train", "--data", "nowhere", "--out", Path.Combine(Path.GetTempPath(), "never-written"), option, value };
        if (option == "--grid") args.AddRange(["--select", "inner"]);
        var (code, _, err) = Run([.. args]);
        Assert.That(code, Is.Not.EqualTo(Entry.Ok));
        Assert.That(err.Trim().Split('\n'), Has.Length.EqualTo(1), err);
        Assert.That(err, Does.StartWith("microexpr").And.Contain(message), "refused for the value, before the (missing) cache is read");
        if (option == "--set") Assert.That(err, Does.Contain("dropout, head-dropout, drop-path, stem"));
    }
}
