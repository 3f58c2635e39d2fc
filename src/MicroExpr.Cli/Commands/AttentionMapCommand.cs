using MicroExpr.Cli.Args;
using MicroExpr.Cli.Explain;
using MicroExpr.Data;
using MicroExpr.Models;
using MicroExpr.Tensors;
using MicroExpr.Tensors.Autograd;
using MicroExpr.Training;

namespace MicroExpr.Cli.Commands;

/// <summary>
/// <c>microexpr attention-map --model RUN (--frames DIR | --video FILE | --clip CACHED) [--out DIR]</c>: what a trained
/// attention model (SLSTT, STT: <see cref="IAttentionModel"/>) looks at in one clip — the class token's attention over the
/// patches per layer and head, attention rollout, and the weights over frames — drawn over the clip's motion image and
/// face crop (<see cref="AttentionMapReport"/>). The clip is preprocessed exactly as for <c>predict</c> (the run's cache
/// settings), or read from the run's cache by name (<c>--clip</c>).
/// </summary>
internal static class AttentionMapCommand
{
    public static CommandSpec Spec { get; } = new("attention-map",
        "Draw a trained attention model's maps for one clip: class-token attention per layer and head, rollout, weights over frames.",
        [
            new("model", OptionKind.Text, "training run folder (uses RUN/final/model.safetensors) or a model .safetensors file inside a run"),
            new("frames", OptionKind.Text, "folder of frames (as predict)"),
            new("video", OptionKind.Text, "video file (as predict)"),
            new("clip", OptionKind.Text, "a clip of the run's cache, by name (as in index.json: CLIP, SUBJECT/CLIP or DATASET/SUBJECT/CLIP)"),
            new("onset", OptionKind.Int, "onset frame, for --frames or --video (as predict)", null, 0),
            new("apex", OptionKind.Int, "apex frame (as predict)", null, 0),
            new("offset", OptionKind.Int, "offset frame (as predict)", null, 0),
            new("out", OptionKind.Text, "folder for the PNGs and attention.html", "attention-map"),
            new("device", OptionKind.Text, "auto, cpu, cuda or ilgpu-cpu", "auto"),
        ]);

    /// <summary>The one-line refusal for a model without attention.</summary>
    public static CliUsageException NoAttention(IMerModelConfig config, string modelPath) =>
        new($"{modelPath}: model {config.Name} ({config.Family}) has no attention to draw; attention maps exist for the slstt and stt presets");

    public static int Run(IReadOnlyList<string> args)
    {
        if (!ArgParser.ParseOrHelp(Spec, args, out var a)) return Entry.Ok;
        string modelArg = a.Text("model") ?? throw new CliUsageException("attention-map: --model RUN is required");
        string? video = a.Text("video"), framesDir = a.Text("frames"), cached = a.Text("clip");
        if (new[] { video, framesDir, cached }.Count(x => x != null) != 1)
            throw new CliUsageException("attention-map: give exactly one of --frames DIR, --video FILE or --clip CACHED");
        if (cached != null && (a.Has("onset") || a.Has("apex") || a.Has("offset")))
            throw new CliUsageException("attention-map: --onset/--apex/--offset are for --frames and --video; a cached clip has its own");
        string outDir = a.Text("out") ?? "attention-map";
        var device = DeviceOption.Resolve(a);

        var (modelPath, settings, classes, data) = PredictCommand.Locate(modelArg);
        using var model = Weights.LoadModel(modelPath);
        if (model is not IAttentionModel attention) throw NoAttention(model.Config, modelPath);
        outDir = OutFolder.Prepare("out", outDir);
        model.To(device);

        IReadOnlyDictionary<InputKind, ClipTensor> inputs;
        IReadOnlyDictionary<CacheInputs, ClipTensor> display;
        string name;
        if (cached != null)
            (inputs, display, name) = FromCache(data, cached, model.Config, modelPath);
        else
        {
            using var clip = PredictCommand.LoadFrames(a, framesDir, video, settings);
            inputs = PredictCommand.Inputs(clip.Frames, clip.Onset, clip.Apex, clip.Offset, settings, model.Config, modelPath, out display, forDisplay: true, landmarks: clip.Landmarks);
            name = clip.Name;
        }

        using (GradMode.NoGrad())
        using (new TensorScope())
        {
            model.Training = false;
            var batch = new ModelBatch(inputs.ToDictionary(p => p.Key, p => Tensor.FromSpan(p.Value.Data, [1, p.Value.T, p.Value.C, p.Value.H, p.Value.W], device)));
            var probs = model.Forward(batch).Logits.Softmax().ToArray();
            string page = AttentionMapReport.Write(outDir, attention.Attention(batch), display, classes, probs, name);
            Console.Out.WriteLine($"attention maps of {model.Config.Name} for {name}: {page}");
        }
        return Entry.Ok;
    }

    /// <summary>
    /// A clip of the run's cache by name: the kinds the model reads, and for display the motion frames and the RGB face
    /// frames when the cache holds them (the model's inputs otherwise).
    /// </summary>
    private static (IReadOnlyDictionary<InputKind, ClipTensor>, IReadOnlyDictionary<CacheInputs, ClipTensor>, string) FromCache(string data, string name,
        IMerModelConfig config, string modelPath)
    {
        var cache = PreprocessedCache.Open(data);
        var matches = cache.Clips.Where(c => c.Clip == name || $"{c.Subject}/{c.Clip}" == name || $"{c.Dataset}/{c.Subject}/{c.Clip}" == name).ToList();
        if (matches.Count != 1)
            throw new CliUsageException(matches.Count == 0
                ? $"--clip {name}: no such clip in the run's cache {data} (it has e.g. {string.Join(", ", cache.Clips.Take(3).Select(c => $"{c.Subject}/{c.Clip}"))})"
                : $"--clip {name}: {matches.Count} clips of the cache {data} have that name; give SUBJECT/CLIP or DATASET/SUBJECT/CLIP");
        var entry = matches[0];
        var display = new Dictionary<CacheInputs, ClipTensor>();
        foreach (var input in entry.Inputs.Where(i => i.Kind is CacheInputs.Motion or CacheInputs.Rgb || (PredictCommand.Kinds(config, modelPath) & i.Kind) != 0))
            display[input.Kind] = new ClipTensor(input.Kind, cache.Load(entry, input.Kind), input.Frames, input.Channels, input.Height, input.Width);
        var inputs = new Dictionary<InputKind, ClipTensor>();
        foreach (var shape in config.Inputs)
        {
            var kind = CacheKinds.ToCache(shape.Kind)!.Value;
            if (!display.TryGetValue(kind, out var x)) throw new InvalidDataException($"{data}: clip {name} has no {InputShape.Describe(shape.Kind)}, which {config.Name} reads");
            inputs[shape.Kind] = x;
        }
        return (inputs, display, $"{entry.Subject}/{entry.Clip}");
    }
}
