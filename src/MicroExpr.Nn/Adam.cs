using MicroExpr.Tensors;

namespace MicroExpr.Nn;

/// <summary>
/// Adam (torch.optim.Adam) with coupled (L2) weight decay: g ← g + wd·p, then the bias-corrected moments
/// m = b1·m + (1 − b1)·g, v = b2·v + (1 − b2)·g², p −= lr·m̂/(√v̂ + eps). Unlike <see cref="AdamW"/>, the decay goes
/// through the moments. It is AdamW's fused update with the decay added into the gradient first (one axpy).
/// </summary>
public sealed class Adam(IEnumerable<Tensor> parameters, float lr = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f,
    float weightDecay = 0f) : AdamW(parameters, lr, beta1, beta2, eps, weightDecay, coupledDecay: true);
