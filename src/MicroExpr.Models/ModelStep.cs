using System.Diagnostics;
using MicroExpr.Nn;
using MicroExpr.Tensors;
using MicroExpr.Tensors.Autograd;
using MicroExpr.Tensors.Ilgpu;

namespace MicroExpr.Models;

/// <summary>
/// One step of a model preset (any family of <see cref="ModelRegistry"/>) on fixed random data, the workload behind
/// <c>microexpr bench train-step|inference</c> and GpuCheck's <c>--train-step</c> suite (and, for SLSTT, mirrored by
/// <c>benchmarks/pytorch_peer.py</c>).
/// <para>
/// Weights from <c>Rng(modelSeed)</c> (the loss's parameters, e.g. STT's class centres, from <c>Rng(modelSeed + 1)</c>);
/// one random tensor [B, T, C, S, S] ~ N(0, 1) per input the model declares, from <c>Rng(dataSeed)</c>, kept on the
/// device; labels b mod classes. A training step is forward, the model's own loss (<see cref="IMerModel.CreateLoss"/>:
/// cross-entropy for SLSTT), backward, AdamW (lr 1e-4, betas 0.9/0.999, eps 1e-8, weight decay 0.01: performance.md)
/// over the model's and the loss's parameters, zero-grad, inside a tensor scope, then the loss is read back.
/// Inference is a forward without the tape whose logits are read back. Reading a value back waits for the device,
/// so a step is complete when <see cref="Run"/> returns; <see cref="Measure"/> synchronises around it as well.
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
            var loss = Loss.Forward(Model.Forward(batchInputs), labels);
            loss.Backward();
            optimizer!.Step();
            optimizer.ZeroGrad();
            return loss.Item();
        }
        using var noGrad = GradMode.NoGrad();
        using var inference = new TensorScope();
        _ = Model.Forward(batchInputs).Logits.ToArray();
        return float.NaN;
    }

    /// <summary>Waits for every kernel queued on the device (ILGPU backends); nothing to wait for on the SIMD CPU backend.</summary>
    public void Synchronize()
    {
        if (Device.Backend is IlgpuBackend ilgpu) ilgpu.Synchronize();
    }

    /// <summary>
    /// Warm-up, then <paramref name="runs"/> timed steps. Warm-up runs at least <paramref name="warmup"/> steps and, when
    /// <paramref name="warmup"/> &gt; 0, goes on until <paramref name="minWarmupSeconds"/> have passed (so the tiered JIT
    /// has optimised the CPU kernels and ILGPU has compiled every device kernel). Each timed step is bracketed by
    /// <see cref="Synchronize"/>. <paramref name="beforeTimed"/> runs between warm-up and the timed steps,
    /// <paramref name="afterTimedStep"/> after each timed step, outside its timing (e.g. reading a profile's device events);
    /// <paramref name="progress"/> gets "warm-up step k" or "step i/n" before every step. When <paramref name="timeBudgetSeconds"/> &gt; 0 and the
    /// last warm-up step says the timed steps would take longer, fewer steps are timed (at least
    /// <paramref name="minRuns"/>): <see cref="StepTimes.RunsCut"/> says so.
    /// </summary>
    public StepTimes Measure(int warmup, int runs, double minWarmupSeconds = 2, Action<string>? progress = null, Action? beforeTimed = null,
        double timeBudgetSeconds = 0, int minRuns = 5, Action? afterTimedStep = null)
    {
        if (runs < 1) throw new ArgumentOutOfRangeException(nameof(runs), runs, "runs must be >= 1");
        float first = float.NaN;
        double lastWarmMs = double.NaN;
        var warm = Stopwatch.StartNew();
        int warmed = 0;
        while (warmed < warmup || (warmup > 0 && warm.Elapsed.TotalSeconds < minWarmupSeconds))
        {
            warmed++; // not inside progress?.Invoke(...): its arguments are skipped when progress is null
            progress?.Invoke($"warm-up step {warmed}");
            long w0 = Stopwatch.GetTimestamp();
            float loss = Run();
            Synchronize();
            lastWarmMs = Stopwatch.GetElapsedTime(w0).TotalMilliseconds;
            if (warmed == 1) first = loss;
        }
        int planned = runs;
        if (timeBudgetSeconds > 0 && double.IsFinite(lastWarmMs) && lastWarmMs * runs > timeBudgetSeconds * 1000)
            planned = Math.Clamp((int)(timeBudgetSeconds * 1000 / lastWarmMs), Math.Min(minRuns, runs), runs);
        beforeTimed?.Invoke();
        var ms = new double[planned];
        float last = float.NaN;
        for (int i = 0; i < planned; i++)
        {
            progress?.Invoke($"step {i + 1}/{planned}");
            Synchronize();
            long t0 = Stopwatch.GetTimestamp();
            last = Run();
            Synchronize();
            ms[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            afterTimedStep?.Invoke();
            if (warmed == 0 && i == 0) first = last;
        }
        return new StepTimes(ms, warmed, planned < runs ? runs : 0, first, last);
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

/// <summary>
/// The timed steps of <see cref="ModelStep.Measure"/>, in run order (ms), the warm-up steps run, the steps asked for
/// when a time budget cut them (0 when not cut), and the loss of the very first step and of the last timed step
/// (NaN for inference).
/// </summary>
public sealed record StepTimes(double[] Ms, int WarmupSteps, int RunsCut, float FirstLoss, float LastLoss)
{
    private double[] Sorted => Ms.Order().ToArray();

    /// <summary>The median (the mean of the middle two for an even count).</summary>
    public double MedianMs
    {
        get
        {
            var s = Sorted;
            int n = s.Length;
            return n % 2 == 1 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
        }
    }

    public double MinMs => Ms.Min();
    public double MaxMs => Ms.Max();
    public double TotalMs => Ms.Sum();

    /// <summary>Clips per second at the median step time.</summary>
    public double ClipsPerSecond(int batch) => batch / (MedianMs / 1000);
}
