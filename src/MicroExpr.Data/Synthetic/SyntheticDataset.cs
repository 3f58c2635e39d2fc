using System.Diagnostics;
using System.Globalization;
using System.Text;
using MicroExpr.Data.Xlsx;
using OpenCvSharp;

namespace MicroExpr.Data.Synthetic;

/// <summary>
/// The engine's embedded default data: a synthetic micro-expression set in the CASME II layout, so that everything runs
/// on a fresh machine without licensed data.
/// <code>
/// DIR/CASME2_RAW_selected/sub01/EP01_03/img46.jpg …   (frame numbers in the names, from a random first number)
/// DIR/CASME2_RAW_selected/sub01/EP01_03/landmarks.csv (the true 68 landmarks of every frame: Faces.LandmarkFile)
/// DIR/CASME2-coding-synthetic.xlsx                    (Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame, Action Units, Estimated Emotion)
/// DIR/synthetic-readme.txt                            (options, class → emotion → AU mapping)
/// DIR/preview.png                                     (optional: onset, apex, |apex − onset|×20, expression field per class)
/// </code>
/// Classes are balanced within each subject (clip j of a subject gets class (offset + j) mod C, in shuffled order).
/// See <see cref="ActionUnits"/> for the class → AU mapping, <see cref="SyntheticFace"/> for the face model and
/// <see cref="SyntheticClip"/> for timing and distractors.
/// </summary>
public static class SyntheticDataset
{
    public const string RawFolder = "CASME2_RAW_selected";
    public const string CodingFileName = "CASME2-coding-synthetic.xlsx";
    public const string PreviewFileName = "preview.png";
    public static readonly IReadOnlyList<string> CodingHeader =
        ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion"];

    /// <summary>The clips of a data set, in memory (faces are shared per subject; nothing is rendered yet).</summary>
    public static IReadOnlyList<SyntheticClip> Plan(SyntheticOptions options)
    {
        options.Validate();
        var classes = ActionUnits.ClassesFor(options.Classes);
        var clips = new List<SyntheticClip>();
        for (int subject = 1; subject <= options.Subjects; subject++)
        {
            var face = SyntheticFace.Create(subject, options.Size, options.Seed);
            var r = SynthRandom.Derive(options.Seed, "labels", subject);
            int start = (subject - 1) % classes.Count;
            var labels = Enumerable.Range(0, options.ClipsPerSubject).Select(j => (start + j) % classes.Count).ToList();
            r.Shuffle(labels);
            for (int j = 0; j < options.ClipsPerSubject; j++)
            {
                var cls = classes[labels[j]];
                string emotion = r.Pick(cls.Emotions);
                string core = r.Pick(ActionUnits.Codings[emotion]);
                string coding = ActionUnits.Compose(core, emotion, SynthRandom.Derive(options.Seed, "extra-aus", subject, j));
                clips.Add(new SyntheticClip(face, j, cls, emotion, coding, options));
            }
        }
        return clips;
    }

