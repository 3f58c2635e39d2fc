using System.Diagnostics;
using System.Text.Json.Nodes;
using MicroExpr.Cli;
using MicroExpr.Data;
using MicroExpr.Data.Annotations;
using MicroExpr.Data.Cache;
using MicroExpr.Data.Frames;
using static MicroExpr.Tests.Data.DataFixtures;

namespace MicroExpr.Tests.Hardening;

/// <summary>Issue 19 items 1, 3, 6, 9, 10, 11 and the data side of 12.</summary>
public class DataHardeningTests
{
    static readonly PreprocessSettings Small = new(Frames: 3, Size: 24, FaceDetect: false);
    string root = "";

    [SetUp]
    public void SetUp() => root = TempDir("hardening");

    [TearDown]
    public void TearDown() => Directory.Delete(root, true);

    /// <summary>A manifest of <paramref name="clips"/> frame folders, subjects a, b, c, …; labels negative/positive/surprise.</summary>
    string Manifest(int clips)
    {
        string[] labels = ["negative", "positive", "surprise"];
        var lines = new List<string> { "subject,label,path" };
        for (int i = 0; i < clips; i++)
        {
            WriteClip(Path.Combine(root, "data", $"clip{i}"), 5, seed: i + 1, size: 32);
            lines.Add($"s{i % 3},{labels[i % 3]},clip{i}");
        }
        string csv = Path.Combine(root, "data", "manifest.csv");
        File.WriteAllLines(csv, lines);
        return csv;
    }

    // ---- item 1: concurrent writers ----

    [Test]
    public void ASecondWriterIsRefusedWhileTheFirstRunsAndTheIndexListsEveryClip()
    {
        var list = ManifestReader.Read(Manifest(6));
        string outDir = Path.Combine(root, "out");
        Exception? second = null;
        PreprocessResult? secondResult = null;
        int calls = 0;
        // The second run starts while the first is between clips (its temporary files and index are live).
        var first = Preprocessor.Run(list, Small, outDir, workers: 1, progress: (done, _) =>
        {
            if (Interlocked.Increment(ref calls) != 2) return;
            var t = new Thread(() =>
            {
                try { secondResult = Preprocessor.Run(list, Small, outDir, workers: 1); }
                catch (Exception e) { second = e; }
            });
            t.Start();
            t.Join();
        });
        Assert.That(secondResult, Is.Null, "the second writer did not run beside the first");
        Assert.That(second, Is.InstanceOf<IOException>());
        Assert.That(second!.Message, Does.Contain(Path.GetFullPath(outDir)).And.Contain($"pid {Environment.ProcessId}").And.Contain("--out"));
        Assert.That(first.Computed, Is.EqualTo(6));
        var cache = PreprocessedCache.Open(outDir);
        Assert.That(cache.Clips, Has.Count.EqualTo(6));
        var onDisk = Directory.GetFiles(Path.Combine(outDir, Preprocessor.ClipFolder), "*" + Preprocessor.Extension).Select(Path.GetFullPath).Order();
        Assert.That(cache.Clips.Select(c => c[CacheInputs.Motion].File).Order(), Is.EqualTo(onDisk), "every clip on disk is in the index");
        foreach (var c in cache.Clips) Assert.That(cache.Load(c), Is.Not.Empty);
        // After the first finished, the lock is free again.
        Assert.That(Preprocessor.Run(list, Small, outDir, workers: 1).Reused, Is.EqualTo(6));
    }

