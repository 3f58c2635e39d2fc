using MicroExpr.Cli;
using MicroExpr.Data;
using MicroExpr.Data.Annotations;
using MicroExpr.Data.Cache;
using MicroExpr.Data.Frames;
using static MicroExpr.Tests.Data.DataFixtures;

namespace MicroExpr.Tests.Data;

public class CacheTests
{
    static readonly PreprocessSettings Small = new(Frames: 4, Size: 32, FaceDetect: false);

    /// <summary>A manifest of four frame folders (one with a corrupt frame) and one motion image.</summary>
    static string Manifest(string root)
    {
        for (int i = 0; i < 3; i++) WriteClip(Path.Combine(root, $"clip {i}"), 8, seed: i + 1);
        WriteClip(Path.Combine(root, "broken"), 8);
        File.WriteAllBytes(Path.Combine(root, "broken", "img3.png"), [1, 2, 3, 4, 5]);
        using (var img = Texture(40, 40, 9)) OpenCvSharp.Cv2.ImWrite(Path.Combine(root, "motion.png"), img);
        string csv = Path.Combine(root, "manifest.csv");
        File.WriteAllLines(csv,
        [
            "subject,label,path,onset,apex,offset",
            "a,negative,clip 0,1,4,8",
            "b,positive,clip 1,,,",
            "c,surprise,\"clip 2\",2,5,7",
            "d,negative,broken,1,4,8",
            "e,positive,motion.png,,,",
        ]);
        return csv;
    }

    [Test]
    public void FramesReplacedAtTheSamePathAreRecomputed()
    {
        string root = TempDir("cache-replaced");
        var list = ManifestReader.Read(Manifest(root));
        string outDir = Path.Combine(root, "out");
        Preprocessor.Run(list, Small, outDir, workers: 1);
        var before = PreprocessedCache.Open(outDir);
        var oldTensor = before.Load(before.Clips[0]);
        // A new recording under the same folder name (as a regenerated synthetic set would write).
        WriteClip(Path.Combine(root, "clip 0"), 8, seed: 77);
        foreach (var f in Directory.GetFiles(Path.Combine(root, "clip 0"))) File.SetLastWriteTimeUtc(f, DateTime.UtcNow.AddMinutes(1));
        var again = Preprocessor.Run(list, Small, outDir, workers: 1);
        Assert.That(again.Computed, Is.EqualTo(1), "only the replaced clip is computed again");
        var after = PreprocessedCache.Open(outDir);
        Assert.That(after.Load(after.Clips[0]), Is.Not.EqualTo(oldTensor));
    }

