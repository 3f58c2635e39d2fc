// Trains a tiny SLSTT with leave-one-subject-out on toy clips made here, from the engine's packages only, and
// writes the run's report (metrics.json, report.md, confusion.png, curves.png). Exit code 0 when the run is
// complete, its charts are written and the model learned something (accuracy above chance); 1 otherwise.
using MicroExpr.Tensors;
using MicroExpr.Training;

string run = args.Length > 0 ? args[0] : Path.Combine(Path.GetTempPath(), "microexpr-sample-run");
if (Directory.Exists(run)) Directory.Delete(run, recursive: true);

// 3 subjects × 6 clips of [T=2, C=3, 16, 16]: the class is the quadrant of a bright square in the second frame.
var rng = new Rng(17);
var clips = new List<Clip>();
for (int s = 0; s < 3; s++)
    for (int i = 0; i < 6; i++)
    {
        int label = i % 3;
        var data = new float[2 * 3 * 16 * 16];
        for (int j = 0; j < data.Length; j++) data[j] = (float)(0.1 * rng.NextNormal());
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 6; y++)
                for (int x = 0; x < 6; x++)
                    data[((1 * 3 + c) * 16 + y + (label == 1 ? 8 : 1)) * 16 + x + (label == 2 ? 8 : 1)] += 1f;
        clips.Add(new Clip($"sub{s}/clip{i}", $"sub{s}", label, data));
    }
var set = new ClipSet(clips, ["left", "bottom", "right"], 2, 3, 16, "toy");

var options = new TrainOptions { Preset = "slstt-tiny", Epochs = 6, BatchSize = 6, LearningRate = 3e-3f, WarmupEpochs = 1 };
var folds = LosoRunner.Train(set, options, run, Device.Cpu, resume: false);
var summary = LosoRunner.Merge(run);

Console.WriteLine($"sample: {folds.Count} folds, {summary.Honest.Count} clips, UF1 {summary.Honest.Uf1:F3}, UAR {summary.Honest.Uar:F3}, accuracy {summary.Honest.Accuracy:F3}");
var missing = new[] { "metrics.json", "report.md", "confusion.png", "curves.png" }.Where(f => !File.Exists(Path.Combine(run, f))).ToList();
if (!summary.Complete || missing.Count > 0)
{
    Console.Error.WriteLine($"sample: error: run incomplete or files missing: {string.Join(", ", missing)}");
    return 1;
}
if (summary.Honest.Accuracy <= 1.0 / 3)
{
    Console.Error.WriteLine($"sample: error: accuracy {summary.Honest.Accuracy:F3} is not above chance (0.333)");
    return 1;
}
Console.WriteLine($"sample: report in {run}");
return 0;
