using System.Globalization;
using System.Text.RegularExpressions;
using MicroExpr.Data.Synthetic;
using MicroExpr.Data.Xlsx;
using OpenCvSharp;

namespace MicroExpr.Tests.Synthetic;

public class SyntheticTests
{
    static readonly SyntheticOptions Small = new() { Subjects = 2, ClipsPerSubject = 3, Size = 64, Frames = 12 };

    static byte[] Bytes(Mat m)
    {
        var b = new byte[m.Rows * m.Cols * m.ElemSize()];
        System.Runtime.InteropServices.Marshal.Copy(m.Data, b, 0, b.Length);
        return b;
    }

    static Mat Gray(Mat bgr)
    {
        var g = new Mat();
        Cv2.CvtColor(bgr, g, ColorConversionCodes.BGR2GRAY);
        return g;
    }

    [Test]
    public void SameSeedGivesIdenticalPixelsAndDifferentSeedDifferentOnes()
    {
        var a = SyntheticDataset.Plan(Small);
        var b = SyntheticDataset.Plan(Small);
        var c = SyntheticDataset.Plan(Small with { Seed = 2 });
        Assert.That(a.Select(x => (x.Filename, x.ActionUnitCoding, x.Onset, x.Apex, x.Offset, x.FirstFrameNumber)),
            Is.EqualTo(b.Select(x => (x.Filename, x.ActionUnitCoding, x.Onset, x.Apex, x.Offset, x.FirstFrameNumber))));
        foreach (int k in new[] { 0, a.Count - 1 })
        {
            // Render b's frames in reverse order: a frame does not depend on what was rendered before.
            var fb = Enumerable.Range(0, a[k].FrameCount).Reverse().ToDictionary(i => i, i => Bytes(b[k].RenderFrame(i)));
            for (int i = 0; i < a[k].FrameCount; i++)
            {
                using var fa = a[k].RenderFrame(i);
                Assert.That(Bytes(fa), Is.EqualTo(fb[i]), $"clip {k} frame {i}");
            }
            using var f0 = a[k].RenderFrame(a[k].Apex);
            using var f1 = c[k].RenderFrame(a[k].Apex);
            Assert.That(Bytes(f0), Is.Not.EqualTo(Bytes(f1)), "another seed, another clip");
        }
    }

