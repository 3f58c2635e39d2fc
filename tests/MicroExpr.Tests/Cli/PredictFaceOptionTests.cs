using MicroExpr.Cli.Args;
using MicroExpr.Cli.Commands;
using MicroExpr.Data;

namespace MicroExpr.Tests.Cli;

/// <summary><c>predict --face</c>: an override of the run's crop, <c>--no-face-detect</c> its alias for none.</summary>
public class PredictFaceOptionTests
{
    private static FaceMode? Face(params string[] args) => PredictCommand.Face(ArgParser.Parse(PredictCommand.Spec, ["--model", "run", .. args]));

    [Test]
    public void NoOptionKeepsTheRunsCrop() => Assert.That(Face(), Is.Null);

    [TestCase("haar", FaceMode.Haar)]
    [TestCase("landmarks", FaceMode.Landmarks)]
    [TestCase("fdp", FaceMode.Fdp)]
    [TestCase("none", FaceMode.None)]
    [TestCase("LANDMARKS", FaceMode.Landmarks)]
    public void FaceNamesAMode(string value, FaceMode mode) => Assert.That(Face("--face", value), Is.EqualTo(mode));

    [Test]
    public void NoFaceDetectIsAnAliasOfNone()
    {
        Assert.That(Face("--no-face-detect"), Is.EqualTo(FaceMode.None));
        Assert.That(Face("--no-face-detect", "--face", "none"), Is.EqualTo(FaceMode.None));
        Assert.That(Assert.Throws<CliUsageException>(() => Face("--no-face-detect", "--face", "haar"))!.Message, Does.Contain("contradicts --face haar"));
        Assert.That(Assert.Throws<CliUsageException>(() => Face("--face", "dlib"))!.Message, Does.Contain("expects haar, landmarks, fdp or none, got 'dlib'"));
    }
}
