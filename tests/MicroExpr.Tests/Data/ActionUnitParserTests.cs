using MicroExpr.Data.ActionUnitCodes;

namespace MicroExpr.Tests.Data;

public class ActionUnitParserTests
{
    // CASME II, SAMM and CAS(ME)³ forms → canonical text.
    [TestCase("4", "4")]
    [TestCase("4+7", "4+7")]
    [TestCase("7+4", "4+7")]
    [TestCase("L12", "L12")]
    [TestCase("4+L10", "4+L10")]
    [TestCase("R1+R2", "R1+R2")]
    [TestCase("L2+26+38", "L2+26+38")]
    [TestCase("R14A", "R14A")]
    [TestCase("4C+7B", "4C+7B")]
    [TestCase(" 4 + 7 ", "4+7")]
    [TestCase("AU4+AU12", "4+12")]
    [TestCase("l12", "L12")]
    [TestCase("12, 14", "12+14")]
    [TestCase("4+4", "4")]
    [TestCase("L12+R12", "L12+R12")]
    public void ParsesEveryDistributedForm(string raw, string canonical)
    {
        var set = ActionUnitParser.Parse(raw);
        Assert.That(set.Canonical, Is.EqualTo(canonical));
        Assert.That(set.Raw, Is.EqualTo(raw), "the raw string is kept");
    }

    [Test]
    public void KeepsSideAndIntensity()
    {
        var set = ActionUnitParser.Parse("R14A+4+L10");
        Assert.That(set.Units, Is.EqualTo(new[]
        {
            new ActionUnit(4, AuSide.Both), new ActionUnit(10, AuSide.Left), new ActionUnit(14, AuSide.Right, 'A'),
        }));
        Assert.That(set.Numbers, Is.EqualTo(new[] { 4, 10, 14 }));
        Assert.That(Facs.Describe(set.Units[1]), Is.EqualTo("left upper lip raiser"));
    }

    [TestCase("")]
    [TestCase("  ")]
    [TestCase("-")]
    [TestCase("/")]
    [TestCase(null)]
    public void NotCodedIsTheEmptySet(string? raw) => Assert.That(ActionUnitParser.Parse(raw).IsEmpty, Is.True);

    [TestCase("4++7", "empty unit")]
    [TestCase("+4", "empty unit")]
    [TestCase("X4", "'X4' is not an action unit")]
    [TestCase("12F", "'12F' is not an action unit")]
    [TestCase("123", "'123' is not an action unit")]
    [TestCase("0", "'0' is not an action unit")]
    [TestCase("L", "'L' is not an action unit")]
    [TestCase("4AB", "'4AB' is not an action unit")]
    [TestCase("happy", "'happy' is not an action unit")]
    public void BadCodesAreRefusedNamingThePart(string raw, string message)
    {
        Assert.That(ActionUnitParser.TryParse(raw, out _, out var error), Is.False);
        Assert.That(error, Does.Contain(message));
        Assert.That(Assert.Throws<FormatException>(() => ActionUnitParser.Parse(raw))!.Message, Does.Contain(message));
    }

    [Test]
    public void FrequencyTableCountsClipsPerAuWithFacsNames()
    {
        var table = ActionUnitParser.FrequencyTable(new[] { "4+7", "L4", "12", "", "6+12" }.Select(ActionUnitParser.Parse));
        Assert.That(table, Does.StartWith("action units: 4 of 5 clips coded, 4 distinct AUs"));
        var lines = table.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(l => l.Trim()).ToList();
        Assert.That(lines[0], Does.Match(@"^AU4\s+2\s+brow lowerer$"));
        Assert.That(lines[1], Does.Match(@"^AU12\s+2\s+lip corner puller$"));
        Assert.That(lines, Has.Count.EqualTo(4));
    }

    [Test]
    public void EverySyntheticCodingParsesAndEveryAuItUsesHasAFacsName()
    {
        var all = MicroExpr.Data.Synthetic.ActionUnits.Codings
            .SelectMany(e => e.Value.Select(core => (e.Key, core)))
            .SelectMany(x => Enumerable.Range(0, 64).Select(k => MicroExpr.Data.Synthetic.ActionUnits.Compose(x.core, x.Key, MicroExpr.Data.Synthetic.SynthRandom.Derive(7, "t", k))))
            .Distinct().ToList();
        Assert.That(all, Has.Count.GreaterThan(MicroExpr.Data.Synthetic.ActionUnits.Codings.Values.Sum(c => c.Count)), "extras add codings");
        foreach (var coding in all)
        {
            var set = ActionUnitParser.Parse(coding);
            Assert.That(set.Canonical, Is.EqualTo(coding));
            foreach (int n in set.Numbers) Assert.That(Facs.Names.ContainsKey(n), Is.True, $"AU{n} of '{coding}'");
        }
    }
}