    [Test]
    public void WrittenSetHasTheCasme2LayoutAndCodingFile()
    {
        string dir = Directory.CreateTempSubdirectory("synth").FullName;
        try
        {
            var summary = SyntheticDataset.Generate(Small, dir, preview: true);
            Assert.That(summary.Clips, Is.EqualTo(6));
            Assert.That(summary.FramesWritten, Is.EqualTo(6 * 12));
            Assert.That(summary.ClipsPerClass.Values.Sum(), Is.EqualTo(6));
            Assert.That(summary.ClipsPerSubject, Is.EqualTo(new Dictionary<string, int> { ["sub01"] = 3, ["sub02"] = 3 }));
            Assert.That(File.Exists(Path.Combine(dir, "preview.png")));
            string coding = Path.Combine(dir, "CASME2-coding-synthetic.xlsx");
            Assert.That(summary.CodingFile, Is.EqualTo(coding));

            var rows = XlsxReader.ReadSheet(coding);
            Assert.That(rows[0].Cells, Is.EqualTo(new[] { "Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion" }));
            Assert.That(rows, Has.Count.EqualTo(7));
            var megc = new Dictionary<string, string> { ["disgust"] = "negative", ["repression"] = "negative", ["happiness"] = "positive", ["surprise"] = "surprise" };
            var au = new Regex(@"^[LR]?\d+(\+[LR]?\d+)*$");
            foreach (var row in rows.Skip(1))
            {
                int subject = int.Parse(row[0], CultureInfo.InvariantCulture);
                string clipDir = Path.Combine(dir, "CASME2_RAW_selected", $"sub{subject:00}", row[1]);
                Assert.That(Directory.Exists(clipDir), clipDir);
                var numbers = Directory.GetFiles(clipDir, "*.jpg")
                    .Select(p => Path.GetFileNameWithoutExtension(p))
                    .Select(n => { Assert.That(n, Does.Match(@"^img\d+$")); return int.Parse(n[3..], CultureInfo.InvariantCulture); })
                    .Order().ToList();
                Assert.That(numbers, Has.Count.EqualTo(12));
                Assert.That(numbers, Is.EqualTo(Enumerable.Range(numbers[0], 12)), "consecutive frame numbers");
                int onset = int.Parse(row[2], CultureInfo.InvariantCulture), apex = int.Parse(row[3], CultureInfo.InvariantCulture), offset = int.Parse(row[4], CultureInfo.InvariantCulture);
                Assert.That(onset, Is.LessThan(apex));
                Assert.That(apex, Is.LessThan(offset));
                foreach (int f in new[] { onset, apex, offset })
                    Assert.That(numbers, Does.Contain(f), $"frame {f} of {row[1]}");
                Assert.That(row[5], Does.Match(au), "AU coding");
                Assert.That(megc.ContainsKey(row[6]), row[6]);
                using var img = Cv2.ImRead(Path.Combine(clipDir, $"img{apex}.jpg"));
                Assert.That(img.Width, Is.EqualTo(64));
                Assert.That(img.Height, Is.EqualTo(64));
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Test]
    public void ActionUnitSetsVaryWithinAnEmotionAndOverlapAcrossClassesWhileTheCoreAuStays()
    {
        var clips = SyntheticDataset.Plan(new SyntheticOptions { Subjects = 12, ClipsPerSubject = 20, Size = 32, Frames = 12, Classes = 5 });
        var sets = clips.Select(c => (c.Emotion, c.Class.Index, Set: MicroExpr.Data.ActionUnitCodes.ActionUnitParser.Parse(c.ActionUnitCoding))).ToList();
        foreach (var s in sets) Assert.That(s.Set.Canonical, Is.EqualTo(s.Set.Raw), "codings are written in canonical (CASME II) order");
        foreach (var g in sets.GroupBy(s => s.Emotion))
            Assert.That(g.Select(s => s.Set.Canonical).Distinct().Count(), Is.GreaterThanOrEqualTo(5), $"{g.Key}: AU sets vary within the emotion");
        // Whole sets shared by two emotions, and AUs shared by emotions of different 3-class MEGC classes.
        var emotionsPerSet = sets.GroupBy(s => s.Set.Canonical).ToDictionary(g => g.Key, g => g.Select(s => s.Emotion).Distinct().Count());
        Assert.That(emotionsPerSet.Values.Count(n => n > 1), Is.GreaterThanOrEqualTo(2), "some AU sets occur in two emotions");
        var megc = new Dictionary<string, int> { ["disgust"] = 0, ["repression"] = 0, ["happiness"] = 1, ["surprise"] = 2, ["others"] = -1 };
        var classesPerAu = sets.Where(s => megc[s.Emotion] >= 0).SelectMany(s => s.Set.Numbers.Select(n => (n, megc[s.Emotion])))
            .GroupBy(x => x.n).ToDictionary(g => g.Key, g => g.Select(x => x.Item2).Distinct().Count());
        Assert.That(classesPerAu[7], Is.EqualTo(3), "AU7 occurs in negative, positive and surprise clips");
        // Still learnable: each emotion's core AU is in every clip of it.
        var core = new Dictionary<string, int[]> { ["happiness"] = [12], ["disgust"] = [4, 9, 10], ["repression"] = [15, 17], ["surprise"] = [2], ["others"] = [7, 24] };
        foreach (var s in sets) Assert.That(s.Set.Numbers.Intersect(core[s.Emotion]), Is.Not.Empty, $"{s.Emotion} {s.Set}: a core AU");
        // The extras come from their own stream: the labels and core codings are the same as without them.
        var again = SyntheticDataset.Plan(new SyntheticOptions { Subjects = 12, ClipsPerSubject = 20, Size = 32, Frames = 12, Classes = 5, Seed = 2 });
        Assert.That(again.Select(c => c.ActionUnitCoding), Is.Not.EqualTo(clips.Select(c => c.ActionUnitCoding)), "another seed, other codings");
    }

    [Test]
    public void FiveClassesUseTheCasme2EmotionWords()
    {
        var clips = SyntheticDataset.Plan(Small with { Classes = 5, Subjects = 3, ClipsPerSubject = 5 });
        Assert.That(clips.Select(c => c.Emotion).Distinct().Order(),
            Is.EqualTo(new[] { "disgust", "happiness", "others", "repression", "surprise" }));
        Assert.That(clips.All(c => c.Class.Name == c.Emotion));
        foreach (var g in clips.GroupBy(c => c.Subject))
            Assert.That(g.Select(c => c.Label).Distinct().Count(), Is.EqualTo(5), "balanced within a subject");
    }

    static Mat Flow(Mat from, Mat to)
    {
        using var g0 = Gray(from);
        using var g1 = Gray(to);
        var flow = new Mat();
        Cv2.CalcOpticalFlowFarneback(g0, g1, flow, 0.5, 3, 15, 3, 5, 1.2, OpticalFlowFlags.None);
        return flow;
    }

    [Test]
    public void ApexMotionIsAboutOnePixelAndLocal()
    {
        var options = new SyntheticOptions { Subjects = 3, ClipsPerSubject = 3, Size = 128, Frames = 24, Distractors = Distractors.None };
        var clips = SyntheticDataset.Plan(options);
        foreach (var clip in clips)
        {
            var (dx, dy) = clip.ExpressionDisplacement(clip.Apex);
            var known = dx.Zip(dy, (x, y) => Math.Sqrt(x * x + y * y)).ToArray();
            double peak = known.Max();
            Assert.That(peak, Is.InRange(0.5, 2.0), $"{clip.ActionUnitCoding}: peak displacement");
            double moving = known.Count(m => m > 0.2) / (double)known.Length;
            Assert.That(moving, Is.LessThan(0.15), $"{clip.ActionUnitCoding}: the deformation is local (share of pixels moving > 0.2 px)");
            Assert.That(clip.Intensity(clip.Onset), Is.Zero);
            Assert.That(clip.Intensity(clip.Apex), Is.EqualTo(1));
            Assert.That(clip.Intensity(clip.Offset), Is.Zero);

            using var onset = clip.RenderFrame(clip.Onset);
            using var apex = clip.RenderFrame(clip.Apex);
            using var flow = Flow(onset, apex);
            flow.GetArray(out Vec2f[] f);
            double dot = 0, nk = 0, nf = 0;
            var outside = new List<double>();
            for (int i = 0; i < f.Length; i++)
            {
                if (known[i] > 0.5 * peak)
                {
                    dot += f[i].Item0 * dx[i] + f[i].Item1 * dy[i];
                    nk += known[i] * known[i];
                    nf += f[i].Item0 * f[i].Item0 + f[i].Item1 * f[i].Item1;
                }
                else if (known[i] < 0.02)
                {
                    outside.Add(Math.Sqrt(f[i].Item0 * f[i].Item0 + f[i].Item1 * f[i].Item1));
                }
            }
            double cosine = dot / Math.Sqrt(nk * nf), gainRatio = Math.Sqrt(nf / nk);
            outside.Sort();
            double p95 = outside[(int)(0.95 * (outside.Count - 1))];
            TestContext.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{clip.Class.Name,-9} {clip.ActionUnitCoding,-7} peak {peak:0.00} px, moving {moving:P1}, Farneback vs known in AU region: cos {cosine:0.00}, |flow|/|known| {gainRatio:0.00}; outside p95 {p95:0.000} px"));
            Assert.That(cosine, Is.GreaterThan(0.8), "Farneback sees the AU motion in its direction");
            // Farneback's window underestimates small blobs (AU7's lids, σ ≈ 0.4 eye half-widths): 1+2+7 at 0.96 px gives 0.497.
            Assert.That(gainRatio, Is.InRange(0.45, 1.5), "and with about its size");
            Assert.That(p95, Is.LessThan(0.1), "little motion outside the AU regions");
        }
    }

    [Test]
    public void DriftIsGlobalAndSmall()
    {
        var options = new SyntheticOptions { Subjects = 2, ClipsPerSubject = 2, Size = 128, Distractors = Distractors.HeadDrift };
        foreach (var clip in SyntheticDataset.Plan(options))
        {
            var p0 = clip.Pose(0);
            var p1 = clip.Pose(clip.FrameCount - 1);
            double shift = Math.Sqrt(Math.Pow(p1.Tx - p0.Tx, 2) + Math.Pow(p1.Ty - p0.Ty, 2));
            double rotationPx = Math.Abs(p1.Rotation - p0.Rotation) * clip.Face.HalfHeight;
            Assert.That(shift, Is.LessThanOrEqualTo(1.8), "head drift translation over the clip");
            Assert.That(rotationPx, Is.LessThanOrEqualTo(1.0), "head drift rotation over the clip, at the face's edge");
        }
    }

    // ---- "The task needs motion, not appearance" ----

    sealed record Sample(int Subject, int Label, double[] Appearance, double[] Motion, double MeanAbsDiff);

    static double[] Flatten(Mat m)
    {
        using var f = new Mat();
        m.ConvertTo(f, MatType.CV_32F);
        var v = new float[f.Rows * f.Cols * f.Channels()];
        System.Runtime.InteropServices.Marshal.Copy(f.Data, v, 0, v.Length);
        return v.Select(x => (double)x).ToArray();
    }

    static Sample Features(SyntheticClip clip)
    {
        using var onset = clip.RenderFrame(clip.Onset);
        using var apex = clip.RenderFrame(clip.Apex);
        using var g0 = Gray(onset);
        using var g1 = Gray(apex);

        // Appearance: the apex frame at 16 × 16, standardised (mean 0, sd 1).
        using var small = new Mat();
        Cv2.Resize(g1, small, new OpenCvSharp.Size(16, 16), 0, 0, InterpolationFlags.Area);
        var app = Flatten(small);
        double mean = app.Average(), sd = Math.Sqrt(app.Select(x => (x - mean) * (x - mean)).Average());
        app = app.Select(x => (x - mean) / sd).ToArray();

        // Motion: Farneback onset → apex (SLSTT's parameters), head drift removed by a robust affine fit to the
        // whole flow field, averaged over a 16 × 16 grid.
        using var flow = new Mat();
        Cv2.CalcOpticalFlowFarneback(g0, g1, flow, 0.5, 3, 15, 3, 5, 1.2, OpticalFlowFlags.None);
        flow.GetArray(out Vec2f[] f);
        var residual = RemoveAffine(f, flow.Cols);
        using var centred = Mat.FromPixelData(flow.Rows, flow.Cols, MatType.CV_32FC2, residual);
        using var grid = new Mat();
        Cv2.Resize(centred, grid, new OpenCvSharp.Size(16, 16), 0, 0, InterpolationFlags.Area);
        var motion = Flatten(grid);

        using var diff = new Mat();
        Cv2.Absdiff(g0, g1, diff);
        return new Sample(clip.Subject, clip.Label, app, motion, Cv2.Mean(diff).Val0);
    }

    /// <summary>
    /// The flow minus a global affine motion u = a0 + a1·x + a2·y (likewise v), fitted by iteratively reweighted least
    /// squares (Huber weights, 0.3 px) so that the local AU motion and blinks barely pull the fit.
    /// </summary>
    static Vec2f[] RemoveAffine(Vec2f[] f, int width)
    {
        var w = Enumerable.Repeat(1.0, f.Length).ToArray();
        var r = f;
        int height = f.Length / width;
        for (int iter = 0; iter < 3; iter++)
        {
            var A = new double[3, 3];
            var bu = new double[3];
            var bv = new double[3];
            for (int i = 0; i < f.Length; i++)
            {
                double[] p = [1, (i % width) / (double)width - 0.5, (i / width) / (double)height - 0.5];
                for (int a = 0; a < 3; a++)
                {
                    for (int b = 0; b < 3; b++) A[a, b] += w[i] * p[a] * p[b];
                    bu[a] += w[i] * p[a] * f[i].Item0;
                    bv[a] += w[i] * p[a] * f[i].Item1;
                }
            }
            var cu = Solve3(A, bu);
            var cv = Solve3(A, bv);
            r = new Vec2f[f.Length];
            for (int i = 0; i < f.Length; i++)
            {
                double x = (i % width) / (double)width - 0.5, y = (i / width) / (double)height - 0.5;
                r[i] = new Vec2f((float)(f[i].Item0 - cu[0] - cu[1] * x - cu[2] * y), (float)(f[i].Item1 - cv[0] - cv[1] * x - cv[2] * y));
                double m = Math.Sqrt(r[i].Item0 * r[i].Item0 + r[i].Item1 * r[i].Item1);
                w[i] = m < 0.3 ? 1 : 0.3 / m;
            }
        }
        return r;
    }

    /// <summary>Cramer's rule for a 3 × 3 system.</summary>
    static double[] Solve3(double[,] A, double[] b)
    {
        static double Det(double[,] m) =>
            m[0, 0] * (m[1, 1] * m[2, 2] - m[1, 2] * m[2, 1]) - m[0, 1] * (m[1, 0] * m[2, 2] - m[1, 2] * m[2, 0]) + m[0, 2] * (m[1, 0] * m[2, 1] - m[1, 1] * m[2, 0]);
        double d = Det(A);
        var x = new double[3];
        for (int k = 0; k < 3; k++)
        {
            var m = (double[,])A.Clone();
            for (int row = 0; row < 3; row++) m[row, k] = b[row];
            x[k] = Det(m) / d;
        }
        return x;
    }

    /// <summary>
    /// Nearest class median (L1 distance to the per-feature median of each class), leave-one-subject-out; UF1 over the
    /// pooled predictions. Medians and L1 keep the rare large values (a blink caught at the apex) from dominating.
    /// </summary>
    static double LosoNearestCentroidUf1(IReadOnlyList<Sample> samples, Func<Sample, double[]> feature, int classes)
    {
        var predictions = new List<(int Truth, int Predicted)>();
        foreach (int test in samples.Select(s => s.Subject).Distinct())
        {
            var train = samples.Where(s => s.Subject != test).ToList();
            Assert.That(train.Any(s => s.Subject == test), Is.False);
            var centroids = Enumerable.Range(0, classes).Select(c =>
            {
                var members = train.Where(s => s.Label == c).Select(feature).ToList();
                return Enumerable.Range(0, members[0].Length).Select(j =>
                {
                    var v = members.Select(m => m[j]).Order().ToArray();
                    return (v[(v.Length - 1) / 2] + v[v.Length / 2]) / 2;
                }).ToArray();
            }).ToArray();
            foreach (var s in samples.Where(s => s.Subject == test))
            {
                var x = feature(s);
                int best = Enumerable.Range(0, classes).MinBy(c => x.Zip(centroids[c], (a, b) => Math.Abs(a - b)).Sum());
                predictions.Add((s.Label, best));
            }
        }
        double f1 = 0;
        for (int c = 0; c < classes; c++)
        {
            int tp = predictions.Count(p => p.Truth == c && p.Predicted == c);
            int fp = predictions.Count(p => p.Truth != c && p.Predicted == c);
            int fn = predictions.Count(p => p.Truth == c && p.Predicted != c);
            f1 += tp == 0 ? 0 : 2.0 * tp / (2.0 * tp + fp + fn);
        }
        return f1 / classes;
    }

    [Test]
    public void ClassesAreSeparableByMotionButNotByAppearance()
    {
        var options = new SyntheticOptions { Subjects = 8, ClipsPerSubject = 9, Size = 128, Frames = 24, Seed = 7 };
        var clips = SyntheticDataset.Plan(options);
        var samples = new Sample[clips.Count];
        Parallel.For(0, clips.Count, i => samples[i] = Features(clips[i]));

        double appearance = LosoNearestCentroidUf1(samples, s => s.Appearance, 3);
        double motion = LosoNearestCentroidUf1(samples, s => s.Motion, 3);
        double mad = LosoNearestCentroidUf1(samples, s => [s.MeanAbsDiff], 3);
        // Share of the mean-absolute-difference's variance explained by the class (η²).
        double grand = samples.Average(s => s.MeanAbsDiff);
        double between = samples.GroupBy(s => s.Label).Sum(g => g.Count() * Math.Pow(g.Average(s => s.MeanAbsDiff) - grand, 2));
        double total = samples.Sum(s => Math.Pow(s.MeanAbsDiff - grand, 2));
        double eta2 = between / total;
        TestContext.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"LOSO nearest class median (L1), {samples.Length} clips, {options.Subjects} subjects: appearance (apex pixels) UF1 {appearance:0.000}, motion (Farneback onset->apex) UF1 {motion:0.000}, mean |apex-onset| UF1 {mad:0.000} (eta2 {eta2:0.000})"));
        foreach (var g in samples.GroupBy(s => s.Label).OrderBy(g => g.Key))
            TestContext.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  class {g.Key}: mean |apex-onset| {g.Average(s => s.MeanAbsDiff):0.00} grey levels"));

        Assert.That(appearance, Is.LessThan(0.55), "a single frame must not reveal the class");
        Assert.That(motion, Is.GreaterThan(0.8), "the motion does");
        Assert.That(mad, Is.LessThan(0.55), "nor does the global amount of frame difference");
        Assert.That(eta2, Is.LessThan(0.2));
    }
}
