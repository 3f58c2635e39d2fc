using MicroExpr.Nn;
using MicroExpr.Tensors;
using MicroExpr.Tensors.Autograd;

namespace MicroExpr.Models;

/// <summary>
/// One step of an SLSTT preset on fixed random data, the workload behind <c>microexpr bench train-step|inference</c>
/// and GpuCheck's <c>--train-step</c> suite (and mirrored by <c>benchmarks/pytorch_peer.py</c>).
/// <para>
/// Weights from <c>Rng(modelSeed)</c>; clips x [B, T, 3, S, S] ~ N(0, 1) from <c>Rng(dataSeed)</c>, kept on the device;
/// labels b mod classes. A training step is forward, mean cross-entropy, backward, AdamW (lr 1e-4, betas 0.9/0.999,
/// eps 1e-8, weight decay 0.01: performance.md), zero-grad, inside a tensor scope, then the loss is read back.
/// Inference is a forward without the tape whose logits are read back. Reading a value back waits for the device,
/// so a step is complete when <see cref="Run"/> returns. Timing lives in the harness (<c>MicroExpr.Bench.StepTimer</c>),
/// which synchronises around each step as well.
/// The same batch every step: a training run overfits it, so the loss falls from step to step.
/// </para>
/// </summary>
public sealed class ModelStep : IDisposable
{
    private readonly AdamW? optimizer;
    private readonly Tensor x;
    private readonly int[] labels;

    public ModelStep(SlsttConfig config, Device device, int batch, int frames, bool train, ulong modelSeed = 1, ulong dataSeed = 2)
    {
        if (batch < 1) throw new ArgumentOutOfRangeException(nameof(batch), batch, "batch must be >= 1");
        if (frames < 1) throw new ArgumentOutOfRangeException(nameof(frames), frames, "frames must be >= 1");
        Config = config;
        Device = device;
        Batch = batch;
        Frames = frames;
        Train = train;
        Model = new SlsttModel(config, new Rng(modelSeed));
        try
        {
            Model.To(device);
            if (train) optimizer = new AdamW(Model.Parameters(), lr: 1e-4f, beta1: 0.9f, beta2: 0.999f, eps: 1e-8f, weightDecay: 0.01f);
            x = Tensor.RandN([batch, frames, 3, config.ImageSize, config.ImageSize], new Rng(dataSeed), device: device).Keep();
            labels = Enumerable.Range(0, batch).Select(i => i % config.Classes).ToArray();
        }
        catch
        {
            optimizer?.Dispose();
            Model.Dispose();
            throw;
        }
    }

    public SlsttConfig Config { get; }
    public Device Device { get; }
    public int Batch { get; }
    public int Frames { get; }
    public bool Train { get; }
    public SlsttModel Model { get; }

    /// <summary>The input's shape [B, T, 3, S, S].</summary>
    public int[] InputShape => [Batch, Frames, 3, Config.ImageSize, Config.ImageSize];

    /// <summary>One step; returns the loss of this step's forward (training) or NaN (inference).</summary>
    public float Run()
    {
        if (Train)
        {
            using var scope = new TensorScope();
            var loss = Tensor.CrossEntropy(Model.Forward(x), labels);
            loss.Backward();
            optimizer!.Step();
            optimizer.ZeroGrad();
            return loss.Item();
        }
        using var noGrad = GradMode.NoGrad();
        using var inference = new TensorScope();
        _ = Model.Forward(x).ToArray();
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
        x.Dispose();
        Model.Dispose();
    }
}
