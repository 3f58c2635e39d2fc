using System.Diagnostics;
using System.Globalization;
using MicroExpr.Cli.Args;
using MicroExpr.Data.Synthetic;

namespace MicroExpr.Cli.Commands;

/// <summary><c>microexpr synth</c>: writes the synthetic micro-expression set (CASME II layout) with <see cref="SyntheticDataset"/>.</summary>
internal static class SynthCommand
{
    public static CommandSpec Spec { get; } = new("synth",
        "Generate a synthetic micro-expression data set in the CASME II layout (no licensed data needed).",
        [
            new("out", OptionKind.Text, "output folder (required)"),
            new("subjects", OptionKind.Int, "number of subjects (distinct procedural faces)", "8", 1),
            new("clips-per-subject", OptionKind.Int, "clips per subject (classes balanced within a subject)", "6", 1),
            new("classes", OptionKind.Int, "3 (negative/positive/surprise) or 5 (happiness/disgust/repression/surprise/others)", "3", 3),
            new("seed", OptionKind.Int, "random seed: the same seed gives the same pixels", "1", 0),
            new("size", OptionKind.Int, "frame width and height in pixels", "128", 32),
            new("frames", OptionKind.Int, "frames per clip", "24", 12),
            new("preview", OptionKind.Switch, "also write DIR/preview.png (onset, apex, difference x20, field; one clip per class)"),
        ],
        "Writes DIR/CASME2_RAW_selected/subNN/EPxx_yy/img<n>.jpg and DIR/CASME2-coding-synthetic.xlsx (Subject, Filename,\n" +
        "OnsetFrame, ApexFrame, OffsetFrame, Action Units, Estimated Emotion). Each clip is a local action-unit deformation\n" +
        "of 0.8-1.6 px (at 128 px) rising from onset to apex and fading by the offset, with blinks, head drift, sensor noise\n" +
        "and illumination flicker in every class. Class -> AU mapping: see DIR/synthetic-readme.txt.");

    public static int Run(IReadOnlyList<string> args)
    {
        if (!ArgParser.ParseOrHelp(Spec, args, out var parsed)) return Entry.Ok;
        string outDir = parsed.Text("out") ?? throw new CliUsageException("option --out DIR is required; see 'microexpr synth --help'");
        OutFolder.Prepare("out", outDir);
        int classes = parsed.Int("classes", 3);
        if (classes is not (3 or 5))
            throw new CliUsageException($"option --classes expects 3 or 5, got '{classes}'");
        var options = new SyntheticOptions
        {
            Subjects = parsed.Int("subjects", 8),
            ClipsPerSubject = parsed.Int("clips-per-subject", 6),
            Classes = classes,
            Seed = parsed.Int("seed", 1),
            Size = parsed.Int("size", 128),
            Frames = parsed.Int("frames", 24),
        };
        if (options.Subjects > 99) throw new CliUsageException("option --subjects expects at most 99");
        if (options.ClipsPerSubject > 99) throw new CliUsageException("option --clips-per-subject expects at most 99");
        if (options.Size > 1024) throw new CliUsageException("option --size expects at most 1024");
        if (options.Frames > 1000) throw new CliUsageException("option --frames expects at most 1000");

        bool tty = !Console.IsErrorRedirected;
        var last = Stopwatch.StartNew();
        var gate = new Lock();
        Action<int, int>? progress = tty ? (done, total) =>
        {
            lock (gate)
            {
                if (done < total && last.ElapsedMilliseconds < 100) return;
                last.Restart();
                Console.Error.Write($"\rsynth: {done}/{total} clips");
                if (done == total) Console.Error.WriteLine();
            }
        } : null;

        SyntheticSummary summary;
        try
        {
            summary = SyntheticDataset.Generate(options, Path.GetFullPath(outDir), parsed.Switch("preview"), progress);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            Console.Error.WriteLine($"microexpr synth: {e.Message}");
            return Entry.Failed;
        }

        var o = Console.Out;
        var inv = CultureInfo.InvariantCulture;
        o.WriteLine(string.Create(inv, $"synthetic data set: {summary.Clips} clips, {summary.FramesWritten} frames ({options.Size} px, {options.Frames} per clip), seed {options.Seed}, {summary.Elapsed.TotalSeconds:0.0} s"));
        o.WriteLine($"  clips per class:   {string.Join(", ", summary.ClipsPerClass.Select(kv => $"{kv.Key} {kv.Value}"))}");
        o.WriteLine($"  clips per emotion: {string.Join(", ", summary.ClipsPerEmotion.Select(kv => $"{kv.Key} {kv.Value}"))}");
        o.WriteLine($"  clips per subject: {string.Join(", ", summary.ClipsPerSubject.Select(kv => $"{kv.Key} {kv.Value}"))}");
        o.WriteLine($"  frames:      {summary.RawDir}");
        o.WriteLine($"  coding file: {summary.CodingFile}");
        if (summary.Preview != null) o.WriteLine($"  preview:     {summary.Preview}");
        return Entry.Ok;
    }
}
