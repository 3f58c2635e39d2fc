using MicroExpr.Nn;
using MicroExpr.Tensors;
using MicroExpr.Tensors.Autograd;

namespace MicroExpr.Models;

/// <summary>Where a <see cref="ResNet18"/> stops: after a stage (a backbone) or after the classifier.</summary>
public enum ResNetStage { Layer1 = 1, Layer2 = 2, Layer3 = 3, Layer4 = 4, Fc = 5 }

/// <summary>
/// A ResNet-18's shape. <see cref="Until"/> truncates it after a stage: the output is then that stage's feature map
/// [N, C, H/s, W/s] (C = 64, 128, 256, 512; s = 4, 8, 16, 32), or, with <see cref="GlobalPool"/>, its global average
/// [N, C]; at <see cref="ResNetStage.Fc"/> the output is the logits [N, Classes].
/// </summary>
public sealed record ResNet18Config
{
    public ResNetStage Until { get; init; } = ResNetStage.Fc;
    public int Classes { get; init; } = 1000;

    /// <summary>For a truncated network: average the last stage's map to [N, C] (the full network always pools).</summary>
    public bool GlobalPool { get; init; }
    public int InChannels { get; init; } = 3;
    public ulong Seed { get; init; } = 0;
}

/// <summary>
/// torchvision's BasicBlock: out = ReLU(bn2(conv2(ReLU(bn1(conv1(x))))) + shortcut(x)), conv1 3×3 at the block's stride,
/// conv2 3×3, both without bias; the shortcut is x, or <c>downsample</c> = (1×1 conv at the stride, BatchNorm) when the
/// stride or the width changes. In eval mode each conv + BatchNorm runs folded as one fused conv (<see cref="ConvBn"/>).
/// </summary>
public sealed class BasicBlock : Module
{
    public BasicBlock(int inChannels, int outChannels, int stride, Rng rng)
    {
        Conv1 = Child("conv1", new Conv2d(inChannels, outChannels, 3, rng, stride, 1, bias: false));
        Bn1 = Child("bn1", new BatchNorm2d(outChannels));
        Conv2 = Child("conv2", new Conv2d(outChannels, outChannels, 3, rng, 1, 1, bias: false));
        Bn2 = Child("bn2", new BatchNorm2d(outChannels));
        if (stride != 1 || inChannels != outChannels)
            Downsample = Child("downsample", new DownsampleUnit(inChannels, outChannels, stride, rng));
    }

    public Conv2d Conv1 { get; }
    public BatchNorm2d Bn1 { get; }
    public Conv2d Conv2 { get; }
    public BatchNorm2d Bn2 { get; }
    public DownsampleUnit? Downsample { get; }

    public Tensor Forward(Tensor x)
    {
        var h = ConvBn.Forward(Conv1, Bn1, x, relu: true);
        h = ConvBn.Forward(Conv2, Bn2, h, relu: false);
        var shortcut = Downsample is null ? x : ConvBn.Forward(Downsample.Conv, Downsample.Bn, x, relu: false);
        return (h + shortcut).Relu();
    }

    /// <summary>torchvision's <c>downsample</c> Sequential: children <c>0</c> (1×1 conv) and <c>1</c> (BatchNorm).</summary>
    public sealed class DownsampleUnit : Module
    {
        public DownsampleUnit(int inChannels, int outChannels, int stride, Rng rng)
        {
            Conv = Child("0", new Conv2d(inChannels, outChannels, 1, rng, stride, 0, bias: false));
            Bn = Child("1", new BatchNorm2d(outChannels));
        }

        public Conv2d Conv { get; }
        public BatchNorm2d Bn { get; }
    }
}

/// <summary>A stage: BasicBlocks as children <c>0</c>, <c>1</c> (torchvision's <c>layerK</c> Sequential).</summary>
public sealed class ResNetLayer : Module
{
    public ResNetLayer(int inChannels, int outChannels, int stride, int blocks, Rng rng)
    {
        Blocks = new BasicBlock[blocks];
        for (int i = 0; i < blocks; i++)
            Blocks[i] = Child(i.ToString(System.Globalization.CultureInfo.InvariantCulture),
                new BasicBlock(i == 0 ? inChannels : outChannels, outChannels, i == 0 ? stride : 1, rng));
    }

    public BasicBlock[] Blocks { get; }

    public Tensor Forward(Tensor x)
    {
        foreach (var b in Blocks) x = b.Forward(x);
        return x;
    }
}