    [Test]
    public void ALockHeldByAnotherProcessRefusesAndADeadHoldersLockDoesNot()
    {
        var list = ManifestReader.Read(Manifest(3));
        string outDir = Path.Combine(root, "out");
        Directory.CreateDirectory(outDir);
        string lockPath = Path.Combine(outDir, CacheLock.FileName);
        Assume.That(File.Exists("/usr/bin/flock"), "util-linux flock is not installed");
        // One process holds the lock (the shell execs into sleep, keeping the locked descriptor): killing it frees the lock.
        using var holder = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", "exec 9>\"$0\" && /usr/bin/flock 9 && exec sleep 30", lockPath]) { UseShellExecute = false })!;
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(10);
            IOException? refused = null;
            while (DateTime.UtcNow < deadline && refused is null)
            {
                try
                {
                    using (CacheLock.Acquire(outDir)) { }
                    Thread.Sleep(50); // flock has not taken it yet
                }
                catch (IOException e) { refused = e; }
            }
            Assert.That(refused, Is.Not.Null, "another process's lock is seen");
            var ex = Assert.Catch<IOException>(() => Preprocessor.Run(list, Small, outDir, workers: 1))!;
            Assert.That(ex.Message, Does.Contain("in use"));
        }
        finally
        {
            holder.Kill();
            holder.WaitForExit();
        }
        // The lock file is still there, its holder dead: the next run is not blocked.
        Assert.That(File.Exists(lockPath));
        Assert.That(Preprocessor.Run(list, Small, outDir, workers: 1).Computed, Is.EqualTo(3));
    }

    [Test]
    public void AFailedClipIsANonZeroExit()
    {
        string csv = Manifest(3);
        File.WriteAllBytes(Path.Combine(root, "data", "clip1", "img3.png"), [1, 2, 3]);
        var (o, e) = (Console.Out, Console.Error);
        var err = new StringWriter();
        try
        {
            Console.SetOut(new StringWriter());
            Console.SetError(err);
            int rc = Entry.Dispatch(["preprocess", "--dataset", "manifest", "--root", csv, "--out", Path.Combine(root, "out"), "--frames", "3", "--size", "24", "--no-face-detect"]);
            Assert.That(rc, Is.EqualTo(Entry.Failed));
            Assert.That(err.ToString(), Does.Contain("1 of 3 clips failed"));
            File.WriteAllText(Path.Combine(root, "a-file"), "x");
            rc = Entry.Dispatch(["preprocess", "--dataset", "manifest", "--root", csv, "--out", Path.Combine(root, "a-file"), "--no-face-detect"]);
            Assert.That(rc, Is.EqualTo(Entry.Failed));
            Assert.That(err.ToString(), Does.Contain("--out " + Path.Combine(root, "a-file")).And.Contain("is a file"));
        }
        finally
        {
            Console.SetOut(o);
            Console.SetError(e);
        }
    }

    // ---- item 3: checksums ----

    [Test]
    public void FlippedBytesAreDetectedAndARerunRecomputesTheClip()
    {
        var list = ManifestReader.Read(Manifest(3));
        string outDir = Path.Combine(root, "out");
        Preprocessor.Run(list, Small, outDir, workers: 1);
        var cache = PreprocessedCache.Open(outDir);
        var victim = cache.Clips[1];
        var bytes = File.ReadAllBytes(victim[CacheInputs.Motion].File);
        var rng = new Random(19);
        for (int i = 0; i < 200; i++) bytes[TensorFile.HeaderBytes + rng.Next(bytes.Length - TensorFile.HeaderBytes)] ^= (byte)(1 + rng.Next(255));
        File.WriteAllBytes(victim[CacheInputs.Motion].File, bytes);
        var ex = Assert.Throws<InvalidDataException>(() => cache.Load(victim))!;
        Assert.That(ex.Message, Does.StartWith(victim[CacheInputs.Motion].File).And.Contain("checksum").And.Contain("rerun preprocess"));
        var again = Preprocessor.Run(list, Small, outDir, workers: 1);
        Assert.That((again.Computed, again.Reused), Is.EqualTo((1, 2)), "the damaged clip is recomputed, the others reused");
        var fresh = PreprocessedCache.Open(outDir);
        Assert.That(fresh.Load(fresh.Clips[1]), Is.Not.Empty);
    }

    [Test]
    public void SwappedIndexEntriesAndEntriesIntoAnotherCacheAreDetected()
    {
        var list = ManifestReader.Read(Manifest(3));
        string outDir = Path.Combine(root, "out");
        Preprocessor.Run(list, Small, outDir, workers: 1);
        string indexPath = Path.Combine(outDir, "index.json");
        string original = File.ReadAllText(indexPath);
        var json = JsonNode.Parse(original)!;
        var clips = json["clips"]!.AsArray();
        string f0 = clips[0]!["inputs"]![0]!["file"]!.GetValue<string>(), f1 = clips[1]!["inputs"]![0]!["file"]!.GetValue<string>();
        clips[0]!["inputs"]![0]!["file"] = f1;
        clips[1]!["inputs"]![0]!["file"] = f0;
        File.WriteAllText(indexPath, json.ToJsonString());
        var cache = PreprocessedCache.Open(outDir);
        var ex = Assert.Throws<InvalidDataException>(() => cache.Load(cache.Clips[0]))!;
        Assert.That(ex.Message, Does.Contain(Path.GetFileName(f1)).And.Contain("another clip's file"));

        var other = JsonNode.Parse(original)!;
        other["clips"]![0]!["inputs"]![0]!["file"] = "../../other-cache/clips/x.mxt";
        File.WriteAllText(indexPath, other.ToJsonString());
        var outside = Assert.Throws<InvalidDataException>(() => PreprocessedCache.Open(outDir))!;
        Assert.That(outside.Message, Does.Contain(indexPath).And.Contain("outside"));
    }

    // ---- item 9: index.json with nulls ----

    [TestCase("\"clips\": null")]
    [TestCase("\"class_names\": null")]
    [TestCase("\"clips\": [null]")]
    public void AnIndexWithNullsNamesTheFile(string field)
    {
        string outDir = Path.Combine(root, "out");
        Directory.CreateDirectory(outDir);
        string path = Path.Combine(outDir, "index.json");
        string rest = field.StartsWith("\"clips\"", StringComparison.Ordinal) ? "\"class_names\": [\"a\"]" : "\"clips\": []";
        File.WriteAllText(path, $"{{\"format\": \"microexpr-preprocessed-cache\", {field}, {rest}}}");
        var ex = Assert.Throws<InvalidDataException>(() => PreprocessedCache.Open(outDir))!;
        Assert.That(ex.Message, Does.StartWith(path));
    }

    // ---- item 10: non-finite values ----

    [Test]
    public void ANaNInACachedClipNamesTheFileAndTheValue()
    {
        var list = ManifestReader.Read(Manifest(3));
        string outDir = Path.Combine(root, "out");
        Preprocessor.Run(list, Small, outDir, workers: 1);
        var cache = PreprocessedCache.Open(outDir);
        var victim = cache.Clips[2];
        var data = cache.Load(victim);
        string oldSum = TensorFile.FormatChecksum(TensorFile.Checksum(data));
        data[5] = float.NaN;
        var info = TensorFile.Write(victim[CacheInputs.Motion].File, data, victim[CacheInputs.Motion].Frames, victim[CacheInputs.Motion].Channels, victim[CacheInputs.Motion].Height, victim[CacheInputs.Motion].Width);
        string indexPath = Path.Combine(outDir, "index.json");
        File.WriteAllText(indexPath, File.ReadAllText(indexPath).Replace(oldSum, info.ChecksumText, StringComparison.Ordinal));
        var ex = Assert.Throws<InvalidDataException>(() => MicroExpr.Training.ClipSet.FromCache(outDir))!;
        Assert.That(ex.Message, Does.StartWith(victim[CacheInputs.Motion].File).And.Contain("NaN").And.Contain("not finite").And.Contain("x 5"));
    }

    // ---- item 6: manifest labels ----

    [TestCase("99999999", "label 99999999")]
    [TestCase("1000", "label 1000")]
    public void SparseIntegerLabelsAreRefused(string odd, string expected)
    {
        Manifest(3);
        string csv = Path.Combine(root, "data", "manifest.csv");
        File.WriteAllLines(csv, ["subject,label,path", "a,0,clip0", "b,1,clip1", "c,2,clip2", $"d,{odd},clip0"]);
        long bytes = HostileFiles.Allocated(() =>
        {
            var ex = Assert.Throws<InvalidDataException>(() => ManifestReader.Read(csv))!;
            Assert.That(ex.Message, Does.StartWith(csv + " row 5").And.Contain(expected).And.Contain("0..K-1"));
        });
        Assert.That(bytes, Is.LessThan(16 << 20));
        File.WriteAllLines(csv, ["subject,label,path", "a,0,clip0", "b,1,clip1", "c,2,clip2"]);
        Assert.That(ManifestReader.Read(csv).ClassNames, Is.EqualTo(new[] { "0", "1", "2" }));
    }

    [Test]
    public void ANameBesideTheThreeMegcClassesIsRefused()
    {
        Manifest(3);
        string csv = Path.Combine(root, "data", "manifest.csv");
        File.WriteAllLines(csv, ["subject,label,path", "a,negative,clip0", "b,positive,clip1", "c,surprise,clip2", "d,happy,clip0"]);
        var ex = Assert.Throws<InvalidDataException>(() => ManifestReader.Read(csv))!;
        Assert.That(ex.Message, Does.StartWith(csv + " row 5").And.Contain("'happy'"));
    }

    // ---- item 11: paths outside the data root ----

    [Test]
    public void ManifestPathsOutsideTheRootAreRefusedUnlessAllowed()
    {
        Manifest(1);
        string outside = Path.Combine(root, "outside", "clip");
        WriteClip(outside, 4);
        string csv = Path.Combine(root, "data", "manifest.csv");
        File.WriteAllLines(csv, ["subject,label,path", "a,negative,clip0", "b,positive,../outside/clip", $"c,surprise,{outside}", "d,negative,../../../../etc"]);
        var list = ManifestReader.Read(csv);
        Assert.That(list.Clips.Select(c => c.Subject), Is.EqualTo(new[] { "a" }));
        Assert.That(list.Skipped.Select(s => s.Row), Is.EqualTo(new[] { 3, 4, 5 }));
        Assert.That(list.Skipped.All(s => s.Reason.Contains("outside the data root") && s.Reason.Contains("--allow-outside-root")));
        Assert.That(list.Skipped.Single(s => s.Row == 5).Reason, Does.Not.Contain("not found"), "nothing is said about whether it exists");
        var allowed = ManifestReader.Read(csv, allowOutsideRoot: true);
        Assert.That(allowed.Clips.Select(c => c.Subject), Is.EqualTo(new[] { "a", "b", "c" }));
    }

    [Test]
    public void AnnotationFilenamesOutsideTheRootAreRefused()
    {
        string casme = Path.Combine(root, "CASME2");
        WriteClip(Path.Combine(casme, "sub01", "EP01"), 6);
        WriteClip(Path.Combine(root, "outside", "clip"), 6);
        string xlsx = Path.Combine(root, "CASME2-coding-test.xlsx");
        Xlsx(xlsx,
            ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Estimated Emotion"],
            ["1", "EP01", "1", "3", "6", "happiness"],
            ["1", "../../outside/clip", "1", "3", "6", "happiness"],
            ["1", Path.Combine(root, "outside", "clip"), "1", "3", "6", "happiness"],
            ["1", "../../../../etc", "1", "3", "6", "happiness"]);
        var list = Casme2Reader.Read(casme, xlsx);
        Assert.That(list.Clips.Select(c => c.Clip), Is.EqualTo(new[] { "EP01" }));
        Assert.That(list.Skipped.Select(s => s.Row), Is.EqualTo(new[] { 3, 4, 5 }));
        Assert.That(list.Skipped.All(s => s.Reason.Contains("outside the data root")), string.Join("; ", list.Skipped));
        Assert.That(Casme2Reader.Read(casme, xlsx, allowOutsideRoot: true).Clips, Has.Count.EqualTo(3));
    }

    // ---- item 12 (data side) ----

    [Test]
    public void FramesOfDifferentSizesNameTheFile()
    {
        string clip = Path.Combine(root, "sizes");
        WriteClip(clip, 5, size: 32);
        using (var big = Texture(40, 40, 3)) OpenCvSharp.Cv2.ImWrite(Path.Combine(clip, "img4.png"), big);
        var source = new ClipSource("m", "s", "c", 0, "x", clip, SourceKind.FrameFolder, 1, -1, 5, clip, 0);
        var ex = Assert.Throws<InvalidDataException>(() => ClipLoader.Load(source))!;
        Assert.That(ex.Message, Does.StartWith(Path.Combine(clip, "img4.png")).And.Contain("40x40").And.Contain("32x32"));
    }

    [Test]
    public void AOneFrameClipIsRefusedWithTheMessagePredictGives()
    {
        Manifest(1);
        WriteClip(Path.Combine(root, "data", "single"), 1);
        string csv = Path.Combine(root, "data", "manifest.csv");
        File.WriteAllLines(csv, ["subject,label,path,onset,offset", "a,negative,clip0,2,2", "b,negative,single,,"]);
        var list = ManifestReader.Read(csv);
        Assert.That(list.Clips, Is.Empty);
        Assert.That(list.Skipped.Select(s => s.Reason), Has.All.Contain("a clip needs at least 2 frames"));
        Assert.That(ClipLoader.TooShort("x", 1), Does.Contain("a clip needs at least 2 frames"));
    }
}
