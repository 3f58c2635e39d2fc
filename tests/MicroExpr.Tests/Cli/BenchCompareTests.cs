using MicroExpr.Cli.Args;
using MicroExpr.Cli.Bench;

namespace MicroExpr.Tests.Cli;

/// <summary><c>bench … --compare OPTION=A,B</c>: interleaving, what it reads from the bench's JSON lines, and the ratio.</summary>
[NonParallelizable]
public class BenchCompareTests
{
    [Test]
    public void TheSettingsAreInterleavedAndTheRatioIsPerRound()
    {
        var c = BenchCompare.Parse(["--runs", "3", "--compare", "threads=1,2", "--rounds", "3", "--json"])!;
        Assert.That(c.Option, Is.EqualTo("threads"));
        Assert.That(c.Others, Is.EqualTo(new[] { "--runs", "3" }), "--compare, --rounds and --json are the comparison's own");
        var calls = new List<string>();
        // A fake bench: threads 1 takes 4 ms per call and threads 2 takes 2 ms, plus a drift of 1 ms per call made.
        int code = 0;
        var (_, output, _) = ConsoleCapture.Run(() => code = BenchCompare.Run("softmax", c, args =>
        {
            string t = args[args.ToList().IndexOf("--threads") + 1];
            calls.Add(t);
            double ms = (t == "1" ? 4 : 2) + calls.Count;
            Console.Out.WriteLine("progress text that is not JSON");
            Console.Out.WriteLine($$"""{"name":"softmax.forward","shape":{"rows":8},"median_ms":{{ms}}}""");
            return 0;
        }));
        Assert.That(code, Is.EqualTo(0));
        Assert.That(calls, Is.EqualTo(new[] { "1", "2", "2", "1", "1", "2" }), "A B, B A, A B");
        // Rounds: A 5, B 4 → 1.25; B 5, A 8 → 1.6; A 9, B 8 → 1.125.
        Assert.That(output, Does.Contain("softmax.forward {\"rows\":8}"));
        Assert.That(output, Does.Contain("A 8.000 (5.000-9.000)   B 5.000 (4.000-8.000)   A/B 1.250 (1.125-1.600)"), output);
    }

    [Test]
    public void AFailingRunStopsTheComparisonWithItsCode()
    {
        var c = BenchCompare.Parse(["--compare=threads=1,2"])!;
        int code = 0;
        ConsoleCapture.Run(() => code = BenchCompare.Run("gemm", c, _ => 2));
        Assert.That(code, Is.EqualTo(2));
    }

    [TestCase(new[] { "--compare" }, "--compare needs OPTION=A,B")]
    [TestCase(new[] { "--compare", "threads=1" }, "expected OPTION=A,B with two values")]
    [TestCase(new[] { "--compare", "threads=1,2,3" }, "expected OPTION=A,B with two values")]
    [TestCase(new[] { "--compare", "threads=1,2", "--threads", "2" }, "--threads is also given on its own")]
    [TestCase(new[] { "--compare", "threads=1,2", "--rounds", "0" }, "--rounds expects an integer >= 1")]
    public void BadComparisonsAreUsageErrors(string[] args, string message)
    {
        var e = Assert.Throws<CliUsageException>(() => BenchCompare.Parse(args))!;
        Assert.That(e.Message, Does.Contain(message));
    }

    [Test]
    public void WithoutCompareNothingIsParsed() => Assert.That(BenchCompare.Parse(["--threads", "2"]), Is.Null);
}
