using MicroExpr.Data;
using MicroExpr.Data.Annotations;
using MicroExpr.Data.Cache;
using MicroExpr.Models;
using MicroExpr.Training;
using OpenCvSharp;
using static MicroExpr.Tests.Data.DataFixtures;

namespace MicroExpr.Tests.Data;

/// <summary>
/// The cache's stored kinds beyond motion (<c>preprocess --inputs</c>): RGB and grey face frames and the dynamic image,
/// each in its own checksummed file, checked against literal references computed here from the frames on disk.
/// </summary>
public class CacheInputsTests
{
    const int S = 32, L = 6;
    static readonly CacheInputs AllKinds = CacheInputs.Motion | CacheInputs.Rgb | CacheInputs.Grey | CacheInputs.DynamicImage;

    /// <summary>Uniform selection of T = L frames over 1..L: positions 0..L-1, so every stored frame is one frame on disk.</summary>
    static PreprocessSettings Settings(CacheInputs inputs) =>
        new(Frames: L, Size: S, FaceDetect: false, Selection: FrameSelection.Uniform, Inputs: inputs);

    /// <summary>L colour frames S×S (B, G, R from three textures, moving): lossless PNGs, so the reference reads the same bytes.</summary>
    static void WriteColourClip(string dir, int seed)
    {
        Directory.CreateDirectory(dir);
        using var b = Texture(S, S, seed);
        using var g = Texture(S, S, seed + 10);
        using var r = Texture(S, S, seed + 20);
        for (int i = 0; i < L; i++)
        {
            using var bs = Shift(b, 0.4 * i, 0);
            using var gs = Shift(g, 0, 0.3 * i);
            using var rs = Shift(r, -0.2 * i, 0.2 * i);
            using var bgr = new Mat();
            Cv2.Merge([bs, gs, rs], bgr);
            Cv2.ImWrite(Path.Combine(dir, $"img{i + 1}.png"), bgr);
        }
    }

    static ClipList Clips(string root, int clips = 2)
    {
        var list = new ClipList("test", ["negative", "positive"]);
        for (int i = 0; i < clips; i++)
        {
            string dir = Path.Combine(root, $"clip{i}");
            WriteColourClip(dir, i + 1);
            list.Clips.Add(new ClipSource("test", $"s{i}", $"c{i}", i % 2, i % 2 == 0 ? "negative" : "positive", dir, SourceKind.FrameFolder,
                1, 3, L, "", 0, ActionUnits: i == 0 ? "4+L10" : ""));
        }
        return list;
    }

