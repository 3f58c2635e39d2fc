using System.Globalization;
using MicroExpr.Data;
using MicroExpr.Data.Faces;
using MicroExpr.Data.Motion;
using MicroExpr.Data.Synthetic;
using NUnit.Framework;
using OpenCvSharp;

namespace MicroExpr.Tests.Data;

/// <summary>
/// FDP's per-frame landmark alignment on synthetic data: the landmarks file (format, errors naming file, row and field),
/// the generator writing each frame's true landmarks, and the aligned crop putting those landmarks where the alignment
/// says, checked on bright dots at known sub-pixel places and on the synthetic face's pupils.
/// </summary>
public class FdpLandmarkAlignmentTests
{
    /// <summary>The alignment written out literally (papers.md §3): rotate about the eyes' midpoint by minus the eye line's
    /// angle, centre a square of half-side 1.25·max extent of the five points on their box, scale it to S.</summary>
    static Point2d[] MapByHand(IReadOnlyList<Point2d> p, IReadOnlyList<Point2d> query, int size)
    {
        Point2d Mean(int from) => new(Enumerable.Range(from, 6).Average(i => p[i].X), Enumerable.Range(from, 6).Average(i => p[i].Y));
        Point2d le = Mean(36), re = Mean(42), mid = new((le.X + re.X) / 2, (le.Y + re.Y) / 2);
        double th = Math.Atan2(re.Y - le.Y, re.X - le.X);
        Point2d Rot(Point2d q)
        {
            double dx = q.X - mid.X, dy = q.Y - mid.Y;
            return new(mid.X + Math.Cos(th) * dx + Math.Sin(th) * dy, mid.Y - Math.Sin(th) * dx + Math.Cos(th) * dy);
        }
        Point2d[] five = [Rot(le), Rot(re), Rot(p[30]), Rot(p[48]), Rot(p[54])];
        double x0 = five.Min(q => q.X), x1 = five.Max(q => q.X), y0 = five.Min(q => q.Y), y1 = five.Max(q => q.Y);
        double half = 0.5 * 2.5 * Math.Max(x1 - x0, y1 - y0);
        double left = (x0 + x1) / 2 - half, top = (y0 + y1) / 2 - half, k = size / (2 * half);
        return query.Select(q => { var r = Rot(q); return new Point2d((r.X - left) * k, (r.Y - top) * k); }).ToArray();
    }

    static Point2d[] EyeCentres(IReadOnlyList<Point2d> p)
    {
        var (l, r) = FaceCrops.EyeCentres(p);
        return [l, r];
    }

