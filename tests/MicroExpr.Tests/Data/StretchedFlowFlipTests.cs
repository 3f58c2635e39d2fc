using MicroExpr.Data;
using MicroExpr.Data.Annotations;
using MicroExpr.Data.Cache;
using MicroExpr.Data.Motion;
using MicroExpr.Training;
using OpenCvSharp;

namespace MicroExpr.Tests.Data;

/// <summary>
/// Precomputed motion images declared <c>--encoding uvs-stretched</c> (u, v, strain each min–max stretched per image, as
/// the MEGC2019 composite's): the flip's u → 1 − u is exactly the stretch of the mirrored face's flow, preprocessing
/// checks the declaration on every image, and the cache tells training to complement u.
/// </summary>
public class StretchedFlowFlipTests
{
    static double[] Stretch(double[] u)
    {
        double min = u.Min(), max = u.Max();
        return u.Select(v => (v - min) / (max - min)).ToArray();
    }

    [TestCase(1)]
    [TestCase(2)]
    [TestCase(3)]
    public void ComplementOfTheStretchIsTheStretchOfTheMirroredNegatedFlow(int seed)
    {
        const int s = 5;
        var rng = new Random(seed);
        var u = Enumerable.Range(0, s * s).Select(_ => rng.NextDouble() * 4 - 1.5).ToArray(); // signed, not symmetric about 0
        // The mirrored face's flow: mirrored columns, horizontal component negated; then stretched per image.
        var mirrored = new double[s * s];
        for (int y = 0; y < s; y++) for (int x = 0; x < s; x++) mirrored[y * s + x] = -u[y * s + (s - 1 - x)];
        var expected = Stretch(mirrored);

        var src = new float[3 * s * s];
        var stretched = Stretch(u);
        for (int i = 0; i < s * s; i++) src[i] = (float)stretched[i];
        var dst = new float[src.Length];
        Augment.Apply(src, dst, 1, 3, s, flip: true, dx: 0, dy: 0, FlowFlip.ComplementU);
        for (int i = 0; i < s * s; i++) Assert.That(dst[i], Is.EqualTo(expected[i]).Within(1e-6), $"pixel {i}");
        // Negating the stretched value instead (the signed-u rule) would not be an image of flow at all.
        Assert.That(Enumerable.Range(0, s * s).Any(i => Math.Abs(-src[s * s - 1 - i] - expected[i]) > 0.1), Is.True);
    }

    static string WriteImage(string dir, string name, byte redMin, byte redMax)
    {
        using var img = new Mat(20, 20, MatType.CV_8UC3);
        for (int y = 0; y < 20; y++)
            for (int x = 0; x < 20; x++)
            {
                int i = y * 20 + x;
                byte red = (byte)(redMin + (redMax - redMin) * i / 399);
                img.Set(y, x, new Vec3b((byte)(255 * (i % 7) / 6), (byte)(255 - 255 * i / 399), red)); // BGR: strain, v, u
            }
        string path = Path.Combine(dir, name);
        Cv2.ImWrite(path, img);
        return path;
    }

    [Test]
    public void UvsStretchedImagesAreCheckedAndTheirFlipComplementsU()
    {
        string root = Directory.CreateTempSubdirectory("uvs-stretched").FullName;
        try
        {
            var list = new ClipList("test", ["a", "b"]);
            list.Clips.Add(new ClipSource("test", "s1", "c1", 0, "a", WriteImage(root, "full.png", 0, 255), SourceKind.MotionImage, -1, -1, -1, "", 0));
            list.Clips.Add(new ClipSource("test", "s2", "c2", 1, "b", WriteImage(root, "full2.png", 0, 255), SourceKind.MotionImage, -1, -1, -1, "", 0));
            list.Clips.Add(new ClipSource("test", "s2", "c3", 1, "b", WriteImage(root, "narrow.png", 10, 200), SourceKind.MotionImage, -1, -1, -1, "", 0));
            var settings = new PreprocessSettings(Size: 20, Encoding: MotionEncoding.UvsStretched, FaceDetect: false);
            string cache = Path.Combine(root, "cache");
            var run = Preprocessor.Run(list, settings, cache, workers: 1);
            Assert.That(run.Failed.Single().Reason, Does.Contain("narrow.png").And.Contain("uvs-stretched").And.Contain("10..200"));

            var set = ClipSet.FromCache(cache);
            Assert.That(set.HorizontalFlip, Is.EqualTo(FlowFlip.ComplementU));
            Assert.That(set.Clips.Count, Is.EqualTo(2));
            var u = set.Clips[0].Data.AsSpan(0, 400).ToArray();
            Assert.That((u.Min(), u.Max()), Is.EqualTo((0f, 1f)), "channel 0 is the red channel, stretched to [0, 1]");

            // The same images without the declaration: a flip only mirrors them.
            string plain = Path.Combine(root, "plain");
            Preprocessor.Run(list, settings with { Encoding = MotionEncoding.Uvs }, plain, workers: 1);
            Assert.That(ClipSet.FromCache(plain).HorizontalFlip, Is.EqualTo(FlowFlip.Mirror));

            // Computed flow cannot be declared stretched.
            var frames = new ClipList("test", ["a"]);
            frames.Clips.Add(new ClipSource("test", "s1", "c1", 0, "a", root, SourceKind.FrameFolder, 0, 1, 2, "", 0));
            var ex = Assert.Throws<ArgumentException>(() => Preprocessor.Run(frames, settings, Path.Combine(root, "c2"), workers: 1))!;
            Assert.That(ex.Message, Does.Contain("uvs-stretched").And.Contain(root));
        }
        finally
        {
            Directory.Delete(root, true);
        }
    }
}
