using MicroExpr.Tensors;
using MicroExpr.Tensors.Autograd;

namespace MicroExpr.Nn;

/// <summary>
/// nn.Conv2d: y = conv2d(x [N, Cin, H, W], W [Cout, Cin/groups, kh, kw]) + b. Initialised as PyTorch does
/// (kaiming-uniform with a = √5: weight and bias uniform in ±1/√fan_in, fan_in = Cin/groups·kh·kw).
/// </summary>
public sealed class Conv2d : Module
{
    public Conv2d(int inChannels, int outChannels, int kernel, Rng rng, int stride = 1, int padding = 0, int dilation = 1, int groups = 1,
        bool bias = true)
    {
        if (inChannels % groups != 0 || outChannels % groups != 0)
            throw new ArgumentException($"conv2d: {inChannels} input and {outChannels} output channels must both divide into {groups} groups");
        InChannels = inChannels;
        OutChannels = outChannels;
        Kernel = kernel;
        Stride = stride;
        Padding = padding;
        Dilation = dilation;
        Groups = groups;
        int fanIn = inChannels / groups * kernel * kernel;
        float bound = 1f / MathF.Sqrt(fanIn);
        Weight = Parameter("weight", Tensor.RandU([outChannels, inChannels / groups, kernel, kernel], rng, -bound, bound));
        if (bias) Bias = Parameter("bias", Tensor.RandU([outChannels], rng, -bound, bound));
    }

    public int InChannels { get; }
    public int OutChannels { get; }
    public int Kernel { get; }
    public int Stride { get; }
    public int Padding { get; }
    public int Dilation { get; }
    public int Groups { get; }
    public Tensor Weight { get; }
    public Tensor? Bias { get; }

    public Tensor Forward(Tensor x) => Tensor.Conv2d(x, Weight, Bias, Stride, Stride, Padding, Padding, Dilation, Dilation, Groups);
}

/// <summary>nn.Conv3d: y = conv3d(x [N, Cin, D, H, W], W [Cout, Cin, kd, kh, kw]) + b; PyTorch's initialisation.</summary>
public sealed class Conv3d : Module
{
    public Conv3d(int inChannels, int outChannels, (int D, int H, int W) kernel, Rng rng, (int D, int H, int W)? stride = null,
        (int D, int H, int W)? padding = null, bool bias = true)
    {
        InChannels = inChannels;
        OutChannels = outChannels;
        Kernel = kernel;
        Stride = stride ?? (1, 1, 1);
        Padding = padding ?? (0, 0, 0);
        int fanIn = inChannels * kernel.D * kernel.H * kernel.W;
        float bound = 1f / MathF.Sqrt(fanIn);
        Weight = Parameter("weight", Tensor.RandU([outChannels, inChannels, kernel.D, kernel.H, kernel.W], rng, -bound, bound));
        if (bias) Bias = Parameter("bias", Tensor.RandU([outChannels], rng, -bound, bound));
    }

    public int InChannels { get; }
    public int OutChannels { get; }
    public (int D, int H, int W) Kernel { get; }
    public (int D, int H, int W) Stride { get; }
    public (int D, int H, int W) Padding { get; }
    public Tensor Weight { get; }
    public Tensor? Bias { get; }

    public Tensor Forward(Tensor x) => Tensor.Conv3d(x, Weight, Bias, Stride, Padding);
}

/// <summary>
/// BatchNorm over axis 1 of [N, C, *] (nn.BatchNorm1d/2d/3d differ only in the rank they accept): weight (γ, ones) and
/// bias (β, zeros) [C] when affine; buffers <c>running_mean</c> (zeros), <c>running_var</c> (ones) and
/// <c>num_batches_tracked</c> (int64, kept in host memory, counted by the host) under PyTorch's names. Training mode
/// normalises with the batch's statistics and updates the running ones with momentum m
/// (running = (1 − m)·running + m·batch, the variance unbiased); eval mode normalises with the running ones.
/// </summary>
public abstract class BatchNormBase : Module
{
    private readonly int[] ranks;
    private readonly string kind;

    private protected BatchNormBase(string kind, int[] ranks, int c, float eps, float momentum, bool affine)
    {
        this.kind = kind;
        this.ranks = ranks;
        Channels = c;
        Eps = eps;
        Momentum = momentum;
        if (affine)
        {
            Weight = Parameter("weight", Tensor.Ones(c));
            Bias = Parameter("bias", Tensor.Zeros(c));
        }
        RunningMean = Buffer("running_mean", Tensor.Zeros(c));
        RunningVar = Buffer("running_var", Tensor.Ones(c));
        NumBatchesTracked = Buffer("num_batches_tracked", Tensor.FromInt64([0L], []), host: true);
    }

    public int Channels { get; }
    public float Eps { get; }
    public float Momentum { get; }
    public Tensor? Weight { get; }
    public Tensor? Bias { get; }
    public Tensor RunningMean { get; }
    public Tensor RunningVar { get; }

    /// <summary>int64 scalar: training forwards so far (PyTorch's counter; momentum here is always a number).</summary>
    public Tensor NumBatchesTracked { get; }

