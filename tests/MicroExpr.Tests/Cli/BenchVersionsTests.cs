using System.Text.Json;
using MicroExpr.Cli;

namespace MicroExpr.Tests.Cli;

/// <summary>
/// <c>bench attention|softmax|layernorm --version</c>: the table's shape and labels (never its timings): one row per
/// version in order, each checked "ok" against the reference, the ILGPU version not timed on ILGPU's CPU accelerator (no
/// GPU in CI) and saying why, the file of every version; the JSON lines; bad values refused in one line.
/// </summary>
[NonParallelizable]
public class BenchVersionsTests
{
    static readonly string[] Quick = ["--runs", "1", "--warmup", "0", "--threads", "1"];

    [TestCase("attention", new[] { "--bh", "2", "--n", "67", "--d", "5" }, new[] { "v1", "v2", "v3", "v4" })]
    [TestCase("softmax", new[] { "--rows", "70", "--cols", "33" }, new[] { "v1", "v2", "v3" })]
    [TestCase("layernorm", new[] { "--rows", "70", "--cols", "19" }, new[] { "v1", "v2", "v3" })]
    public void VersionAllPrintsOneCheckedRowPerVersion(string op, string[] shape, string[] ids)
    {
        var (code, output, err) = ConsoleCapture.Run(() => Entry.Run(["bench", op, "--version", "all", .. shape, .. Quick]));
        Assert.That(code, Is.EqualTo(0), err);
        var lines = output.Split('\n').Select(l => l.TrimEnd()).ToList();
        Assert.That(lines[0], Does.StartWith($"{op} versions"));
        int header = lines.FindIndex(l => l.TrimStart().StartsWith("version", StringComparison.Ordinal));
        Assert.That(header, Is.GreaterThan(0), output);
        Assert.That(lines[header].Split("   ", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            Is.EqualTo(new[] { "version", "what", "max error", "check", "median ms", "min-max ms", op == "attention" ? "GFLOP/s" : "GB/s", "vs v1" }));
        var rows = lines.Skip(header + 1).TakeWhile(l => l.Length > 0).ToList();
        Assert.That(rows.Select(r => r.Trim().Split(' ')[0]), Is.EqualTo(ids), output);
        foreach (var r in rows) Assert.That(r, Does.Contain(" ok"), r);
        string ilgpu = rows[^1];
        Assert.That(ilgpu, Does.Contain("ILGPU"));
        bool gpu = !ilgpu.Contains("ILGPU CPU accelerator", StringComparison.Ordinal);
        if (!gpu)
        {
            Assert.That(Cells(ilgpu)[^4..], Is.All.EqualTo("-"), "not timed on the CPU accelerator");
            Assert.That(output, Does.Contain($"{ids[^1]} not timed: ILGPU's CPU accelerator"));
        }
        foreach (var r in rows.Take(rows.Count - (gpu ? 0 : 1)))
        {
            var cells = Cells(r);
            Assert.That(cells, Has.Length.EqualTo(8), r);
            Assert.That(cells[^4..].Select(c => c == "-"), Is.All.False, $"timed: {r}");
            Assert.That(cells[^1], Does.EndWith("x"), r);
        }
        Assert.That(Cells(rows[0])[^1], Is.EqualTo("1.0x"), "v1 against itself");
        foreach (var id in ids) Assert.That(output, Does.Contain($"  {id}: kernels/MicroExpr.Kernels/"));
    }

    /// <summary>A table row's cells: the columns are separated by three spaces or more.</summary>
    static string[] Cells(string row) => System.Text.RegularExpressions.Regex.Split(row.Trim(), @"\s{3,}");

    [Test]
    public void VersionJsonIsOneObjectPerVersion()
    {
        var (code, output, err) = ConsoleCapture.Run(() => Entry.Run(["bench", "attention", "--version", "all", "--bh", "2", "--n", "9", "--d", "3", "--json", .. Quick]));
        Assert.That(code, Is.EqualTo(0), err);
        var objects = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.That(objects.Select(o => o.GetProperty("name").GetString()),
            Is.EqualTo(new[] { "attention.forward.v1", "attention.forward.v2", "attention.forward.v3", "attention.forward.v4" }));
        foreach (var o in objects)
        {
            Assert.That(o.GetProperty("passed").GetBoolean(), o.ToString());
            Assert.That(o.GetProperty("max_error").GetDouble(), Is.LessThan(1e-4));
            Assert.That(o.GetProperty("checked_elements").GetInt64(), Is.GreaterThan(0));
        }
        Assert.That(objects.Take(3).Select(o => o.GetProperty("median_ms").ValueKind), Is.All.EqualTo(JsonValueKind.Number));
    }

    /// <summary>The table path of layernorm (no --version) on the buffers it shares with --version: forward and backward rows.</summary>
    [Test]
    public void LayerNormTableTimesForwardAndBackward()
    {
        var (code, output, err) = ConsoleCapture.Run(() => Entry.Run(["bench", "layernorm", "--rows", "70", "--cols", "19", "--backward", "--json", .. Quick]));
        Assert.That(code, Is.EqualTo(0), err);
        var objects = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.That(objects.Select(o => o.GetProperty("name").GetString()), Is.EqualTo(new[] { "layernorm.forward", "layernorm.backward" }), output);
        foreach (var o in objects) Assert.That(o.GetProperty("median_ms").ValueKind, Is.EqualTo(JsonValueKind.Number), o.ToString());
    }

    [Test]
    public void OneVersionRunsAlone()
    {
        var (code, output, err) = ConsoleCapture.Run(() => Entry.Run(["bench", "attention", "--version", "v2", "--bh", "1", "--n", "5", "--d", "2", .. Quick]));
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(output, Does.Contain("  v2 ").And.Not.Contain("  v1 ").And.Not.Contain("  v3 "));
        Assert.That(output, Does.Contain("online softmax"));
    }

    [TestCase(new[] { "attention", "--version", "v9" }, "--version v9: expected v1, v2, v3, v4 or all")]
    [TestCase(new[] { "softmax", "--version", "v4" }, "--version v4: expected v1, v2, v3 or all")]
    [TestCase(new[] { "attention", "--version", "all", "--packed", "3", "--bh", "3" }, "drop --packed")]
    [TestCase(new[] { "layernorm", "--version", "v1", "--backward" }, "--version compares forward kernels; drop --backward")]
    public void ABadVersionIsAUsageError(string[] args, string message)
    {
        var (code, _, err) = ConsoleCapture.Run(() => Entry.Run(["bench", .. args, .. Quick]));
        Assert.That(code, Is.EqualTo(Entry.Usage));
        Assert.That(err.Trim(), Does.Contain(message));
        Assert.That(err.Trim().Split('\n'), Has.Length.EqualTo(1));
    }
}
