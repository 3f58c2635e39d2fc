using MicroExpr.Cli;
using MicroExpr.Cli.Explain;

namespace MicroExpr.Tests.Cli;

/// <summary><c>microexpr explain attention</c>: the trace's numbers are the fused kernel's, forward and backward.</summary>
public class ExplainAttentionTests
{
    [TestCase(4, 2, 2, 1)]
    [TestCase(4, 2, 64, 2)]
    [TestCase(5, 3, 2, 3)]
    [TestCase(7, 4, 3, 4)]
    [TestCase(16, 8, 5, 5)]
    [TestCase(1, 1, 1, 6)]
    [TestCase(33, 17, 64, 7)]
    public void TheTraceEqualsTheNaiveComputationAndTheRealKernel(int n, int d, int tile, int seed)
    {
        var t = AttentionTrace.Create(n, d, tile, seed, backward: true);
        // The online softmax over tiles is the naive softmax, rearranged.
        Assert.That(AttentionTrace.MaxAbsDiff(t.FusedO, t.NaiveO), Is.LessThan(1e-12));
        Assert.That(AttentionTrace.MaxAbsDiff(t.FusedLse, t.NaiveLse), Is.LessThan(1e-12));
        Assert.That(AttentionTrace.MaxAbsDiff(t.DQ!, t.NaiveDQ!), Is.LessThan(1e-12));
        Assert.That(AttentionTrace.MaxAbsDiff(t.DK!, t.NaiveDK!), Is.LessThan(1e-12));
        Assert.That(AttentionTrace.MaxAbsDiff(t.DV!, t.NaiveDV!), Is.LessThan(1e-12));
        // And the engine's float kernel computes the same numbers.
        var k = AttentionKernelRun.Of(t);
        foreach (var (name, diff) in AttentionTraceText.Checks(t, k))
            Assert.That(diff, Is.LessThanOrEqualTo(1e-6), $"{name} (n {n}, d {d}, tile {tile})");
        Assert.That(AttentionTraceText.Checks(t, k).Count(), Is.EqualTo(5));
    }

    [Test]
    public void EachTileStepCarriesTheRunningMaxSumAndRescale()
    {
        var t = AttentionTrace.Create(4, 2, 2, 1, backward: false);
        var tiles = t.Steps.Where(s => s.Title.StartsWith("Fused, key tile", StringComparison.Ordinal)).ToList();
        Assert.That(tiles, Has.Count.EqualTo(2));
        var first = tiles[0].Matrices.Single(m => m.Name.StartsWith("m_old", StringComparison.Ordinal));
        var last = tiles[1].Matrices.Single(m => m.Name.StartsWith("m_old", StringComparison.Ordinal));
        var naiveStats = t.Steps.Single(s => s.Title.StartsWith("Naive 2", StringComparison.Ordinal)).Matrices[1];
        for (int i = 0; i < 4; i++)
        {
            Assert.That(first[i, 0], Is.EqualTo(double.NegativeInfinity), "m starts at −∞");
            Assert.That(first[i, 2], Is.EqualTo(0), "nothing to rescale on the first tile");
            Assert.That(last[i, 1], Is.EqualTo(naiveStats[i, 0]).Within(1e-12), "after the last tile m is the row max");
            Assert.That(last[i, 3], Is.EqualTo(naiveStats[i, 1]).Within(1e-12), "and ℓ the naive row sum at that max");
            Assert.That(last[i, 2], Is.EqualTo(Math.Exp(last[i, 0] - last[i, 1])).Within(1e-15), "α = exp(m_old − m_new)");
        }
    }

    [Test]
    public void EveryNamedKernelSiteExistsInTheRepository()
    {
        string root = RepoRoot();
        foreach (var site in AttentionTrace.Sites.All)
        {
            string file = Path.Combine(root, site.File);
            Assert.That(File.Exists(file), Is.True, $"{site.File} (named by the trace) does not exist");
            string method = site.Function[(site.Function.LastIndexOf('.') + 1)..];
            string cls = site.Function[..site.Function.LastIndexOf('.')];
            string text = File.ReadAllText(file);
            Assert.That(text, Does.Contain($"class {cls}"), site.ToString());
            Assert.That(text, Does.Match($@"\b{method}\s*(<[^>]*>)?\("), site.ToString());
        }
    }

    [Test]
    public void TheCommandPrintsAgreementAndWritesOneSelfContainedPage()
    {
        string html = Path.Combine(Path.GetTempPath(), $"explain-{Guid.NewGuid():N}.html");
        try
        {
            var (code, output, _) = Run("explain", "attention", "--n", "4", "--d", "2", "--tile", "2", "--backward", "--html", html);
            Assert.That(code, Is.EqualTo(Entry.Ok));
            Assert.That(output, Does.Contain("Fused, key tile 1: keys 2..3").And.Contain("Backward 1: Dᵢ").And.Contain("dV").And.Contain("agree"));
            Assert.That(output, Does.Not.Contain("DIFFER"));
            string page = File.ReadAllText(html);
            Assert.That(page, Does.StartWith("<!DOCTYPE html>").And.EndWith("</html>\n"));
            Assert.That(page, Does.Not.Contain("<script").And.Not.Contain("src=").And.Not.Contain("http"), "self-contained");
            int opened = System.Text.RegularExpressions.Regex.Matches(page, "<table").Count;
            Assert.That(opened, Is.EqualTo(System.Text.RegularExpressions.Regex.Matches(page, "</table>").Count));
            Assert.That(opened, Is.GreaterThan(20), "every matrix of every step is a table");
            Assert.That(page, Does.Contain("background:#"));
        }
        finally
        {
            File.Delete(html);
        }
        Assert.That(Run("explain", "softmax").Code, Is.EqualTo(Entry.Usage));
        Assert.That(Run("explain", "attention", "--n", "0").Code, Is.EqualTo(Entry.Usage));
    }

    [Test]
    public void ColoursAreWhiteAtZeroAndSaturateTowardsTheExtremes()
    {
        Assert.That(AttentionTraceHtml.Colour(0, 1), Is.EqualTo("#ffffff"));
        Assert.That(AttentionTraceHtml.Colour(1, 1), Is.EqualTo(AttentionTraceHtml.Colour(2, 1)));
        Assert.That(AttentionTraceHtml.Colour(1, 1), Is.Not.EqualTo(AttentionTraceHtml.Colour(-1, 1)));
    }

    internal static string RepoRoot()
    {
        var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "MicroExpr.Engine.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("repository root (MicroExpr.Engine.sln) not found above the test folder");
    }

    private static (int Code, string Out, string Err) Run(params string[] args) => ConsoleCapture.Run(() => Entry.Run(args));
}
