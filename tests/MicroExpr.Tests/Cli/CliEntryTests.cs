using MicroExpr.Cli;
using MicroExpr.Data;

namespace MicroExpr.Tests.Cli;

/// <summary>
/// The process's view of the command line: exit codes, what goes to stdout and stderr, tab completion, and the one
/// line that replaces a stack trace (OpenCV's native library missing, or an unexpected exception).
/// </summary>
[NonParallelizable]
public class CliEntryTests
{
    private static (int Code, string Out, string Err) Run(string[] args, Func<IReadOnlyList<string>, int>? dispatch = null) =>
        ConsoleCapture.Run(() => dispatch is null ? Entry.Run(args) : Entry.Run(args, dispatch));

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>What .NET 10 said on a machine without libgtk-3-0 (paths shortened), wrapped as SyntheticDataset's Parallel.For threw it.</summary>
    private static Exception OpenCvLoadFailure(string missing = "libgtk-3.so.0") =>
        new AggregateException(new TypeInitializationException("OpenCvSharp.Internal.NativeMethods", new DllNotFoundException(
            "Unable to load shared library 'OpenCvSharpExtern' or one of its dependencies. In order to help diagnose loading problems, " +
            "consider using a tool like strace. If you're using glibc, consider setting the LD_DEBUG environment variable: \n" +
            "/opt/app/runtimes/linux-x64/native/OpenCvSharpExtern.so: cannot open shared object file: No such file or directory\n" +
            $"{missing}: cannot open shared object file: No such file or directory\n" +
            "/usr/share/dotnet/shared/Microsoft.NETCore.App/10.0.0/libOpenCvSharpExtern.so: cannot open shared object file: No such file or directory\n" +
            "/opt/app/runtimes/linux-x64/native/libOpenCvSharpExtern: cannot open shared object file: No such file or directory\n")));

    [TestCase("train", "--bogus")]
    [TestCase("train", "--epochs", "zero")]
    [TestCase("frobnicate")]
    [TestCase("synth", "--size=8")]
    [TestCase("demo", "stray")]
    [TestCase("train", "--data", "x", "--out", "y", "--model", "stt-tiny", "--con-weight", "0.5")]
    [TestCase("demo", "--model", "aie-tiny", "--con-weight", "0", "--shuffle-aus")]
    public void AUsageErrorIsOneLineOnStderrAndExitCode2(params string[] args)
    {
        var (code, output, err) = Run(args);
        Assert.That(code, Is.EqualTo(Entry.Usage));
        Assert.That(output, Is.Empty, "stdout stays clean");
        Assert.That(Lines(err), Has.Length.EqualTo(1), err);
        Assert.That(err, Does.StartWith("microexpr: "));
    }

    [Test]
    public void VersionIsOneLineOnStdoutWithTheAssemblyVersion()
    {
        var (code, output, err) = Run(["--version"]);
        Assert.That(code, Is.EqualTo(Entry.Ok));
        Assert.That(err, Is.Empty);
        Assert.That(Lines(output), Has.Length.EqualTo(1), output);
        var version = typeof(Entry).Assembly.GetName().Version!;
        Assert.That(output, Does.StartWith($"microexpr {version.Major}.{version.Minor}.{version.Build}"));
    }

    [Test]
    public void TabCompletionOffersVersionAtTheTop()
    {
        var (_, output, _) = Run(["[suggest]", "microexpr --v"]);
        Assert.That(Lines(output), Is.EqualTo(new[] { "--version" }));
    }

    [Test]
    public void HelpGoesToStdoutWithExitCode0()
    {
        var (code, output, err) = Run(["train", "--help"]);
        Assert.That(code, Is.EqualTo(Entry.Ok));
        Assert.That(err, Is.Empty);
        Assert.That(output, Does.Contain("microexpr train [options]").And.Contain("--epochs <N>").And.Contain("(default 30)"));
    }

    [Test]
    public void JsonOutputIsTheOnlyThingOnStdout()
    {
        var (code, output, err) = Run(["bench", "gemm", "--m", "8", "--n", "8", "--k", "8", "--warmup", "0", "--runs", "1", "--threads", "1", "--json"]);
        Assert.That(code, Is.EqualTo(Entry.Ok), err);
        var lines = Lines(output);
        Assert.That(lines, Has.Length.EqualTo(1), output);
        using var json = System.Text.Json.JsonDocument.Parse(lines[0]);
        Assert.That(json.RootElement.GetProperty("name").GetString(), Is.EqualTo("gemm"));
    }