    public Tensor Forward(Tensor x)
    {
        if (!ranks.Contains(x.Rank))
            throw new ShapeException($"{kind}: input {ShapeUtil.Format(x.Shape)} must have {string.Join(" or ", ranks)} axes");
        if (x.Shape[1] != Channels)
            throw new ShapeException($"{kind}: input {ShapeUtil.Format(x.Shape)} has {x.Shape[1]} channels; the layer has {Channels}");
        if (Training) NumBatchesTracked.SetInt64([NumBatchesTracked.ToInt64Array()[0] + 1]);
        return Tensor.BatchNorm(x, Weight, Bias, RunningMean, RunningVar, Training, Momentum, Eps);
    }

    /// <summary>
    /// The eval-mode affine map per channel: scale = γ/√(running_var + eps), shift = β − running_mean·scale (new tensors,
    /// no gradient), what a conv folds into its weights.
    /// </summary>
    public (Tensor Scale, Tensor Shift) EvalAffine()
    {
        using var _ = GradMode.NoGrad();
        var scale = (RunningVar + Eps).Pow(-0.5f);
        if (Weight is not null) scale = scale * Weight;
        var shift = RunningMean * scale * -1f;
        if (Bias is not null) shift = shift + Bias;
        return (scale, shift);
    }
}

/// <summary>nn.BatchNorm1d over [N, C] or [N, C, L].</summary>
public sealed class BatchNorm1d(int c, float eps = 1e-5f, float momentum = 0.1f, bool affine = true)
    : BatchNormBase("batchnorm1d", [2, 3], c, eps, momentum, affine);

/// <summary>nn.BatchNorm2d over [N, C, H, W].</summary>
public sealed class BatchNorm2d(int c, float eps = 1e-5f, float momentum = 0.1f, bool affine = true)
    : BatchNormBase("batchnorm2d", [4], c, eps, momentum, affine);

/// <summary>nn.BatchNorm3d over [N, C, D, H, W].</summary>
public sealed class BatchNorm3d(int c, float eps = 1e-5f, float momentum = 0.1f, bool affine = true)
    : BatchNormBase("batchnorm3d", [5], c, eps, momentum, affine);

/// <summary>
/// conv → BatchNorm (→ ReLU) for two sibling modules (their names stay the model's own, e.g. torchvision's <c>conv1</c> and
/// <c>bn1</c>). Training mode (of the BatchNorm) runs the three ops; eval mode folds the BatchNorm into the conv,
/// w' = w·scale, b' = b·scale + shift (<see cref="BatchNormBase.EvalAffine"/>, per output channel), and runs the fused
/// conv + bias (+ ReLU) op: one pass over the output instead of three. The fold is recomputed per call (a pass over the
/// weights, small beside the convolution), so it is never stale after a weight update.
/// </summary>
public static class ConvBn
{
    public static Tensor Forward(Conv2d conv, BatchNormBase bn, Tensor x, bool relu)
    {
        if (bn.Training)
        {
            var y = bn.Forward(conv.Forward(x));
            return relu ? y.Relu() : y;
        }
        var (w, b) = Fold(conv.Weight, conv.Bias, bn);
        return Tensor.FusedConv2d(x, w, b, relu, conv.Stride, conv.Stride, conv.Padding, conv.Padding, conv.Dilation, conv.Dilation, conv.Groups);
    }

    public static Tensor Forward(Conv3d conv, BatchNormBase bn, Tensor x, bool relu)
    {
        if (bn.Training)
        {
            var y = bn.Forward(conv.Forward(x));
            return relu ? y.Relu() : y;
        }
        var (w, b) = Fold(conv.Weight, conv.Bias, bn);
        return Tensor.FusedConv3d(x, w, b, relu, conv.Stride, conv.Padding);
    }

    /// <summary>The folded weight and bias (no gradient: eval only).</summary>
    public static (Tensor Weight, Tensor Bias) Fold(Tensor weight, Tensor? bias, BatchNormBase bn)
    {
        if (weight.Shape[0] != bn.Channels)
            throw new ShapeException($"conv+bn: the conv has {weight.Shape[0]} output channels, the BatchNorm {bn.Channels}");
        using var _ = GradMode.NoGrad();
        var (scale, shift) = bn.EvalAffine();
        var shape = new int[weight.Rank];
        Array.Fill(shape, 1);
        shape[0] = bn.Channels;
        var w = weight * scale.Reshape(shape);
        var b = bias is null ? shift : bias * scale + shift;
        return (w, b);
    }
}

/// <summary>
/// A conv → BatchNorm (→ ReLU) unit as one module with children <c>conv</c> and <c>bn</c>: three ops in training, the
/// folded fused conv in eval (<see cref="ConvBn"/>).
/// </summary>
public sealed class ConvBnAct2d : Module
{
    public ConvBnAct2d(int inChannels, int outChannels, int kernel, Rng rng, int stride = 1, int padding = 0, int groups = 1, bool relu = true)
    {
        Conv = Child("conv", new Conv2d(inChannels, outChannels, kernel, rng, stride, padding, 1, groups, bias: false));
        Bn = Child("bn", new BatchNorm2d(outChannels));
        Relu = relu;
    }

