using MicroExpr.Models;
using MicroExpr.Nn;
using MicroExpr.Tensors;

namespace MicroExpr.Tests.Models;

/// <summary>
/// stt-tiny trains the same on ILGPU's CPU accelerator as on the SIMD CPU: three AdamW steps of the model and its compact
/// softmax loss (class centres included) from the same weights and batch give losses within rtol 1e-4, and the first
/// step's gradients agree within 1e-5 + 1e-4·|ref|.
/// </summary>
public class SttDeviceTests
{
    private static (float[] Losses, Dictionary<string, float[]> Grads) Train(Device device, int steps)
    {
        var cfg = SttPresets.Tiny with { MaxFrames = 4 };
        using var model = ModelRegistry.Create(cfg, new Rng(1));
        model.To(device);
        using var loss = model.CreateLoss(new Rng(2));
        loss.To(device);
        var named = model.NamedParameters().Select(p => ("model." + p.Name, p.Value)).Concat(loss.NamedParameters().Select(p => ("loss." + p.Name, p.Value))).ToList();
        using var opt = new AdamW(named.Select(p => p.Value), lr: 1e-3f, weightDecay: 0.01f);
        var xs = Tensor.RandN([2, 4, 3, 32, 32], new Rng(3)).ToArray();
        int[] labels = [0, 2];
        var losses = new float[steps];
        var grads = new Dictionary<string, float[]>();
        for (int s = 0; s < steps; s++)
        {
            using var scope = new TensorScope();
            var x = Tensor.FromSpan(xs, [2, 4, 3, 32, 32], device);
            var batch = ModelBatch.Of(InputKind.MotionFrames, x);
            var l = loss.Forward(model.Forward(batch), batch, labels, [1f, 0.5f, 2f]);
            l.Backward();
            if (s == 0) foreach (var (name, p) in named) grads[name] = p.Grad!.ToArray();
            opt.Step();
            opt.ZeroGrad();
            losses[s] = l.Item();
        }
        return (losses, grads);
    }

    [Test]
    public void ThreeTrainingStepsOnIlgpuCpuMatchTheCpu()
    {
        var cpu = Train(Device.Cpu, 3);
        var ilgpu = Train(Devices.IlgpuCpu, 3);
        TestContext.Out.WriteLine($"losses cpu {string.Join(", ", cpu.Losses)}; ilgpu-cpu {string.Join(", ", ilgpu.Losses)}");
        for (int s = 0; s < 3; s++)
            Assert.That(ilgpu.Losses[s], Is.EqualTo(cpu.Losses[s]).Within(1e-4 * Math.Abs(cpu.Losses[s])), $"loss of step {s + 1}");
        Assert.That(cpu.Losses[2], Is.LessThan(cpu.Losses[0]), "the loss falls on a repeated batch");
        Assert.That(cpu.Grads.Keys, Does.Contain("loss.centres"));
        foreach (var (name, want) in cpu.Grads)
            Check.Close(ilgpu.Grads[name], want.Select(v => (double)v).ToArray(), 1e-5, 1e-4, $"d/d{name}");
    }
}