    [Test]
    public void ProcessesReusesRecomputesAndListsFailures()
    {
        string root = TempDir("cache");
        var list = ManifestReader.Read(Manifest(root));
        string outDir = Path.Combine(root, "out");
        var first = Preprocessor.Run(list, Small, outDir, workers: 2);
        Assert.That((first.Computed, first.Reused), Is.EqualTo((4, 0)));
        Assert.That(first.Failed.Single().Reason, Does.Contain("cannot read image").And.Contain("img3.png"));
        Assert.That(first.Failed.Single().Row, Is.EqualTo(5));

        var cache = PreprocessedCache.Open(outDir);
        Assert.That(cache.ClassNames, Is.EqualTo(new[] { "negative", "positive", "surprise" }));
        Assert.That(cache.Clips.Select(c => c.Subject), Is.EqualTo(new[] { "a", "b", "c", "e" }));
        Assert.That(cache.SettingsDescription, Does.Contain("T 4").And.Contain("32x32"));
        Assert.That(cache.Skipped.Single().Reason, Does.Contain("img3.png"));
        var clip = cache.Clips[0];
        Assert.That((clip[CacheInputs.Motion].Frames, clip[CacheInputs.Motion].Channels, clip[CacheInputs.Motion].Height, clip[CacheInputs.Motion].Width), Is.EqualTo((4, 3, 32, 32)));
        var x = cache.Load(clip);
        Assert.That(x, Has.Length.EqualTo(4 * 3 * 32 * 32).And.All.InRange(-1f, 1f));
        var image = cache.Clips[3];
        Assert.That((image[CacheInputs.Motion].Frames, image[CacheInputs.Motion].Channels), Is.EqualTo((1, 3)), "a motion image is one frame");
        Assert.That(cache.Load(image), Has.All.InRange(0f, 1f));

        var stamps = cache.Clips.ToDictionary(c => c[CacheInputs.Motion].File, c => File.GetLastWriteTimeUtc(c[CacheInputs.Motion].File));
        var again = Preprocessor.Run(list, Small, outDir, workers: 2);
        Assert.That((again.Computed, again.Reused), Is.EqualTo((0, 4)), "same settings: nothing recomputed");
        Assert.That(stamps.All(s => File.GetLastWriteTimeUtc(s.Key) == s.Value), "files untouched");

        var changed = Preprocessor.Run(list, Small with { Frames = 3 }, outDir, workers: 2);
        Assert.That((changed.Computed, changed.Reused), Is.EqualTo((4, 0)), "a changed setting recomputes");
        var recache = PreprocessedCache.Open(outDir);
        Assert.That(recache.Clips[0][CacheInputs.Motion].Frames, Is.EqualTo(3));
        Assert.That(recache.Clips.Select(c => c[CacheInputs.Motion].File).Intersect(stamps.Keys), Is.Empty, "new files, old ones never reused");
        Directory.Delete(root, true);
    }

    [Test]
    public void AnInterruptedRunResumesWithoutLosingFinishedClips()
    {
        string root = TempDir("resume");
        var list = ManifestReader.Read(Manifest(root));
        string outDir = Path.Combine(root, "out");
        using var cts = new CancellationTokenSource();
        Assert.Catch<OperationCanceledException>(() =>
            Preprocessor.Run(list, Small, outDir, workers: 1, progress: (done, _) => { if (done == 2) cts.Cancel(); }, ct: cts.Token));
        var partial = PreprocessedCache.Open(outDir);
        Assert.That(partial.Clips, Has.Count.EqualTo(2), "the index lists the clips finished before the interruption");
        string leftover = Path.Combine(outDir, Preprocessor.ClipFolder, "x.mxt.123.abc" + TensorFile.TempSuffix);
        File.WriteAllText(leftover, "half a tensor");

        var resumed = Preprocessor.Run(list, Small, outDir, workers: 1);
        Assert.That((resumed.Computed, resumed.Reused), Is.EqualTo((2, 2)));
        Assert.That(File.Exists(leftover), Is.False, "temporary files of a killed run are removed");
        Assert.That(PreprocessedCache.Open(outDir).Clips, Has.Count.EqualTo(4));

        // A killed run that never wrote its index: the finished files are found again.
        File.Delete(Path.Combine(outDir, "index.json"));
        var rebuilt = Preprocessor.Run(list, Small, outDir, workers: 1);
        Assert.That((rebuilt.Computed, rebuilt.Reused), Is.EqualTo((0, 4)));
        Directory.Delete(root, true);
    }

    [Test]
    public void OpenNamesTheFileWhenTheIndexIsMissingOrCorrupt()
    {
        string dir = TempDir("open");
        var missing = Assert.Throws<FileNotFoundException>(() => PreprocessedCache.Open(dir))!;
        Assert.That(missing.Message, Does.Contain(Path.Combine(dir, "index.json")).And.Contain("preprocess"));
        File.WriteAllText(Path.Combine(dir, "index.json"), "{ not json");
        var corrupt = Assert.Throws<InvalidDataException>(() => PreprocessedCache.Open(dir))!;
        Assert.That(corrupt.Message, Does.Contain("index.json").And.Contain("corrupt"));
        Directory.Delete(dir, true);
    }