    /// <summary>The frame on disk as RGB planes / 255, [3, S, S], in double.</summary>
    static double[] ReadRgb(string file)
    {
        using var m = Cv2.ImRead(file, ImreadModes.Color);
        var o = new double[3 * S * S];
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++)
            {
                var p = m.At<Vec3b>(y, x);
                o[y * S + x] = p.Item2 / 255.0;
                o[S * S + y * S + x] = p.Item1 / 255.0;
                o[2 * S * S + y * S + x] = p.Item0 / 255.0;
            }
        return o;
    }

    /// <summary>Bilen's approximate rank pooling, literally: αₜ = Σ_{i=t}^{T} (2i − T − 1)/i, DI = Σ αₜ Iₜ, min–max scaled.</summary>
    static double[] RankPool(IReadOnlyList<double[]> frames)
    {
        int t = frames.Count, n = frames[0].Length;
        var di = new double[n];
        for (int k = 1; k <= t; k++)
        {
            double a = 0;
            for (int i = k; i <= t; i++) a += (2.0 * i - t - 1) / i;
            for (int p = 0; p < n; p++) di[p] += a * frames[k - 1][p];
        }
        double min = di.Min(), max = di.Max();
        return di.Select(v => (v - min) / (max - min)).ToArray();
    }

    static void Near(float[] got, double[] want, double tol, string what)
    {
        Assert.That(got, Has.Length.EqualTo(want.Length), what);
        for (int i = 0; i < want.Length; i++)
            if (Math.Abs(got[i] - want[i]) > tol) Assert.Fail($"{what}[{i}]: {got[i]} vs {want[i]}");
    }

    [Test]
    public void EveryKindRoundTripsThroughTheCacheWithItsValuesAndShapes()
    {
        string root = TempDir("cache-kinds");
        try
        {
            var list = Clips(root);
            string all = Path.Combine(root, "all"), motionOnly = Path.Combine(root, "motion");
            var run = Preprocessor.Run(list, Settings(AllKinds), all, workers: 1);
            Assert.That(run.Failed, Is.Empty, string.Join("; ", run.Failed));
            Preprocessor.Run(list, Settings(CacheInputs.Motion), motionOnly, workers: 1);
            var cache = PreprocessedCache.Open(all);
            var plain = PreprocessedCache.Open(motionOnly);
            Assert.That(cache.Stored, Is.EqualTo(AllKinds));
            Assert.That(plain.Stored, Is.EqualTo(CacheInputs.Motion));
            Assert.That(cache.Settings!.StoredInputs, Is.EqualTo(AllKinds), "the recorded settings keep the kinds");
            Assert.That(cache.Clips.Select(c => c.ActionUnits), Is.EqualTo(new[] { "4+L10", "" }), "action units travel into the index unparsed");

            for (int i = 0; i < list.Clips.Count; i++)
            {
                var e = cache.Clips[i];
                Assert.That((e[CacheInputs.Motion].Frames, e[CacheInputs.Motion].Channels, e[CacheInputs.Motion].Height), Is.EqualTo((L, 3, S)));
                Assert.That((e[CacheInputs.Rgb].Frames, e[CacheInputs.Rgb].Channels, e[CacheInputs.Rgb].Height), Is.EqualTo((L, 3, S)));
                Assert.That((e[CacheInputs.Grey].Frames, e[CacheInputs.Grey].Channels, e[CacheInputs.Grey].Height), Is.EqualTo((L, 1, S)));
                Assert.That((e[CacheInputs.DynamicImage].Frames, e[CacheInputs.DynamicImage].Channels), Is.EqualTo((1, 1)), "grey is stored: a grey DI");
                Assert.That(e.Inputs.Select(x => x.File).Distinct().Count(), Is.EqualTo(4), "one file per kind");

                // Motion is what a motion-only cache holds, under the same file name.
                Assert.That(cache.Load(e, CacheInputs.Motion), Is.EqualTo(plain.Load(plain.Clips[i])));
                Assert.That(Path.GetFileName(e[CacheInputs.Motion].File), Is.EqualTo(Path.GetFileName(plain.Clips[i][CacheInputs.Motion].File)));

                var frames = Enumerable.Range(1, L).Select(k => ReadRgb(Path.Combine(list.Clips[i].Path, $"img{k}.png"))).ToList();
                Near(cache.Load(e, CacheInputs.Rgb), frames.SelectMany(f => f).ToArray(), 1e-6, "rgb");
                var grey = frames.Select(f => Enumerable.Range(0, S * S).Select(p => 0.299 * f[p] + 0.587 * f[S * S + p] + 0.114 * f[2 * S * S + p]).ToArray()).ToList();
                Near(cache.Load(e, CacheInputs.Grey), grey.SelectMany(f => f).ToArray(), 1e-6, "grey");
                Near(cache.Load(e, CacheInputs.DynamicImage), RankPool(grey), 1e-5, "dynamic image");
            }

            // Without grey, the dynamic image pools the RGB frames: [1, 3, S, S].
            string rgbDi = Path.Combine(root, "rgb-di");
            Preprocessor.Run(list, Settings(CacheInputs.Rgb | CacheInputs.DynamicImage), rgbDi, workers: 1);
            var c2 = PreprocessedCache.Open(rgbDi);
            var frames0 = Enumerable.Range(1, L).Select(k => ReadRgb(Path.Combine(list.Clips[0].Path, $"img{k}.png"))).ToList();
            Assert.That(c2.Clips[0][CacheInputs.DynamicImage].Channels, Is.EqualTo(3));
            Near(c2.Load(c2.Clips[0], CacheInputs.DynamicImage), RankPool(frames0), 1e-5, "rgb dynamic image");
            var noMotion = Assert.Throws<InvalidDataException>(() => c2.Load(c2.Clips[0]))!;
            Assert.That(noMotion.Message, Does.Contain("no motion").And.Contain("--inputs"));
        }
        finally
        {
            Directory.Delete(root, true);
        }
    }

    [Test]
    public void TheDefaultSettingsKeepTheirCanonicalFormAndOtherKindsChangeTheHash()
    {
        // The motion-only default is what every cache before --inputs was hashed from: unchanged, so they stay valid.
        Assert.That(new PreprocessSettings().Canonical, Is.EqualTo(
            "v1;flow=farneback;T=11;S=112;enc=uvs;sel=apex-centred;face=/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml;margin=0.1"));
        var rgb = new PreprocessSettings(Inputs: CacheInputs.Motion | CacheInputs.Rgb);
        Assert.That(rgb.Canonical, Does.EndWith(";inputs=motion,rgb"));
        Assert.That(rgb.Hash, Is.Not.EqualTo(new PreprocessSettings().Hash));
        Assert.That(rgb.Describe(), Does.Contain("stores motion,rgb"));
        Assert.That(CacheInputNames.ParseList("rgb, grey,dynamic-image"), Is.EqualTo(CacheInputs.Rgb | CacheInputs.Grey | CacheInputs.DynamicImage));
        Assert.That(Assert.Throws<ArgumentException>(() => CacheInputNames.ParseList("motion,flow"))!.Message, Does.Contain("'flow'"));
        Assert.That(Assert.Throws<ArgumentException>(() => CacheInputNames.ParseList("motion,"))!.Message, Does.Contain("empty"));
    }

    [Test]
    public void ADamagedRgbFileIsNamedAndARerunRecomputesOnlyThatClip()
    {
        string root = TempDir("cache-rgb-damage");
        try
        {
            var list = Clips(root, 3);
            string outDir = Path.Combine(root, "out");
            var settings = Settings(CacheInputs.Motion | CacheInputs.Rgb);
            Preprocessor.Run(list, settings, outDir, workers: 1);
            var cache = PreprocessedCache.Open(outDir);
            var victim = cache.Clips[1][CacheInputs.Rgb].File;
            Assert.That(victim, Does.EndWith(".rgb.mxt"));
            var motionStamp = File.GetLastWriteTimeUtc(cache.Clips[1][CacheInputs.Motion].File);
            var bytes = File.ReadAllBytes(victim);
            bytes[TensorFile.HeaderBytes + 101] ^= 0x40;
            File.WriteAllBytes(victim, bytes);

            // Loading only motion never opens the rgb file; loading rgb names it.
            Assert.DoesNotThrow(() => ClipSet.FromCache(outDir, [InputKind.MotionFrames]));
            var ex = Assert.Throws<InvalidDataException>(() => ClipSet.FromCache(outDir, [InputKind.RgbFrames]))!;
            Assert.That(ex.Message, Does.StartWith(victim).And.Contain("checksum").And.Contain("rerun preprocess"));

            var again = Preprocessor.Run(list, settings, outDir, workers: 1);
            Assert.That((again.Computed, again.Reused), Is.EqualTo((1, 2)));
            Assert.That(File.GetLastWriteTimeUtc(cache.Clips[1][CacheInputs.Motion].File), Is.EqualTo(motionStamp), "the intact motion file of that clip is reused");
            Assert.DoesNotThrow(() => ClipSet.FromCache(outDir, [InputKind.RgbFrames]));

            // Adding a kind to an existing cache folder computes the new files and reuses the motion ones.
            var more = Preprocessor.Run(list, settings with { Inputs = CacheInputs.Motion | CacheInputs.Rgb | CacheInputs.Grey }, outDir, workers: 1);
            Assert.That(more.Computed, Is.EqualTo(3));
            Assert.That(File.GetLastWriteTimeUtc(cache.Clips[1][CacheInputs.Motion].File), Is.EqualTo(motionStamp));
        }
        finally
        {
            Directory.Delete(root, true);
        }
    }

    [Test]
    public void SwappedAndOutsideRgbEntriesAreRefused()
    {
        string root = TempDir("cache-rgb-swap");
        try
        {
            var list = Clips(root);
            string outDir = Path.Combine(root, "out");
            Preprocessor.Run(list, Settings(CacheInputs.Motion | CacheInputs.Rgb), outDir, workers: 1);
            string indexPath = Path.Combine(outDir, CacheIndex.FileName);
            string original = File.ReadAllText(indexPath);
            var json = System.Text.Json.Nodes.JsonNode.Parse(original)!;
            var clips = json["clips"]!.AsArray();
            var rgb0 = clips[0]!["inputs"]!.AsArray().Single(x => x!["kind"]!.GetValue<string>() == "rgb")!;
            var rgb1 = clips[1]!["inputs"]!.AsArray().Single(x => x!["kind"]!.GetValue<string>() == "rgb")!;
            string f0 = rgb0["file"]!.GetValue<string>(), f1 = rgb1["file"]!.GetValue<string>();
            rgb0["file"] = f1;
            rgb1["file"] = f0;
            File.WriteAllText(indexPath, json.ToJsonString());
            var cache = PreprocessedCache.Open(outDir);
            Assert.DoesNotThrow(() => cache.Load(cache.Clips[0], CacheInputs.Motion));
            var swapped = Assert.Throws<InvalidDataException>(() => cache.Load(cache.Clips[0], CacheInputs.Rgb))!;
            Assert.That(swapped.Message, Does.Contain(Path.GetFileName(f1)).And.Contain("another clip's file"));

            rgb0["file"] = "../elsewhere/x.rgb.mxt";
            rgb1["file"] = f1;
            File.WriteAllText(indexPath, json.ToJsonString());
            var outside = Assert.Throws<InvalidDataException>(() => PreprocessedCache.Open(outDir))!;
            Assert.That(outside.Message, Does.StartWith(indexPath).And.Contain("rgb").And.Contain("outside"));

            rgb0["file"] = f0;
            rgb0["kind"] = "depth";
            File.WriteAllText(indexPath, json.ToJsonString());
            Assert.That(Assert.Throws<InvalidDataException>(() => PreprocessedCache.Open(outDir))!.Message, Does.Contain("unknown input kind 'depth'"));
        }
        finally
        {
            Directory.Delete(root, true);
        }
    }

    [Test]
    public void AClipSetLoadsOnlyTheKindsAsked()
    {
        string root = TempDir("cache-load-kinds");
        try
        {
            var list = Clips(root);
            string outDir = Path.Combine(root, "out");
            Preprocessor.Run(list, Settings(AllKinds), outDir, workers: 1);
            var cache = PreprocessedCache.Open(outDir);
            var set = ClipSet.FromCache(outDir, [InputKind.RgbFrames, InputKind.DynamicImage]);
            Assert.That(set.Shape.Inputs.Select(i => i.Kind), Is.EqualTo(new[] { InputKind.MotionFrames, InputKind.RgbFrames, InputKind.GreyFrames, InputKind.DynamicImage, InputKind.ActionUnits }),
                "Shape lists every kind the cache holds, and the action units its clips' codings give (AU4 and AU10)");
            Assert.That(set.Shape.Find(InputKind.ActionUnits), Is.EqualTo(new InputShape(InputKind.ActionUnits, 1, 2, 1)));
            Assert.That(set.Shape.Find(InputKind.GreyFrames), Is.EqualTo(new InputShape(InputKind.GreyFrames, L, 1, S)));
            Assert.That(set.Shape.Find(InputKind.DynamicImage), Is.EqualTo(new InputShape(InputKind.DynamicImage, 1, 1, S)));
            Assert.That(set.Loaded.Select(i => i.Kind), Is.EqualTo(new[] { InputKind.RgbFrames, InputKind.DynamicImage }));
            Assert.That(set.Clips[0].Inputs.Keys, Is.EquivalentTo(new[] { InputKind.RgbFrames, InputKind.DynamicImage }), "nothing else in memory");
            Assert.That(set.Input(set.Clips[0], InputKind.RgbFrames), Is.EqualTo(cache.Load(cache.Clips[0], CacheInputs.Rgb)));
            Assert.That(set.Input(set.Clips[1], InputKind.DynamicImage), Is.EqualTo(cache.Load(cache.Clips[1], CacheInputs.DynamicImage)));
            Assert.That(set.Clips[0].ActionUnits, Is.EqualTo("4+L10"));
            Assert.That(set.HorizontalFlip, Is.EqualTo(MicroExpr.Data.Motion.FlowFlip.Mirror), "no motion loaded");
            var notLoaded = Assert.Throws<InvalidDataException>(() => set.Input(set.Clips[0], InputKind.MotionFrames))!;
            Assert.That(notLoaded.Message, Does.Contain("not loaded"));

            var everything = ClipSet.FromCache(outDir);
            Assert.That(everything.Loaded, Has.Count.EqualTo(4));
            Assert.That(RunFingerprint.Of(everything), Is.Not.EqualTo(RunFingerprint.Of(ClipSet.FromCache(outDir, [InputKind.MotionFrames]))));
        }
        finally
        {
            Directory.Delete(root, true);
        }
    }

    [Test]
    public void AVersion2IndexIsStillReadAsMotionOnly()
    {
        string dir = TempDir("cache-v2");
        try
        {
            string clipDir = Path.Combine(dir, Preprocessor.ClipFolder);
            Directory.CreateDirectory(clipDir);
            var values = Enumerable.Range(0, 2 * 3 * 4 * 4).Select(i => i * 0.01f - 0.3f).ToArray();
            var info = TensorFile.Write(Path.Combine(clipDir, "c0.mxt"), values, 2, 3, 4, 4);
            // As version 2 wrote it: the one file in the clip's own fields, the settings without "inputs".
            File.WriteAllText(Path.Combine(dir, CacheIndex.FileName), $$"""
                {"format": "microexpr-preprocessed-cache", "version": 2, "settings_hash": "x",
                 "parameters": {"Flow": 0, "Frames": 2, "Size": 16},
                 "class_names": ["a"], "skipped": [],
                 "clips": [{"subject": "s0", "label": 0, "clip": "c0", "file": "clips/c0.mxt", "frames": 2, "channels": 3, "height": 4, "width": 4, "checksum": "{{info.ChecksumText}}"}]}
                """);
            var cache = PreprocessedCache.Open(dir);
            Assert.That(cache.Stored, Is.EqualTo(CacheInputs.Motion));
            Assert.That(cache.Settings!.StoredInputs, Is.EqualTo(CacheInputs.Motion), "settings recorded before --inputs mean motion");
            Assert.That(cache.Settings.Canonical, Does.Not.Contain("inputs"));
            Assert.That(cache.Clips[0].ActionUnits, Is.EqualTo(""));
            Assert.That(cache.Load(cache.Clips[0]), Is.EqualTo(values));
            var set = ClipSet.FromCache(dir);
            Assert.That(set.Shape.Inputs, Is.EqualTo(new[] { new InputShape(InputKind.MotionFrames, 2, 3, 4) }));

            // A version-3 clip without its "inputs" list is refused in one line naming the index.
            string path = Path.Combine(dir, CacheIndex.FileName);
            File.WriteAllText(path, File.ReadAllText(path).Replace("\"version\": 2", "\"version\": 3", StringComparison.Ordinal));
            var ex = Assert.Throws<InvalidDataException>(() => PreprocessedCache.Open(dir))!;
            Assert.That(ex.Message, Does.StartWith(path).And.Contain("\"inputs\""));
            File.WriteAllText(path, File.ReadAllText(path).Replace("\"version\": 3", "\"version\": 9", StringComparison.Ordinal));
            Assert.That(Assert.Throws<InvalidDataException>(() => PreprocessedCache.Open(dir))!.Message, Does.Contain("newer"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Test]
    public void AMotionImageCannotGiveFaceFrames()
    {
        string root = TempDir("cache-motion-image");
        try
        {
            using (var img = Texture(40, 40, 9)) Cv2.ImWrite(Path.Combine(root, "motion.png"), img);
            var list = new ClipList("test", ["a"]);
            list.Clips.Add(new ClipSource("test", "s", "c", 0, "a", Path.Combine(root, "motion.png"), SourceKind.MotionImage, -1, -1, -1, "", 0));
            var run = Preprocessor.Run(list, Settings(CacheInputs.Motion | CacheInputs.Rgb), Path.Combine(root, "out"), workers: 1);
            Assert.That(run.Failed.Single().Reason, Does.Contain("motion.png").And.Contain("precomputed motion image").And.Contain("rgb"));
        }
        finally
        {
            Directory.Delete(root, true);
        }
    }
}