/// <summary>
/// ResNet-18 in torchvision's layout and naming: conv1 7×7/2 (pad 3, no bias) → bn1 → ReLU → max pool 3×3/2 (pad 1) →
/// layer1..layer4 (2 BasicBlocks each; 64, 128, 256, 512 channels; layer2..4 start at stride 2 with a 1×1 downsample) →
/// global average pool → fc [Classes, 512]. x [N, 3, H, W] → logits [N, Classes] (or a truncated stage's output, see
/// <see cref="ResNet18Config"/>). Initialised as torchvision does (convs kaiming-normal, fan_out, ReLU gain; BatchNorm
/// γ = 1, β = 0; fc PyTorch's Linear default). <see cref="Module.Train"/> / <see cref="Module.Eval"/> switch BatchNorm between
/// batch and running statistics; in eval every conv + BatchNorm runs folded into one fused conv.
/// </summary>
public sealed class ResNet18 : Module
{
    private static readonly int[] Widths = [64, 128, 256, 512];

    public ResNet18(ResNet18Config config)
    {
        Config = config;
        var rng = new Rng(config.Seed);
        Conv1 = Child("conv1", new Conv2d(config.InChannels, 64, 7, rng, 2, 3, bias: false));
        Bn1 = Child("bn1", new BatchNorm2d(64));
        int stages = Math.Min((int)config.Until, 4);
        Layers = new ResNetLayer[stages];
        int c = 64;
        for (int i = 0; i < stages; i++)
        {
            Layers[i] = Child($"layer{i + 1}", new ResNetLayer(c, Widths[i], i == 0 ? 1 : 2, 2, rng));
            c = Widths[i];
        }
        if (config.Until == ResNetStage.Fc) Fc = Child("fc", new Linear(512, config.Classes, rng));
        OutChannels = config.Until == ResNetStage.Fc ? config.Classes : c;
        // torchvision: kaiming_normal_(mode = "fan_out", nonlinearity = "relu") for every conv, std = √(2 / (Cout·kh·kw)).
        foreach (var (name, p) in NamedParameters())
            if (p.Rank == 4)
            {
                float std = MathF.Sqrt(2f / (p.Shape[0] * p.Shape[2] * p.Shape[3]));
                using var init = Tensor.RandN(p.Shape, rng, 0f, std);
                p.Backend.Upload(p.Storage, init.ToArray());
            }
    }

    public ResNet18Config Config { get; }
    public Conv2d Conv1 { get; }
    public BatchNorm2d Bn1 { get; }
    public ResNetLayer[] Layers { get; }
    public Linear? Fc { get; }

    /// <summary>Channels of the output: the last stage's width, or the classes after fc.</summary>
    public int OutChannels { get; }

    /// <summary>Total stride of the output map of a truncated network (4 after layer1, then ×2 per stage).</summary>
    public int OutStride => 4 << (Layers.Length - 1);

    public Tensor Forward(Tensor x)
    {
        if (x.Rank != 4 || x.Shape[1] != Config.InChannels)
            throw new ShapeException($"resnet18: input {ShapeUtil.Format(x.Shape)} must be [N, {Config.InChannels}, H, W]");
        var h = ConvBn.Forward(Conv1, Bn1, x, relu: true).MaxPool2d(3, 2, 1);
        foreach (var layer in Layers) h = layer.Forward(h);
        if (Fc is not null) return Fc.Forward(h.GlobalAvgPool());
        return Config.GlobalPool ? h.GlobalAvgPool() : h;
    }

    /// <summary>
    /// Imports torchvision weights saved as safetensors under torchvision's names (<c>conv1.weight</c>,
    /// <c>bn1.running_mean</c>, <c>layer1.0.conv1.weight</c>, <c>layer2.0.downsample.0.weight</c>, <c>fc.weight</c>, …;
    /// e.g. <c>safetensors.torch.save_file(resnet18().state_dict(), path)</c>). Every parameter and buffer of this
    /// (possibly truncated) network must be present with its shape; arrays of stages it does not have (or fc) are
    /// reported as unused, not an error. Returns the names loaded and unused.
    /// </summary>
    public ImportReport ImportTorchvision(string path) => ImportTorchvision(Safetensors.Read(path).Arrays, path);

    public ImportReport ImportTorchvision(IReadOnlyList<NamedArray> arrays, string source = "weights")
    {
        var byName = new Dictionary<string, NamedArray>();
        foreach (var a in arrays) byName[a.Name] = a;
        var loaded = new List<string>();
        using (GradMode.NoGrad())
            foreach (var (name, t) in NamedState())
            {
                if (!byName.TryGetValue(name, out var a))
                    throw new InvalidDataException($"{source}: '{name}' is missing (expected torchvision ResNet-18 names, e.g. conv1.weight, layer1.0.bn1.running_var)");
                StateDict.Load(t, a, source);
                loaded.Add(name);
            }
        var used = loaded.ToHashSet();
        return new ImportReport(loaded, arrays.Select(a => a.Name).Where(n => !used.Contains(n)).ToList(), [], []);
    }
}
