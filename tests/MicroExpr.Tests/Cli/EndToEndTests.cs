using MicroExpr.Cli;

namespace MicroExpr.Tests.Cli;

/// <summary>The user's path through the command line on a tiny synthetic set: demo, then evaluate and predict on its run.</summary>
[NonParallelizable]
public class EndToEndTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => ConsoleCapture.Run(() => Entry.Run(args));

    [Test]
    public void DemoThenEvaluateThenPredict()
    {
        string dir = Directory.CreateTempSubdirectory("demo").FullName;
        try
        {
            var (code, output, err) = Run("demo", "--out", dir, "--subjects", "3", "--clips-per-subject", "3", "--epochs", "2", "--frames", "2",
                "--size", "16", "--json");
            Assert.That(code, Is.EqualTo(0), err);
            Assert.That(output.TrimEnd().Split('\n'), Has.Length.EqualTo(1), "with --json, stdout holds only the JSON line");
            string last = output.TrimEnd().Split('\n')[^1];
            using var json = System.Text.Json.JsonDocument.Parse(last);
            foreach (var key in new[] { "uf1", "uar", "accuracy", "seconds" })
                Assert.That(json.RootElement.TryGetProperty(key, out _), key);
            Assert.That(json.RootElement.GetProperty("clips").GetInt32(), Is.EqualTo(9));
            string run = Path.Combine(dir, "run");
            Assert.That(MicroExpr.Training.ClipSet.FromCache(Path.Combine(dir, "cache")).HorizontalFlip, Is.EqualTo(MicroExpr.Data.Motion.FlowFlip.NegateU), "u, v, strain: a flip negates u");
            foreach (var f in new[] { "metrics.json", "report.md", "confusion.png", "curves.png", "final/model.safetensors" })
                Assert.That(File.Exists(Path.Combine(run, f)), f);

            var (evalCode, evalOut, evalErr) = Run("evaluate", "--run", run, "--json");
            Assert.That(evalCode, Is.EqualTo(0), evalErr);
            Assert.That(evalOut, Does.Contain("\"uf1\""));
            Assert.That(evalOut.TrimEnd().Split('\n'), Has.Length.EqualTo(1), "with --json, stdout holds only the JSON line");
            Assert.That(evalErr, Does.Contain("UF1"), "the summary for people goes to stderr");

            string clip = Directory.GetDirectories(Path.Combine(dir, "synthetic", "CASME2_RAW_selected", "sub01"))[0];
            var (pCode, pOut, pErr) = Run("predict", "--model", run, "--frames", clip, "--json");
            Assert.That(pCode, Is.EqualTo(0), pErr);
            using var p = System.Text.Json.JsonDocument.Parse(pOut.Trim());
            double sum = p.RootElement.GetProperty("probabilities").EnumerateObject().Sum(x => x.Value.GetDouble());
            Assert.That(sum, Is.EqualTo(1.0).Within(1e-3));

            var (badCode, _, badErr) = Run("predict", "--model", run, "--frames", Path.Combine(dir, "nope"));
            Assert.That(badCode, Is.EqualTo(1));
            Assert.That(badErr, Does.Contain("nope").And.Contain("not found"));

            // Issue 19 item 7: a large video is decoded from --onset to --offset only, downscaled as read.
            string video = Path.Combine(dir, "big.avi");
            var frameFiles = MicroExpr.Data.Frames.FrameFolder.List(clip);
            using (var vw = new OpenCvSharp.VideoWriter(video, OpenCvSharp.FourCC.MJPG, 25, new OpenCvSharp.Size(2400, 1600)))
            {
                Assert.That(vw.IsOpened());
                foreach (var f in frameFiles)
                {
                    using var img = OpenCvSharp.Cv2.ImRead(f.Path);
                    using var big = img.Resize(new OpenCvSharp.Size(2400, 1600));
                    vw.Write(big);
                }
            }
            var (vCode, vOut, vErr) = Run("predict", "--model", run, "--video", video, "--onset", "2", "--offset", "8", "--json");
            Assert.That(vCode, Is.EqualTo(0), vErr);
            Assert.That(vOut, Does.Contain("probabilities"));
            var (farCode, _, farErr) = Run("predict", "--model", run, "--video", video, "--onset", "500");
            Assert.That(farCode, Is.EqualTo(2));
            Assert.That(farErr, Does.Contain($"below the video's {frameFiles.Count} frames"));

            // Issue 19 item 8: damaged weights never print a probability.
            string nanRun = Path.Combine(dir, "nan-run");
            Directory.CreateDirectory(Path.Combine(nanRun, "final"));
            File.Copy(Path.Combine(run, "options.json"), Path.Combine(nanRun, "options.json"));
            var (arrays, meta) = MicroExpr.Models.Safetensors.Read(Path.Combine(run, "final", "model.safetensors"));
            Array.Fill(arrays[^1].Data, float.NaN);
            MicroExpr.Models.Safetensors.Write(Path.Combine(nanRun, "final", "model.safetensors"), arrays, meta);
            var (nanCode, nanOut, nanErr) = Run("predict", "--model", nanRun, "--frames", clip);
            Assert.That(nanCode, Is.EqualTo(1));
            Assert.That(nanErr, Does.Contain("model.safetensors").And.Contain("not finite"));
            Assert.That(nanOut, Does.Not.Contain("predicted"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Test]
    public void TrainRefusesAMissingCacheByName()
    {
        var (code, _, err) = Run("train", "--data", "/nonexistent/cache", "--out", Path.Combine(Path.GetTempPath(), "never"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.Contain("/nonexistent/cache").And.Contain("index.json"));
    }

    [Test]
    public void BenchTrainStepRunsTheBenchModel()
    {
        var (code, output, err) = Run("bench", "train-step", "--batch", "1", "--warmup", "0", "--runs", "1", "--json");
        Assert.That(code, Is.EqualTo(0), err);
        using var json = System.Text.Json.JsonDocument.Parse(output.Trim());
        foreach (var key in new[] { "name", "median_ms", "clips_per_s", "peak_rss_mb" })
            Assert.That(json.RootElement.TryGetProperty(key, out _), key);
    }

    [Test]
    public void BenchAttentionTimesThePackedQkvLayout()
    {
        var (code, output, err) = Run("bench", "attention", "--bh", "6", "--n", "9", "--d", "20", "--packed", "3", "--backward",
            "--runs", "1", "--warmup", "0", "--json");
        Assert.That(code, Is.EqualTo(0), err);
        var names = output.Trim().Split('\n').Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("name").GetString()).ToArray();
        Assert.That(names, Is.EqualTo(new[] { "attention.forward.packed", "attention.backward.packed" }));

        var (bad, _, badErr) = Run("bench", "attention", "--bh", "6", "--packed", "4");
        Assert.That(bad, Is.Not.Zero);
        Assert.That(badErr, Does.Contain("--packed 4").And.Contain("BH = 6"));
    }

    [Test]
    public void BenchProfileOfAnotherPresetPrintsATableThatNamesItsClock()
    {
        var (code, output, err) = Run("bench", "inference", "--model", "slstt-tiny", "--device", "cpu", "--batch", "1", "--warmup", "0",
            "--runs", "1", "--profile");
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(output, Does.Contain("slstt-tiny").And.Contain("cpu, host clocks:").And.Match("\\ngemm +\\d+ "));
        Assert.That(output, Does.Not.Contain("libtorch"), "the peer's figures are the bench model's");

        var (bad, _, badErr) = Run("bench", "inference", "--model", "slstt-huge");
        Assert.That(bad, Is.Not.Zero);
        Assert.That(badErr, Does.Contain("slstt-huge"));
    }
}
