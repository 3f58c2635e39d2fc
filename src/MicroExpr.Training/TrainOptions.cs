using MicroExpr.Models;
using MicroExpr.Tensors;

namespace MicroExpr.Training;

/// <summary>Everything that decides a training run. Saved in the run folder; a resumed run must use the same.</summary>
public sealed record TrainOptions
{
    public string Preset { get; init; } = "slstt-tiny";
    /// <summary>Fields of the preset's config changed, "KEY=VALUE,…" (<c>--set</c>; see <see cref="ModelRegistry.Preset(string, string?)"/>); "" for none.</summary>
    public string ModelSettings { get; init; } = "";
    public int Epochs { get; init; } = 30;
    /// <summary>
    /// When &gt; 0: exactly this many optimizer steps per fold (FDP's released recipe: 500 at batch 36), i.e.
    /// ⌈Steps / steps per epoch⌉ epochs with the last one cut short; <see cref="Epochs"/> is then unused. Fixed in advance,
    /// like epochs: nothing looks at the test subject.
    /// </summary>
    public int Steps { get; init; }
    public int BatchSize { get; init; } = 8;
    /// <summary>adamw, adam (torch.optim.Adam: weight decay coupled into the gradient, as FDP's code) or sgd.</summary>
    public string Optimizer { get; init; } = "adamw";
    public float LearningRate { get; init; } = 1e-3f;
    public float WeightDecay { get; init; } = 0.01f;
    public float Momentum { get; init; } = 0.9f;
    public int WarmupEpochs { get; init; } = 2;
    /// <summary>
    /// cosine (linear warm-up, then cosine decay to zero), constant (the learning rate throughout, as FDP's code) or step
    /// (<see cref="LearningRate"/>, times <see cref="StepFactor"/> from epoch <see cref="StepEpoch"/> on, as SLSTT's code).
    /// </summary>
    public string Schedule { get; init; } = "cosine";
    /// <summary>step schedule: the 1-based epoch from which the rate is multiplied by <see cref="StepFactor"/> (SLSTT: 30 of 40).</summary>
    public int StepEpoch { get; init; } = 30;
    /// <summary>step schedule: the factor applied from <see cref="StepEpoch"/> on (SLSTT: 0.1).</summary>
    public float StepFactor { get; init; } = 0.1f;
    /// <summary>
    /// For a model that standardises its inputs by data statistics (<see cref="IFitsInputStatistics"/>, FDP): fit them on
    /// the test subject's clips for its predictions, as FDP's released code does per split (it sees the test split's
    /// pixels, never its labels). Off (the honest default): the training subjects' statistics, saved with the model, serve
    /// the test fold and <c>predict</c>. Labelled "transductive" wherever it is reported.
    /// </summary>
    public bool TransductiveStatistics { get; init; }
    /// <summary>Global gradient-norm limit; 0 turns clipping off.</summary>
    public float ClipNorm { get; init; } = 1f;
    /// <summary>Class-weighted cross-entropy (weights ∝ 1/count of the class in the training subjects).</summary>
    public bool ClassWeights { get; init; } = true;
    public float LabelSmoothing { get; init; }
    /// <summary>Random horizontal flip (mirrors the image; when the clip set's channel 0 is the signed horizontal flow u, it also changes sign).</summary>
    public bool Flip { get; init; }
    /// <summary>Random crop: pad by this many pixels (edge replicate) and crop back, per clip.</summary>
    public int CropPad { get; init; }
    /// <summary>
    /// Mixup's α (<c>--mixup</c>, <see cref="Training.Mixup"/>): each batch mixed with a permutation of itself by λ ~ Beta(α, α),
    /// trained on the soft targets; 0 (default): off. Refused for a model whose loss takes hard labels only.
    /// </summary>
    public float Mixup { get; init; }
    /// <summary>
    /// Class-balanced sampling (<c>--balanced</c>, <see cref="BalancedSampler"/>): every draw of an epoch picks a class
    /// uniformly, then one of its clips, with replacement; the same steps per epoch. Turns <see cref="ClassWeights"/> off.
    /// </summary>
    public bool Balanced { get; init; }
    public ulong Seed { get; init; } = 1;
    /// <summary>Also evaluate the test subject after every epoch, for the "oracle epoch" figure (never used for the honest result).</summary>
    public bool Oracle { get; init; }