    /// <summary>
    /// Writes the data set under <paramref name="outDir"/>. <paramref name="progress"/> is called with (clips done, clips)
    /// from worker threads. Frames are JPEG (quality <see cref="SyntheticOptions.JpegQuality"/>).
    /// </summary>
    public static SyntheticSummary Generate(SyntheticOptions options, string outDir, bool preview = false, Action<int, int>? progress = null)
    {
        var watch = Stopwatch.StartNew();
        var clips = Plan(options);
        string raw = Path.Combine(outDir, RawFolder);
        Directory.CreateDirectory(raw);
        int done = 0, frames = 0;
        var jpeg = new ImageEncodingParam(ImwriteFlags.JpegQuality, options.JpegQuality);
        Parallel.For(0, clips.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount) }, k =>
        {
            var clip = clips[k];
            string dir = Path.Combine(raw, clip.SubjectFolder, clip.Filename);
            // A clip folder left by an earlier set (other frame numbers) must not mix its frames into this one.
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            Directory.CreateDirectory(dir);
            for (int i = 0; i < clip.FrameCount; i++)
            {
                using var frame = clip.RenderFrame(i);
                string path = Path.Combine(dir, clip.FrameFileName(i));
                if (!Cv2.ImWrite(path, frame, jpeg))
                    throw new IOException($"could not write {path}");
            }
            Faces.LandmarkFile.Write(Path.Combine(dir, Faces.LandmarkFile.FileName),
                Enumerable.Range(0, clip.FrameCount).Select(i => (clip.FirstFrameNumber + i, (IReadOnlyList<Point2d>)clip.Landmarks(i))));
            Interlocked.Add(ref frames, clip.FrameCount);
            progress?.Invoke(Interlocked.Increment(ref done), clips.Count);
        });

        string coding = Path.Combine(outDir, CodingFileName);
        XlsxWriter.Write(coding, "Sheet1", CodingRows(clips));
        File.WriteAllText(Path.Combine(outDir, "synthetic-readme.txt"), Readme(options));
        string? previewPath = null;
        if (preview)
        {
            previewPath = Path.Combine(outDir, PreviewFileName);
            WritePreview(clips, previewPath);
        }
        foreach (var face in clips.Select(c => c.Face).Distinct()) face.Dispose();

        var perClass = ActionUnits.ClassesFor(options.Classes).ToDictionary(c => c.Name, c => clips.Count(x => x.Class.Index == c.Index));
        var perEmotion = clips.GroupBy(c => c.Emotion).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count());
        var perSubject = clips.GroupBy(c => c.SubjectFolder).ToDictionary(g => g.Key, g => g.Count());
        return new SyntheticSummary(outDir, raw, coding, perClass, perEmotion, perSubject, clips.Count, frames, watch.Elapsed, previewPath);
    }

    /// <summary>The coding sheet: header, then one row per clip (subject, folder, frame numbers, AU coding, emotion).</summary>
    public static IEnumerable<IReadOnlyList<string>> CodingRows(IEnumerable<SyntheticClip> clips)
    {
        yield return CodingHeader;
        foreach (var c in clips.OrderBy(c => c.Subject).ThenBy(c => c.Filename, StringComparer.Ordinal))
            yield return
            [
                c.Subject.ToString("00", CultureInfo.InvariantCulture), c.Filename,
                c.OnsetFrame.ToString(CultureInfo.InvariantCulture), c.ApexFrame.ToString(CultureInfo.InvariantCulture),
                c.OffsetFrame.ToString(CultureInfo.InvariantCulture), c.ActionUnitCoding, c.Emotion,
            ];
    }

    static string Readme(SyntheticOptions o)
    {
        var sb = new StringBuilder();
        sb.AppendLine("Synthetic micro-expression data set written by MicroExpr.Engine (microexpr synth). Not real faces.");
        sb.AppendLine(CultureInfo.InvariantCulture, $"seed {o.Seed}, {o.Subjects} subjects x {o.ClipsPerSubject} clips, {o.Classes} classes, {o.Size} px, {o.Frames} frames per clip, distractors: {o.Distractors}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"expression peak displacement {o.MinAmplitude}-{o.MaxAmplitude} px at 128 px (scaled with the size)");
        sb.AppendLine("Layout as CASME II: CASME2_RAW_selected/subNN/EPxx_yy/img<frame>.jpg, coding file " + CodingFileName + ".");
        sb.AppendLine("Classes -> emotion words (Estimated Emotion) -> action-unit codings: one core coding plus each extra AU with its probability (L/R = subject's left/right):");
        foreach (var c in ActionUnits.ClassesFor(o.Classes))
            foreach (var e in c.Emotions)
                sb.AppendLine(CultureInfo.InvariantCulture,
                    $"  {c.Index} {c.Name}: {e}: core {string.Join(", ", ActionUnits.Codings[e])}; extra {string.Join(", ", ActionUnits.Extras[e].Select(x => $"AU{x.Au} (p {x.P.ToString(CultureInfo.InvariantCulture)})"))}");
        sb.AppendLine("Distractors in every class, timed independently of it: blinks, head drift, static pose jitter, sensor noise, illumination flicker.");
        return sb.ToString();
    }

    /// <summary>
    /// A PNG montage, one row per class (its first clip): onset, apex, |apex − onset| × 20 (grey), and the expression
    /// field's magnitude at the apex (colour map, 0–2 px), each enlarged to at least 192 px.
    /// </summary>
    public static void WritePreview(IReadOnlyList<SyntheticClip> clips, string path)
    {
        // One clip per class, from different subjects where possible.
        var subjects = clips.Select(c => c.Subject).Distinct().Order().ToList();
        var rows = clips.GroupBy(c => c.Class.Index).OrderBy(g => g.Key)
            .Select(g => g.FirstOrDefault(c => c.Subject == subjects[g.Key % subjects.Count]) ?? g.First()).ToList();
        if (rows.Count == 0) throw new ArgumentException("no clips to preview", nameof(clips));
        int S = rows[0].Face.Size;
        int zoom = Math.Max(1, (int)Math.Ceiling(192.0 / S));
        int P = S * zoom, label = 22, pad = 4;
        using var canvas = new Mat(rows.Count * (P + label + pad) + pad, 4 * (P + pad) + pad, MatType.CV_8UC3, new Scalar(40, 40, 40));
        for (int r = 0; r < rows.Count; r++)
        {
            var clip = rows[r];
            using var onset = clip.RenderFrame(clip.Onset);
            using var apex = clip.RenderFrame(clip.Apex);
            using var g0 = new Mat();
            using var g1 = new Mat();
            Cv2.CvtColor(onset, g0, ColorConversionCodes.BGR2GRAY);
            Cv2.CvtColor(apex, g1, ColorConversionCodes.BGR2GRAY);
            using var diff = new Mat();
            Cv2.Absdiff(g1, g0, diff);
            diff.ConvertTo(diff, MatType.CV_8UC1, 20);
            using var diffBgr = new Mat();
            Cv2.CvtColor(diff, diffBgr, ColorConversionCodes.GRAY2BGR);
            var (dx, dy) = clip.ExpressionDisplacement(clip.Apex);
            using var mag = new Mat(S, S, MatType.CV_8UC1);
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++)
                {
                    int i = y * S + x;
                    mag.Set(y, x, (byte)Math.Clamp((int)(127.5 * Math.Sqrt(dx[i] * dx[i] + dy[i] * dy[i]) * 128.0 / S), 0, 255));
                }
            using var heat = new Mat();
            Cv2.ApplyColorMap(mag, heat, ColormapTypes.Jet);
            Mat[] panels = [onset, apex, diffBgr, heat];
            int top = pad + r * (P + label + pad);
            for (int p = 0; p < panels.Length; p++)
            {
                using var big = new Mat();
                Cv2.Resize(panels[p], big, new OpenCvSharp.Size(P, P), 0, 0, p < 2 ? InterpolationFlags.Cubic : InterpolationFlags.Nearest);
                using var roi = new Mat(canvas, new Rect(pad + p * (P + pad), top + label, P, P));
                big.CopyTo(roi);
            }
            string text = $"{clip.Class.Name} ({clip.Emotion}, AU {clip.ActionUnitCoding}) {clip.SubjectFolder}/{clip.Filename}  onset|apex|diff x20|field 0-2px";
            Cv2.PutText(canvas, text, new Point(pad, top + label - 7), HersheyFonts.HersheySimplex, 0.42, new Scalar(230, 230, 230), 1, LineTypes.AntiAlias);
        }
        if (!Cv2.ImWrite(path, canvas))
            throw new IOException($"could not write {path}");
    }
}
