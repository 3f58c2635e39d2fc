using MicroExpr.Cli;
using MicroExpr.Tests.Cli;
using MicroExpr.Training;

namespace MicroExpr.Tests.Hardening;

/// <summary>
/// Issue 19's last two items: a folder option that cannot be a folder (a file, under a file, not writable) is named as
/// the option it is, before any work, by every command that writes one; and a surprising class set is reported before
/// training.
/// </summary>
[TestFixture, NonParallelizable]
public class OutFolderAndClassTests
{
    string root = "";

    [SetUp]
    public void SetUp()
    {
        root = Path.Combine(Path.GetTempPath(), "microexpr-outfolder-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(root);
        File.WriteAllText(Path.Combine(root, "a-file"), "x");
    }

    [TearDown]
    public void TearDown()
    {
        foreach (var d in Directory.EnumerateDirectories(root, "*", SearchOption.AllDirectories)) new DirectoryInfo(d).Attributes = FileAttributes.Normal;
        Directory.Delete(root, recursive: true);
    }

    static IEnumerable<TestCaseData> Commands()
    {
        // Each writes an --out folder; the data options are valid-looking or absent, so only --out can be the problem.
        yield return new TestCaseData((object)new[] { "demo", "--subjects", "2", "--clips-per-subject", "1" }).SetName("demo");
        yield return new TestCaseData((object)new[] { "synth", "--subjects", "2" }).SetName("synth");
        yield return new TestCaseData((object)new[] { "train", "--data", "no-such-cache" }).SetName("train");
        yield return new TestCaseData((object)new[] { "preprocess", "--dataset", "casme2", "--root", "no-such-root" }).SetName("preprocess");
    }

    [TestCaseSource(nameof(Commands))]
    public void AnOutThatIsAFileIsNamedAsOut(string[] command)
    {
        string file = Path.Combine(root, "a-file");
        var (code, _, err) = ConsoleCapture.Run(() => Entry.Run([.. command, "--out", file]));
        Assert.That(code, Is.EqualTo(Entry.Failed), err);
        Assert.That(err, Does.Contain($"--out {file} is a file"), err);
        Assert.That(err.Trim().Split('\n'), Has.Length.EqualTo(1), "one line");
        Assert.That(File.ReadAllText(file), Is.EqualTo("x"), "the file is left as it was");
    }

    [TestCaseSource(nameof(Commands))]
    public void AnOutUnderAFileIsNamedAsOut(string[] command)
    {
        string under = Path.Combine(root, "a-file", "run");
        var (code, _, err) = ConsoleCapture.Run(() => Entry.Run([.. command, "--out", under]));
        Assert.That(code, Is.EqualTo(Entry.Failed), err);
        Assert.That(err, Does.Contain($"--out {under}: cannot create or write this folder ({Path.Combine(root, "a-file")} is a file)"), err);
    }

    [TestCaseSource(nameof(Commands))]
    public void AnUnwritableOutIsNamedAsOut(string[] command)
    {
        // A folder without write permission; root ignores permissions, so there the test uses /proc, which nobody can
        // create folders in.
        string locked = Path.Combine(root, "locked");
        Directory.CreateDirectory(locked);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(locked, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        string target = Path.Combine(locked, "run");
        if (CanWrite(locked)) target = "/proc/microexpr-no-such-folder/run";
        var (code, _, err) = ConsoleCapture.Run(() => Entry.Run([.. command, "--out", target]));
        Assert.That(code, Is.EqualTo(Entry.Failed), err);
        Assert.That(err, Does.Contain($"--out {target}: cannot create or write this folder"), err);
    }

    static bool CanWrite(string dir)
    {
        try
        {
            string probe = Path.Combine(dir, "probe");
            File.WriteAllText(probe, "");
            File.Delete(probe);
            return true;
        }
        catch (UnauthorizedAccessException) { return false; }
        catch (IOException) { return false; }
    }

    static ClipSet Set(string[] classes, params (string Subject, int Label)[] clips) =>
        new(clips.Select((c, i) => new Clip($"{c.Subject}/c{i}", c.Subject, c.Label, new float[3 * 4 * 4])).ToList(), classes, 1, 3, 4, "toy");

    [Test]
    public void ASurprisingClassSetIsReported()
    {
        var set = Set(["negative", "positive", "surprise", "happy"],
            ("s1", 0), ("s2", 0), ("s3", 0), ("s1", 0),    // negative: 4 clips, 3 subjects: fine
            ("s1", 1), ("s2", 1),                          // positive: 2 clips
            ("s2", 2), ("s2", 2), ("s2", 2));              // surprise: one subject only; happy: none
        var w = ClassCheck.Warnings(set);
        Assert.That(w, Has.Count.EqualTo(3), string.Join("\n", w));
        Assert.That(w[0], Is.EqualTo("class 'positive' has only 2 clips"));
        Assert.That(w[1], Does.StartWith("class 'surprise' has clips of one subject only (s2)"));
        Assert.That(w[2], Does.StartWith("class 'happy' (label 3) has no clips"));
        Assert.That(ClassCheck.Describe(set), Is.EqualTo("negative 4 (3 subjects), positive 2 (2), surprise 3 (1), happy 0 (0)"));
    }

    [Test]
    public void AnOrdinaryClassSetIsNotReported()
    {
        var clips = Enumerable.Range(0, 12).Select(i => ($"s{i % 4}", i % 3)).ToArray();
        Assert.That(ClassCheck.Warnings(Set(["negative", "positive", "surprise"], clips)), Is.Empty);
    }

    [Test]
    public void TooManyClassesAreReported()
    {
        var names = Enumerable.Range(0, 12).Select(i => $"c{i}").ToArray();
        var clips = Enumerable.Range(0, 48).Select(i => ($"s{i / 12}", i % 12)).ToArray();
        var w = ClassCheck.Warnings(Set(names, clips));
        Assert.That(w, Is.EqualTo(new[] { "12 classes: MER data sets have 3 to 8; is the label column the emotion?" }));
    }
}
