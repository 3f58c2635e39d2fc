using MicroExpr.Nn;
using MicroExpr.Tensors;
using MicroExpr.Tensors.Autograd;

namespace MicroExpr.Models;

/// <summary>
/// One step of a model preset (any family of <see cref="ModelRegistry"/>) on fixed random data, the workload behind
/// <c>microexpr bench train-step|inference</c> and GpuCheck's <c>--train-step</c> suite (and, for SLSTT, mirrored by
/// <c>benchmarks/pytorch_peer.py</c>).
/// <para>
/// Weights from <c>Rng(modelSeed)</c> (the loss's parameters, e.g. STT's class centres, from <c>Rng(modelSeed + 1)</c>);
/// one random tensor [B, T, C, S, S] ~ N(0, 1) per input the model declares (and, for a training step, one of random 0/1 values per target of its loss, which the loss also sees as its fold), from <c>Rng(dataSeed)</c>, kept on the
/// device; labels b mod classes. A training step is forward, the model's own loss (<see cref="IMerModel.CreateLoss"/>:
/// cross-entropy for SLSTT), backward, AdamW (lr 1e-4, betas 0.9/0.999, eps 1e-8, weight decay 0.01: performance.md)
/// over the model's and the loss's parameters, zero-grad, inside a tensor scope, then the loss is read back.
/// Inference is a forward without the tape whose logits are read back. Reading a value back waits for the device,
/// so a step is complete when <see cref="Run"/> returns. Timing lives in the harness (<c>MicroExpr.Bench.StepTimer</c>),
/// which synchronises around each step as well.
/// The same batch every step: a training run overfits it, so the loss falls from step to step.
/// </para>
/// </summary>
public sealed class ModelStep : IDisposable
{
    private readonly AdamW? optimizer;
    private readonly ModelBatch batchInputs;
    private readonly int[] labels;

    public ModelStep(IMerModelConfig config, Device device, int batch, int frames, bool train, ulong modelSeed = 1, ulong dataSeed = 2)
    {
        if (batch < 1) throw new ArgumentOutOfRangeException(nameof(batch), batch, "batch must be >= 1");
        if (frames < 1) throw new ArgumentOutOfRangeException(nameof(frames), frames, "frames must be >= 1");
        // An AIE-CCL preset not yet fitted to a data set has no AU vocabulary: the bench gives it 8 placeholder AUs.
        if (config is AieConfig { ActionUnits.Count: 0 } aie)
            config = aie with { ActionUnits = Enumerable.Range(1, 8).Select(n => new AuVocabularyEntry(n, $"action unit {n}")).ToList() };
        Config = config;
        Device = device;
        Batch = batch;
        Frames = frames;
        Train = train;
        Model = ModelRegistry.Create(config, new Rng(modelSeed));
        var inputs = new Dictionary<InputKind, Tensor>();
        try
        {
            Model.To(device);
            Loss = Model.CreateLoss(new Rng(modelSeed + 1));
            Loss.To(device);
            if (train) optimizer = new AdamW(Model.Parameters().Concat(Loss.Parameters()), lr: 1e-4f, beta1: 0.9f, beta2: 0.999f, eps: 1e-8f, weightDecay: 0.01f);
            var rng = new Rng(dataSeed);
            foreach (var input in config.Inputs)
                inputs[input.Kind] = Tensor.RandN([batch, input.Frames == 0 ? frames : input.Frames, input.Channels, input.Size, input.Size], rng, device: device).Keep();
            if (train)
            {
                // Training also batches the loss's targets (IMerModelConfig.Targets), random 0/1 values (a dynamic image or
                // multi-hot action units alike); the loss sees the batch as its whole fold (BeginFold).
                var targets = new Dictionary<InputKind, float[]>();
                foreach (var target in config.Targets.Where(t => config.Inputs.All(i => i.Kind != t.Kind)))
                {
                    int n = (target.Frames == 0 ? frames : target.Frames) * target.Channels * target.Size * target.Size;
                    var values = new float[batch * n];
                    for (int i = 0; i < values.Length; i++) values[i] = rng.NextUInt() >> 31;
                    targets[target.Kind] = values;
                    inputs[target.Kind] = Tensor.FromSpan(values, [batch, target.Frames == 0 ? frames : target.Frames, target.Channels, target.Size, target.Size], device).Keep();
                }
                Loss.BeginFold(new TrainingFold(batch, (i, kind) =>
                {
                    var all = targets[kind];
                    int n = all.Length / batch;
                    return all.AsSpan(i * n, n).ToArray();
                }));
            }
            batchInputs = new ModelBatch(inputs);
            labels = Enumerable.Range(0, batch).Select(i => i % config.Classes).ToArray();
        }
        catch
        {
            foreach (var t in inputs.Values) t.Dispose();
            optimizer?.Dispose();
            Loss?.Dispose();
            Model.Dispose();
            throw;
        }
    }

    public ModelStep(SlsttConfig config, Device device, int batch, int frames, bool train, ulong modelSeed = 1, ulong dataSeed = 2)
        : this((IMerModelConfig)config, device, batch, frames, train, modelSeed, dataSeed) { }

    public IMerModelConfig Config { get; }
    public Device Device { get; }
    public int Batch { get; }
    public int Frames { get; }
    public bool Train { get; }
    public IMerModel Model { get; }
    public MerLoss Loss { get; }
    public AdamW? Optimizer => optimizer;

    /// <summary>The shape of the (first) input, [B, T, C, S, S].</summary>
    public int[] InputShape => batchInputs.Inputs.Values.First().Shape;

    /// <summary>One step; returns the loss of this step's forward (training) or NaN (inference).</summary>
    public float Run()
    {
        if (Train)
        {
            using var scope = new TensorScope();
            Tensor loss;
            using (OpTrace.Phase("forward")) loss = Loss.Forward(Model.Forward(batchInputs), batchInputs, labels);
            using (OpTrace.Phase("backward")) loss.Backward();
            using (OpTrace.Phase("optimizer"))
            {
                optimizer!.Step();
                optimizer.ZeroGrad();
            }
            return loss.Item();
        }
        using var noGrad = GradMode.NoGrad();
        using var inference = new TensorScope();
        using (OpTrace.Phase("forward")) _ = Model.Forward(batchInputs).Logits.ToArray();
        return float.NaN;
    }

    /// <summary>Waits for every kernel queued on the device (ILGPU backends); nothing to wait for on the SIMD CPU backend.</summary>
    public void Synchronize()
    {
        Device.Backend.Synchronize();
    }

    public void Dispose()
    {
        Synchronize();
        optimizer?.Dispose();
        foreach (var t in batchInputs.Inputs.Values) t.Dispose();
        Loss.Dispose();
        Model.Dispose();
    }
}