    [Test]
    public void TheLandmarksFileRoundTripsAndNamesTheBadRowAndField()
    {
        string dir = Directory.CreateTempSubdirectory("lmfile").FullName;
        try
        {
            string path = Path.Combine(dir, LandmarkFile.FileName);
            var a = Enumerable.Range(0, 68).Select(i => new Point2d(i * 0.5 + 0.123, 100 - i * 0.25)).ToArray();
            var b = a.Select(q => new Point2d(q.X + 1, q.Y - 2)).ToArray();
            LandmarkFile.Write(path, [(46, a), (47, b)]);
            var lines = File.ReadAllLines(path);
            Assert.That(lines[0], Does.StartWith("frame,x0,y0,x1,y1,"));
            Assert.That(lines[0], Does.EndWith(",x67,y67"));
            Assert.That(lines[1], Does.StartWith("46,0.123,100,0.623,99.75,"));
            var read = LandmarkFile.Read(path);
            Assert.That(read.Keys, Is.EqualTo(new[] { 46, 47 }));
            for (int i = 0; i < 68; i++)
            {
                Assert.That(read[46][i].X, Is.EqualTo(a[i].X).Within(5e-4));
                Assert.That(read[47][i].Y, Is.EqualTo(b[i].Y).Within(5e-4));
            }

            void Bad(string text, string expected)
            {
                File.WriteAllText(path, text);
                var e = Assert.Throws<InvalidDataException>(() => LandmarkFile.Read(path))!;
                Assert.That(e.Message, Does.StartWith(path + ": "));
                Assert.That(e.Message, Does.Contain(expected));
            }
            string row = string.Join(",", Enumerable.Repeat("1.5", 136));
            Bad("frame,x,y\n", "row 1: the header");
            Bad(lines[0] + "\n12," + row + "\n13,1,2\n", "row 3: 3 fields");
            Bad(lines[0] + "\n12," + row.Replace("1.5,1.5,1.5,1.5,1.5,1.5,1.5,1.5", "1.5,1.5,1.5,1.5,1.5,1.5,1.5,abc") + "\n", "row 2: field 'y3' is 'abc'");
            Bad(lines[0] + "\n12," + row + "\n12," + row + "\n", "row 3: frame 12 is listed twice");
            Bad(lines[0] + "\nx12," + row + "\n", "row 2: field 'frame' is 'x12'");
            Bad(lines[0] + "\n12," + row.Replace("1.5,1.5", "NaN,1.5") + "\n", "row 2: field 'x0' is 'NaN'");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Test]
    public void TheGeneratorWritesEveryFramesTrueLandmarksBesideItsFrames()
    {
        var options = new SyntheticOptions { Subjects = 1, ClipsPerSubject = 2, Size = 64, Frames = 12 };
        string dir = Directory.CreateTempSubdirectory("lmsynth").FullName;
        try
        {
            var summary = SyntheticDataset.Generate(options, dir);
            foreach (var clip in SyntheticDataset.Plan(options))
            {
                string folder = Path.Combine(summary.RawDir, clip.SubjectFolder, clip.Filename);
                var read = LandmarkFile.Read(Path.Combine(folder, LandmarkFile.FileName));
                Assert.That(read.Keys, Is.EqualTo(Enumerable.Range(clip.FirstFrameNumber, clip.FrameCount)), "one row per frame, numbered as the files");
                Assert.That(MicroExpr.Data.Frames.FrameFolder.List(folder).Select(f => f.Number), Is.EqualTo(read.Keys), "the frame listing is unchanged");
                for (int i = 0; i < clip.FrameCount; i++)
                {
                    var want = clip.Landmarks(i);
                    for (int k = 0; k < 68; k++)
                    {
                        Assert.That(read[clip.FirstFrameNumber + i][k].X, Is.EqualTo(want[k].X).Within(5e-4));
                        Assert.That(read[clip.FirstFrameNumber + i][k].Y, Is.EqualTo(want[k].Y).Within(5e-4));
                    }
                }
                // The head drifts over the clip, and the landmarks with it.
                var (first, last) = (clip.Landmarks(0)[30], clip.Landmarks(clip.FrameCount - 1)[30]);
                var (p0, p1) = (clip.Pose(0), clip.Pose(clip.FrameCount - 1));
                Assert.That(Math.Abs(last.X - first.X) + Math.Abs(last.Y - first.Y), Is.GreaterThan(0.5 * (Math.Abs(p1.Tx - p0.Tx) + Math.Abs(p1.Ty - p0.Ty))));
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    /// <summary>
    /// Bright Gaussian dots drawn at five landmark places (sub-pixel) in a frame, aligned by <see cref="FaceCrops.FdpWarp"/>:
    /// each dot's centroid in the 64×64 crop is where the hand-written alignment maps its point (within 0.05 px), so the
    /// warp's pixel convention is the landmarks' (top-left pixel centre at 0, 0).
    /// </summary>
    [Test]
    public void TheAlignedCropPutsDotsAtTheMappedLandmarks()
    {
        var clip = SyntheticDataset.Plan(new SyntheticOptions { Subjects = 1, ClipsPerSubject = 1, Size = 128, Frames = 12 })[0];
        var p = clip.Landmarks(clip.Apex);
        int[] which = [30, 48, 54, 36, 45];   // nose tip, mouth and outer eye corners: inside the crop
        using var frame = new Mat(128, 128, MatType.CV_8UC1, Scalar.All(0));
        const double sigma = 2.0;
        for (int y = 0; y < 128; y++)
            for (int x = 0; x < 128; x++)
            {
                double v = which.Sum(k => Math.Exp(-((x - p[k].X) * (x - p[k].X) + (y - p[k].Y) * (y - p[k].Y)) / (2 * sigma * sigma)));
                frame.Set(y, x, (byte)Math.Round(Math.Min(255, 250 * v)));
            }
        using var aligned = FaceCrops.FdpWarp(frame, p, 64);
        var want = MapByHand(p, which.Select(k => p[k]).ToArray(), 64);
        for (int j = 0; j < which.Length; j++)
        {
            double sw = 0, sx = 0, sy = 0;
            for (int y = (int)want[j].Y - 5; y <= (int)want[j].Y + 5; y++)
                for (int x = (int)want[j].X - 5; x <= (int)want[j].X + 5; x++)
                {
                    if (x < 0 || y < 0 || x >= 64 || y >= 64) continue;
                    double w = aligned.At<byte>(y, x);
                    sw += w; sx += w * x; sy += w * y;
                }
            Assert.That(sx / sw, Is.EqualTo(want[j].X).Within(0.05), $"landmark {which[j]}: x");
            Assert.That(sy / sw, Is.EqualTo(want[j].Y).Within(0.05), $"landmark {which[j]}: y");
        }
    }

    /// <summary>
    /// A synthetic clip through the pipeline with <c>--face fdp</c> and its true landmarks: every selected grey frame is
    /// the frame warped by its own landmarks (checked against <see cref="FaceCrops.FdpAlign"/>, which rounds to 8-bit grey before the warp: within 1.5 levels), the eye
    /// centres map to one horizontal line at the hand-computed place, and the face's pupils (the darkest spot of each
    /// eye) lie there in the crop, whatever the head's pose in that frame: within 0.5 px across (the iris highlight moves
    /// the blurred darkest spot by up to about 0.3 px), within 1 px up and down (the upper lid and its lashes, drawn dark
    /// just above the iris, pull it about 0.7 px up at 64 px). The dots above check the placement exactly; this checks
    /// that the written landmarks sit on the rendered face.
    /// </summary>
    [Test]
    public void ThePipelinesFdpCropOfASyntheticClipPutsThePupilsAtTheMappedEyeCentres()
    {
        var options = new SyntheticOptions
        {
            Subjects = 2, ClipsPerSubject = 2, Size = 128, Frames = 16,
            Distractors = Distractors.PoseJitter | Distractors.HeadDrift | Distractors.Flicker,   // no blinks: the lids would cover the pupils
        };
        var settings = new PreprocessSettings(Frames: 8, Size: 64, Selection: FrameSelection.Fdp, FaceDetect: true, Face: FaceMode.Fdp, Inputs: CacheInputs.Grey);
        foreach (var clip in SyntheticDataset.Plan(options).Take(3))
        {
            var frames = clip.RenderFrames();
            try
            {
                var landmarks = Enumerable.Range(0, clip.FrameCount).Select(i => (Point2d[]?)clip.Landmarks(i)).ToList();
                var grey = MotionPipeline.ProcessInputs(frames, 0, clip.Apex, clip.FrameCount - 1, settings, CacheInputs.Grey, landmarks)[CacheInputs.Grey];
                var positions = FrameSelector.Select(0, clip.Apex, clip.FrameCount - 1, 8, FrameSelection.Fdp);
                Assert.That((grey.T, grey.C, grey.H, grey.W), Is.EqualTo((8, 1, 64, 64)));
                for (int t = 0; t < 8; t++)
                {
                    int i = (int)positions[t];
                    var p = landmarks[i]!;
                    using var want = FaceCrops.FdpAlign(frames[i], p, 64);
                    for (int y = 0; y < 64; y += 7)
                        for (int x = 0; x < 64; x += 5)
                            Assert.That(grey.Data[t * 4096 + y * 64 + x] * 255, Is.EqualTo((double)want.At<byte>(y, x)).Within(1.5), $"clip {clip.Filename} frame {i} pixel ({x}, {y})");
                    var eyes = MapByHand(p, EyeCentres(p), 64);
                    Assert.That(eyes[0].Y, Is.EqualTo(eyes[1].Y).Within(1e-9), "the eye line is level");
                    for (int e = 0; e < 2; e++)
                    {
                        var (px, py) = DarkestSpot(grey.Data[(t * 4096)..((t + 1) * 4096)], eyes[e], 2);
                        Assert.That(px, Is.EqualTo(eyes[e].X).Within(0.5), $"clip {clip.Filename} frame {i} eye {e}: pupil x");
                        Assert.That(py, Is.EqualTo(eyes[e].Y).Within(1.0), $"clip {clip.Filename} frame {i} eye {e}: pupil y");
                    }
                }
            }
            finally
            {
                foreach (var f in frames) f.Dispose();
            }
        }
    }

    /// <summary>
    /// The minimum of the grey image blurred by a Gaussian of σ = 1 px within ±<paramref name="radius"/> px of
    /// <paramref name="near"/>, refined to sub-pixel by a parabola through its neighbours in x and in y.
    /// </summary>
    static (double X, double Y) DarkestSpot(float[] img, Point2d near, int radius)
    {
        const int n = 64;
        double Blur(int cx, int cy)
        {
            double s = 0, w = 0;
            for (int dy = -3; dy <= 3; dy++)
                for (int dx = -3; dx <= 3; dx++)
                {
                    int x = Math.Clamp(cx + dx, 0, n - 1), y = Math.Clamp(cy + dy, 0, n - 1);
                    double g = Math.Exp(-(dx * dx + dy * dy) / 2.0);
                    s += g * img[y * n + x];
                    w += g;
                }
            return s / w;
        }
        int bx = 0, by = 0;
        double best = double.MaxValue;
        for (int y = (int)Math.Round(near.Y) - radius; y <= (int)Math.Round(near.Y) + radius; y++)
            for (int x = (int)Math.Round(near.X) - radius; x <= (int)Math.Round(near.X) + radius; x++)
            {
                double v = Blur(x, y);
                if (v < best) { best = v; bx = x; by = y; }
            }
        static double Vertex(double l, double c, double r) => l - 2 * c + r > 0 ? 0.5 * (l - r) / (l - 2 * c + r) : 0;
        return (bx + Vertex(Blur(bx - 1, by), best, Blur(bx + 1, by)), by + Vertex(Blur(bx, by - 1), best, Blur(bx, by + 1)));
    }
}