    [Test]
    public void ConvBenchForcesTheAlgorithmAndRestoresTheEnginesChoice()
    {
        string[] shape = ["--batch", "2", "--cin", "8", "--cout", "8", "--size", "8", "--warmup", "0", "--runs", "1", "--threads", "1", "--json"];
        foreach (string algo in new[] { "winograd", "implicit", "im2col" })
        {
            var (code, output, err) = Run(["bench", "conv2d", "--algo", algo, .. shape]);
            Assert.That(code, Is.EqualTo(Entry.Ok), algo + ": " + err);
            Assert.That(Lines(output), Has.Length.EqualTo(1), output);
            Assert.That(MicroExpr.Kernels.ConvSimd.NoWinograd || MicroExpr.Kernels.ConvSimd.NoImplicit, Is.False, algo + ": the hooks were left set");
        }
        var (bad, _, message) = Run(["bench", "conv2d", "--algo", "winograd", "--kernel", "7", "--stride", "2", "--pad", "3", "--cin", "3", "--size", "16",
            "--runs", "1", "--json"]);
        Assert.That(bad, Is.EqualTo(Entry.Usage));
        Assert.That(message, Does.Contain("--algo winograd: needs").And.Contain("k=1x7x7"));
        var (unknown, _, what) = Run(["bench", "conv3d", "--algo", "fft", .. shape]);
        Assert.That(unknown, Is.EqualTo(Entry.Usage));
        Assert.That(what, Does.Contain("--algo fft: expected auto, winograd, implicit or im2col"));
    }

    [TestCase("microexpr tr", "train")]
    [TestCase("microexpr ", "preprocess")]
    [TestCase("microexpr train --ep", "--epochs")]
    [TestCase("microexpr train --epochs 3 --", "--batch")]
    [TestCase("./microexpr bench ", "gemm")]
    [TestCase("microexpr bench gemm --tr", "--trans-a")]
    [TestCase("microexpr bench train-step --pro", "--profile")]
    public void TabCompletionAnswersTheSuggestDirective(string line, string expected)
    {
        var (code, output, err) = Run([$"[suggest:{line.Length}]", line]);
        Assert.That(code, Is.EqualTo(Entry.Ok), err);
        Assert.That(Lines(output), Does.Contain(expected), output);
        Assert.That(err, Is.Empty);
    }

    [Test]
    public void TabCompletionOffersOnlyMatchingWords()
    {
        var (_, output, _) = Run(["[suggest]", "microexpr train --ep"]);
        Assert.That(Lines(output), Is.EqualTo(new[] { "--epochs" }));
        var (_, given, _) = Run(["[suggest]", "microexpr train --epochs 3 --e"]);
        Assert.That(Lines(given), Does.Not.Contain("--epochs"), "an option already given is not offered again");
    }

    [Test]
    public void OpenCvLoadFailureNamesTheLibraryAndThePackage()
    {
        string? line = OpenCvCheck.Describe(OpenCvLoadFailure());
        Assert.That(line, Is.Not.Null);
        Assert.That(line, Does.Contain("libgtk-3.so.0").And.Contain("sudo apt-get install libgtk-3-0"));
        Assert.That(line, Does.Not.Contain("\n"));
        Assert.That(line, Does.Not.Contain("OpenCvSharpExtern.so:"), "the names .NET tried for the library itself are not the cause");
    }

    [Test]
    public void OpenCvLoadFailureOfAnUnlistedLibraryStillNamesIt()
    {
        string? line = OpenCvCheck.Describe(OpenCvLoadFailure("libfoo.so.7"));
        Assert.That(line, Does.Contain("libfoo.so.7").And.Contain("apt-file search libfoo.so.7"));
    }

    [Test]
    public void OtherExceptionsAreNotOpenCvFailures()
    {
        Assert.That(OpenCvCheck.Describe(new InvalidOperationException("x")), Is.Null);
        Assert.That(OpenCvCheck.Describe(new DllNotFoundException("Unable to load shared library 'libcuda.so'")), Is.Null);
        Assert.That(OpenCvCheck.Describe(new TypeInitializationException("MicroExpr.Something", null)), Is.Null);
    }

    [Test]
    public void AnyCommandThatHitsTheOpenCvFailureEndsWithOneLineAndExitCode1()
    {
        var (code, output, err) = Run(["synth", "--out", "x"], _ => throw OpenCvLoadFailure());
        Assert.That(code, Is.EqualTo(Entry.Failed));
        Assert.That(output, Is.Empty);
        Assert.That(Lines(err), Has.Length.EqualTo(1), err);
        Assert.That(err, Does.Contain("libgtk-3.so.0").And.Contain("sudo apt-get install libgtk-3-0").And.Not.Contain(" at "));
    }

    [Test]
    public void AnUnexpectedExceptionIsOneLineWithTheDebugHint()
    {
        string? old = Environment.GetEnvironmentVariable(Entry.DebugVariable);
        try
        {
            Environment.SetEnvironmentVariable(Entry.DebugVariable, null);
            var (code, _, err) = Run(["train"], _ => throw new NullReferenceException("something was null"));
            Assert.That(code, Is.EqualTo(Entry.Failed));
            Assert.That(Lines(err), Has.Length.EqualTo(1), err);
            Assert.That(err, Does.Contain("NullReferenceException: something was null").And.Contain("MICROEXPR_DEBUG=1"));

            Environment.SetEnvironmentVariable(Entry.DebugVariable, "1");
            var (_, _, trace) = Run(["train"], _ => throw new NullReferenceException("something was null"));
            Assert.That(Lines(trace).Length, Is.GreaterThan(1));
            Assert.That(trace, Does.Contain(" at "), "MICROEXPR_DEBUG=1 prints the stack trace");
        }
        finally
        {
            Environment.SetEnvironmentVariable(Entry.DebugVariable, old);
        }
    }
}
