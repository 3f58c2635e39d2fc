using MicroExpr.Tensors;

namespace MicroExpr.Nn;

/// <summary>
/// Adam (torch.optim.Adam) with coupled (L2) weight decay: g ← g + wd·p, then the bias-corrected moments
/// m = b1·m + (1 − b1)·g, v = b2·v + (1 − b2)·g², p −= lr·m̂/(√v̂ + eps). Unlike <see cref="AdamW"/>, the decay goes
/// through the moments. The decay is added into the gradient in place (one axpy; the gradient is consumed by the step),
/// then the fused AdamW update runs with its decoupled decay at 0.
/// </summary>
public sealed class Adam : Optimizer
{
    private readonly Tensor[] m, v;

    public Adam(IEnumerable<Tensor> parameters, float lr = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f,
        float weightDecay = 0f) : base(parameters)
    {
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
            if (WeightDecay != 0) p.Backend.Axpy(g.Storage, p.Storage, p.Numel, WeightDecay);
            p.Backend.AdamW(p.Storage, g.Storage, m[i].Storage, v[i].Storage, p.Numel, LearningRate, Beta1, Beta2, Eps, 0f, StepCount);
        }
    }

    public override void Dispose()
    {
        foreach (var t in m.Concat(v)) t.Dispose();
        base.Dispose();
    }
}
