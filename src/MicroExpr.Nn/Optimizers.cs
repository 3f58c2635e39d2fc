using MicroExpr.Tensors;

namespace MicroExpr.Nn;

/// <summary>An optimizer updates parameters in place from their accumulated gradients.</summary>
public abstract class Optimizer : IDisposable
{
    protected Optimizer(IEnumerable<Tensor> parameters) => Params = parameters.ToArray();

    protected Tensor[] Params { get; }

    /// <summary>Learning rate (a schedule may change it between steps).</summary>
    public float LearningRate { get; set; }

    public abstract void Step();

    /// <summary>Steps taken so far (restored on resume).</summary>
    public int StepCount { get; set; }

    /// <summary>The optimizer's state tensors with stable names, for checkpoints (restore by uploading into them).</summary>
    public abstract IEnumerable<(string Name, Tensor Value)> State();

    public void ZeroGrad()
    {
        foreach (var p in Params) p.ZeroGrad();
    }

    /// <summary>Scales all gradients so their global L2 norm is at most maxNorm; returns the norm before clipping.</summary>
    public float ClipGradNorm(float maxNorm)
    {
        // Squares summed on the device (pooled temporaries, no host copy of the gradients); the per-parameter sums come
        // back in one transfer (one host synchronisation per step, not one per parameter) and are added in double.
        double sq = 0;
        using (Tensors.Autograd.GradMode.NoGrad())
        using (var scope = new TensorScope())
        {
            var sums = Params.Where(p => p.Grad != null).Select(p => (p.Grad! * p.Grad!).Sum().Reshape(1)).ToArray();
            if (sums.Length > 0)
                foreach (float v in Tensor.Concat(0, sums).ToArray()) sq += v;
        }
        float norm = (float)Math.Sqrt(sq);
        if (norm > maxNorm && norm > 0)
        {
            float s = maxNorm / (norm + 1e-6f);
            foreach (var p in Params)
                if (p.Grad is { } g) g.Backend.Unary(UnaryOp.Scale, g.Storage, g.Storage, g.Numel, s);
        }
        return norm;
    }

    public virtual void Dispose() => GC.SuppressFinalize(this);
}

/// <summary>
/// AdamW (Loshchilov &amp; Hutter; PyTorch's torch.optim.AdamW): decoupled weight decay, bias-corrected
/// moments. The whole update of one parameter is one fused backend call. With <c>coupledDecay</c> (what
/// <see cref="Adam"/> passes) the decay is added into the gradient instead and goes through the moments.
/// </summary>
public class AdamW : Optimizer
{
    private readonly Tensor[] m, v;
    private readonly bool coupled;

    public AdamW(IEnumerable<Tensor> parameters, float lr = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f,
        float weightDecay = 0.01f) : this(parameters, lr, beta1, beta2, eps, weightDecay, coupledDecay: false) { }

    protected AdamW(IEnumerable<Tensor> parameters, float lr, float beta1, float beta2, float eps, float weightDecay, bool coupledDecay)
        : base(parameters)
    {
        coupled = coupledDecay;
        LearningRate = lr;
        Beta1 = beta1;
        Beta2 = beta2;
        Eps = eps;
        WeightDecay = weightDecay;
        m = Params.Select(p => Tensor.Zeros(p.Shape, p.Device).Keep()).ToArray();
        v = Params.Select(p => Tensor.Zeros(p.Shape, p.Device).Keep()).ToArray();
    }

    public float Beta1 { get; }
    public float Beta2 { get; }
    public float Eps { get; }
    public float WeightDecay { get; }

    public override IEnumerable<(string Name, Tensor Value)> State()
    {
        for (int i = 0; i < Params.Length; i++)
        {
            yield return ($"exp_avg.{i}", m[i]);
            yield return ($"exp_avg_sq.{i}", v[i]);
        }
    }

    public override void Step()
    {
        StepCount++;
        for (int i = 0; i < Params.Length; i++)
        {
            var p = Params[i];
            if (p.Grad is not { } g) continue;
            // Coupled (L2): g += wd·p in place (the gradient is consumed by the step), then the update without decoupled decay.
            if (coupled && WeightDecay != 0) p.Backend.Axpy(g.Storage, p.Storage, p.Numel, WeightDecay);
            p.Backend.AdamW(p.Storage, g.Storage, m[i].Storage, v[i].Storage, p.Numel, LearningRate, Beta1, Beta2, Eps,
                coupled ? 0f : WeightDecay, StepCount);
        }
    }

    public override void Dispose()
    {
        foreach (var t in m.Concat(v)) t.Dispose();
        base.Dispose();
    }
}

/// <summary>SGD with momentum and (coupled) weight decay, as torch.optim.SGD: b = μ·b + (g + wd·p); p −= lr·b.</summary>
public sealed class Sgd : Optimizer
{
    private readonly Tensor[] buffers;

    public Sgd(IEnumerable<Tensor> parameters, float lr, float momentum = 0.9f, float weightDecay = 0f) : base(parameters)
    {
        LearningRate = lr;
        Momentum = momentum;
        WeightDecay = weightDecay;
        // Zero buffers make the first step b = g, as PyTorch's lazily created buffer does.
        buffers = Params.Select(p => Tensor.Zeros(p.Shape, p.Device).Keep()).ToArray();
    }

    public override IEnumerable<(string Name, Tensor Value)> State() => buffers.Select((b, i) => ($"momentum_buffer.{i}", b));

    public float Momentum { get; }
    public float WeightDecay { get; }

    public override void Step()
    {
        StepCount++;
        for (int i = 0; i < Params.Length; i++)
        {
            var p = Params[i];
            if (p.Grad is not { } g) continue;
            var be = p.Backend;
            var buf = buffers[i];
            be.Unary(UnaryOp.Scale, buf.Storage, buf.Storage, p.Numel, Momentum);
            be.Axpy(buf.Storage, g.Storage, p.Numel, 1f);
            if (WeightDecay != 0) be.Axpy(buf.Storage, p.Storage, p.Numel, WeightDecay);
            be.Axpy(p.Storage, buf.Storage, p.Numel, -LearningRate);
        }
    }

    public override void Dispose()
    {
        foreach (var b in buffers) b.Dispose();
        base.Dispose();
    }
}