    public Conv2d Conv { get; }
    public BatchNorm2d Bn { get; }
    public bool Relu { get; }

    public Tensor Forward(Tensor x) => ConvBn.Forward(Conv, Bn, x, Relu);
}

/// <summary>nn.MaxPool2d (square kernel; stride 0 = the kernel).</summary>
public sealed class MaxPool2d(int kernel, int stride = 0, int padding = 0, bool ceilMode = false) : Module
{
    public Tensor Forward(Tensor x) => x.MaxPool2d(kernel, stride, padding, ceilMode);

    /// <summary>Values and the int32 indices for <see cref="Tensor.MaxUnpool2d"/>.</summary>
    public (Tensor Values, Tensor Indices) ForwardWithIndices(Tensor x) => x.MaxPool2dWithIndices(kernel, stride, padding, ceilMode);
}

/// <summary>nn.MaxUnpool2d.</summary>
public sealed class MaxUnpool2d(int kernel, int stride = 0, int padding = 0) : Module
{
    public Tensor Forward(Tensor x, Tensor indices, (int H, int W)? outputSize = null) =>
        Tensor.MaxUnpool2d(x, indices, kernel, stride, padding, outputSize);
}

/// <summary>nn.MaxPool3d.</summary>
public sealed class MaxPool3d((int D, int H, int W) kernel, (int D, int H, int W) stride, (int D, int H, int W) padding, bool ceilMode = false)
    : Module
{
    public Tensor Forward(Tensor x) => x.MaxPool3d(kernel, stride, padding, ceilMode);
}

/// <summary>nn.AvgPool2d (square kernel; stride 0 = the kernel).</summary>
public sealed class AvgPool2d(int kernel, int stride = 0, int padding = 0, bool ceilMode = false, bool countIncludePad = true) : Module
{
    public Tensor Forward(Tensor x) => x.AvgPool2d(kernel, stride, padding, ceilMode, countIncludePad);
}

/// <summary>nn.AvgPool3d.</summary>
public sealed class AvgPool3d((int D, int H, int W) kernel, (int D, int H, int W) stride, (int D, int H, int W) padding, bool ceilMode = false,
    bool countIncludePad = true) : Module
{
    public Tensor Forward(Tensor x) => x.AvgPool3d(kernel, stride, padding, ceilMode, countIncludePad);
}

/// <summary>nn.AdaptiveAvgPool2d.</summary>
public sealed class AdaptiveAvgPool2d(int outH, int outW) : Module
{
    public Tensor Forward(Tensor x) => x.AdaptiveAvgPool2d(outH, outW);
}

/// <summary>nn.AdaptiveAvgPool3d.</summary>
public sealed class AdaptiveAvgPool3d(int outD, int outH, int outW) : Module
{
    public Tensor Forward(Tensor x) => x.AdaptiveAvgPool3d(outD, outH, outW);
}

/// <summary>nn.Upsample to a size or by an integer factor, nearest or bilinear (align_corners = false).</summary>
public sealed class Upsample : Module
{
    private readonly int scale, outH, outW;

    public Upsample(int scale, bool bilinear)
    {
        this.scale = scale;
        Bilinear = bilinear;
    }

    public Upsample(int outH, int outW, bool bilinear)
    {
        this.outH = outH;
        this.outW = outW;
        Bilinear = bilinear;
    }

    public bool Bilinear { get; }

    public Tensor Forward(Tensor x) => scale > 0 ? x.Upsample(scale, Bilinear) : x.Upsample(outH, outW, Bilinear);
}

/// <summary>
/// Stochastic depth (timm's DropPath): per-sample drop with probability p in training, seeded. <see cref="Reseed"/>
/// restarts its generator (the SLSTT family reseeds every epoch from (seed, fold, epoch), so a resumed fold draws the same masks).
/// </summary>
public sealed class DropPath(float p, Rng rng) : Module, ISeededNoise
{
    private Rng noise = rng;

    public float P { get; } = p;

    public void Reseed(ulong seed) => noise = new Rng(seed);

    public Tensor Forward(Tensor x) => x.DropPath(P, noise, Training);
}

/// <summary>
/// Inverted dropout (<see cref="Tensor.Dropout"/>) as a module: active only in training mode, identity in evaluation, so
/// evaluation is deterministic. Its generator starts from seed 0 and is meant to be reseeded (<see cref="Reseed"/>) by its
/// owner before training draws from it, so building the module draws nothing from the model's initialisation generator.
/// </summary>
public sealed class Dropout : Module, ISeededNoise
{
    private Rng noise = new(0);

    public Dropout(float p)
    {
        if (!(p >= 0f && p < 1f)) throw new ArgumentOutOfRangeException(nameof(p), p, "dropout probability must be in [0, 1)");
        P = p;
    }

    public float P { get; }

    public void Reseed(ulong seed) => noise = new Rng(seed);

    public Tensor Forward(Tensor x) => x.Dropout(P, noise, Training);
}

/// <summary>A module that draws random numbers in training (dropout, drop-path) and whose generator its owner can restart.</summary>
public interface ISeededNoise
{
    void Reseed(ulong seed);
}