    /// <summary>
    /// "" (fixed epochs only) or "inner": nested honest selection (<see cref="InnerSelection"/>): in each outer fold the
    /// epoch count, and one setting of <see cref="Grid"/> when given, are picked by the pooled UF1 of inner folds over the
    /// training subjects alone, then the outer subject is tested once. Implies <see cref="Oracle"/> (printed beside, labelled).
    /// </summary>
    public string Select { get; init; } = "";
    /// <summary>k of <see cref="Select"/> "inner": the outer fold's training subjects are split into this many groups.</summary>
    public int InnerFolds { get; init; } = 5;
    /// <summary>"KEY=A,B,…" (at most 4 values) searched by the inner selection beside the epoch count; "" for none (<see cref="InnerGrid"/>).</summary>
    public string Grid { get; init; } = "";
    /// <summary>"" (train everything) or "spatial": the spatial encoder of an SLSTT-family model is frozen but its final LayerNorm (<see cref="IFreezable"/>).</summary>
    public string Freeze { get; init; } = "";

    /// <summary>λ of AIE-CCL's contrastive term (<c>--con-weight</c>); null keeps the preset's (1). Only the aie presets have one.</summary>
    public float? ContrastiveWeight { get; init; }
    /// <summary>
    /// The control for AIE-CCL's attribute embedding (<c>--shuffle-aus</c>): the clips' AU codings are permuted across the
    /// clips (seeded by <see cref="Seed"/>) before training, so the set frequencies stay and the link between a clip and
    /// its set is broken.
    /// </summary>
    public bool ShuffleActionUnits { get; init; }

    /// <summary>The named recipe this run started from (<c>--recipe</c>, e.g. slstt-official); "" for none. Recorded only: the recipe's settings are the fields themselves.</summary>
    public string Recipe { get; init; } = "";
    /// <summary>
    /// A pretrained ViT (<c>--pretrained FILE</c>: a PyTorch <c>.pth</c> in pytorch-pretrained-vit's or timm's naming, or a
    /// safetensors file in timm's) imported into every fold's spatial encoder before training (<see cref="Weights.ImportPretrainedVit"/>);
    /// "" for none (random initialisation).
    /// </summary>
    public string Pretrained { get; init; } = "";

    /// <summary>The preset's config fitted to the data (classes, image size, frames), or a one-line error saying what the data lacks.</summary>
    public IMerModelConfig ModelConfig(ClipSet data) => WithOverrides(ModelRegistry.Preset(Preset, ModelSettings)).ForData(data.Shape);

    /// <summary>The preset with this run's overrides (<see cref="ContrastiveWeight"/>), or a one-line error when the preset has no such setting.</summary>
    public IMerModelConfig WithOverrides(IMerModelConfig preset)
    {
        if (ContrastiveWeight is not float w) return preset;
        if (!(w >= 0f && float.IsFinite(w))) throw new ArgumentException($"--con-weight {w}: expected a finite weight ≥ 0");
        return preset is AieConfig aie
            ? aie with { ContrastiveWeight = w }
            : throw new ArgumentException($"--con-weight applies to the aie presets (aie-tiny, aie); {Preset} has no contrastive term");
    }
}

/// <summary>Learning rate per step: linear warm-up, then cosine decay to zero at the last step; or SLSTT's step schedule.</summary>
public static class Schedule
{
    /// <summary>
    /// SLSTT's released <c>adjust_learning_rate</c> as it behaves: the base rate for epochs 1 … stepEpoch − 1 and base ·
    /// factor from 1-based epoch <paramref name="stepEpoch"/> on (0.01, then 0.001 from epoch 30 of 40); <paramref name="epoch"/> is 0-based.
    /// </summary>
    public static float Step(float baseLr, int epoch, int stepEpoch, float factor) => epoch + 1 >= stepEpoch ? baseLr * factor : baseLr;

    public static float CosineWithWarmup(float baseLr, int step, int warmupSteps, int totalSteps)
    {
        if (warmupSteps > 0 && step < warmupSteps) return baseLr * (step + 1) / warmupSteps;
        int decay = Math.Max(1, totalSteps - warmupSteps);
        double progress = Math.Clamp((double)(step - warmupSteps) / decay, 0, 1);
        return (float)(baseLr * 0.5 * (1 + Math.Cos(Math.PI * progress)));
    }
}