    [Test]
    public void FaceDetectionSaysWhatIsMissing()
    {
        string root = TempDir("face");
        var list = ManifestReader.Read(Manifest(root));
        var noCascade = Assert.Throws<FileNotFoundException>(() =>
            Preprocessor.Run(list, Small with { FaceDetect = true, CascadePath = Path.Combine(root, "none.xml") }, Path.Combine(root, "o1")))!;
        Assert.That(noCascade.Message, Does.Contain("none.xml").And.Contain("opencv-data").And.Contain("--no-face-detect"));
        Assume.That(File.Exists(PreprocessSettings.DefaultCascade), "Debian's opencv-data is not installed");
        var result = Preprocessor.Run(list, Small with { FaceDetect = true }, Path.Combine(root, "o2"));
        Assert.That(result.Computed, Is.EqualTo(1), "only the motion image: a texture has no face");
        Assert.That(result.Failed.Where(f => f.Reason.Contains("no face found")).Count(), Is.EqualTo(3));
        Directory.Delete(root, true);
    }

    [Test]
    public void CliPreprocessWritesACacheAndASummary()
    {
        string root = TempDir("cli");
        string csv = Manifest(root);
        string outDir = Path.Combine(root, "out dir");
        var (stdout, stderr) = (Console.Out, Console.Error);
        var o = new StringWriter();
        var e = new StringWriter();
        try
        {
            Console.SetOut(o);
            Console.SetError(e);
            int rc = Entry.Dispatch(["preprocess", "--dataset", "manifest", "--root", csv, "--out", outDir, "--frames", "2", "--size", "24", "--no-face-detect", "--flow", "tvl1", "--encoding", "hsv"]);
            Assert.That(rc, Is.EqualTo(Entry.Failed), "the broken clip makes the run fail; the others are cached");
            Assert.That(e.ToString(), Does.Contain("1 of 5 clips failed"));
            Assert.That(o.ToString(), Does.Contain("manifest: 4 clips").And.Contain("computed 4").And.Contain("img3.png"));
            Assert.That(PreprocessedCache.Open(outDir).SettingsDescription, Does.Contain("tvl1").And.Contain("hsv"));
            Assert.That(Entry.Dispatch(["preprocess", "--dataset", "casme2", "--root", Path.Combine(root, "nowhere"), "--out", outDir]), Is.EqualTo(Entry.Failed));
            Assert.That(e.ToString(), Does.Contain("nowhere"));
            Assert.Throws<MicroExpr.Cli.Args.CliUsageException>(() => Entry.Dispatch(["preprocess", "--dataset", "casme9", "--root", root, "--out", outDir]));
            Assert.Throws<MicroExpr.Cli.Args.CliUsageException>(() => Entry.Dispatch(["preprocess", "--dataset", "casme2", "--out", outDir]));
        }
        finally
        {
            Console.SetOut(stdout);
            Console.SetError(stderr);
        }
        Directory.Delete(root, true);
    }

    [Test]
    public void VideoClipsAreReadThroughOpenCv()
    {
        string root = TempDir("video");
        string path = Path.Combine(root, "clip.avi");
        using (var tex = Texture(48, 48, 2))
        using (var vw = new OpenCvSharp.VideoWriter(path, OpenCvSharp.FourCC.MJPG, 25, new OpenCvSharp.Size(48, 48)))
        {
            Assert.That(vw.IsOpened(), "OpenCV can write MJPG avi");
            for (int i = 0; i < 10; i++)
            {
                using var f = Shift(tex, 0.2 * i, 0);
                using var bgr = new OpenCvSharp.Mat();
                OpenCvSharp.Cv2.CvtColor(f, bgr, OpenCvSharp.ColorConversionCodes.GRAY2BGR);
                vw.Write(bgr);
            }
        }
        var clip = new ClipSource("v", "s", "c", 0, "x", path, SourceKind.Video, 3, 6, 8, path, 0);
        using var loaded = ClipLoader.Load(clip);
        Assert.That(loaded.Frames, Has.Count.EqualTo(6));
        Assert.That(loaded.Apex, Is.EqualTo(3));
        Assert.Throws<InvalidDataException>(() => ClipLoader.Load(clip with { Offset = 40 }));
        Directory.Delete(root, true);
    }
}
