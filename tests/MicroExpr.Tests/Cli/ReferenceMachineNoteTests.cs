using MicroExpr.Bench;

namespace MicroExpr.Tests.Cli;

/// <summary>
/// <see cref="ReferenceFigures.OtherCpuNote(string?)"/>: the bench's warning that the ceilings and libtorch figures are the
/// reference machine's (AMD Zen 5, family 26), from /proc/cpuinfo's text.
/// </summary>
public class ReferenceMachineNoteTests
{
    private static string CpuInfo(string vendor, int family, int model, string name) =>
        $"processor\t: 0\nvendor_id\t: {vendor}\ncpu family\t: {family}\nmodel\t\t: {model}\nmodel name\t: {name}\nstepping\t: 1\n\n" +
        $"processor\t: 1\nvendor_id\t: {vendor}\ncpu family\t: {family}\n";

    [Test]
    public void TheReferenceCpuGetsNoNote() =>
        Assert.That(ReferenceFigures.OtherCpuNote(CpuInfo("AuthenticAMD", 26, 2, "AMD EPYC 9B45")), Is.Null);

    [TestCase("AuthenticAMD", 25, 17, "AMD EPYC", "0x19")]
    [TestCase("GenuineIntel", 6, 143, "Intel(R) Xeon(R) Platinum 8480C", "0x06")]
    public void AnotherCpuIsNamedWithItsFamily(string vendor, int family, int model, string name, string hex)
    {
        string? note = ReferenceFigures.OtherCpuNote(CpuInfo(vendor, family, model, name));
        Assert.That(note, Does.Contain(name).And.Contain(vendor).And.Contain(hex).And.Contain("not the reference machine's").And.Contain("--compare"));
    }

    [TestCase(null)]
    [TestCase("")]
    [TestCase("Processor\t: ARMv8 Processor rev 1\nBogoMIPS\t: 50.00\n")]
    [TestCase("vendor_id\t: AuthenticAMD\ncpu family\t: twenty-five\n")]
    public void TextThatDoesNotSayGivesNoNote(string? text) => Assert.That(ReferenceFigures.OtherCpuNote(text), Is.Null);
}
