using MicroExpr.Tensors.Autograd;

namespace MicroExpr.Tensors;

/// <summary>
/// A float32 tensor: a shape, a contiguous row-major storage on one device, and (when it was made by
/// an op that needs gradients) the autograd node that made it. Tensors are disposable; a
/// <see cref="TensorScope"/> frees every tensor made inside it, so one training step's intermediates
/// go back to the pool at the end of the step.
/// </summary>
public sealed partial class Tensor : IDisposable
{
    private TensorScope? scope;

    internal Tensor(Storage storage, int[] shape, bool tracked = true, DType dtype = DType.Float32)
    {
        Storage = storage;
        Shape = shape;
        DType = dtype;
        Numel = ShapeUtil.Numel(shape);
        if ((long)Numel * WordsPerElement(dtype) > storage.Length)
            throw new ArgumentException($"shape {ShapeUtil.Format(shape)} {dtype} needs {(long)Numel * WordsPerElement(dtype)} words; storage has {storage.Length}");
        if (tracked) TensorScope.Current?.Register(this);
    }

    /// <summary>Dimensions, outermost first. Do not modify.</summary>
    public int[] Shape { get; }

    public int Rank => Shape.Length;
    public int Numel { get; }
    public Storage Storage { get; private set; }
    public IBackend Backend => Storage.Backend;
    public Device Device => Storage.Owner.Device;

    /// <summary>Set on leaves (parameters, inputs) whose gradient is wanted in <see cref="Grad"/>.</summary>
    public bool RequiresGrad { get; set; }

    /// <summary>Accumulated gradient of a leaf with <see cref="RequiresGrad"/>, after <see cref="Backward"/>.</summary>
    public Tensor? Grad { get; internal set; }

    /// <summary>The op that made this tensor, when it takes part in a gradient computation.</summary>
    internal Node? Node { get; set; }

    /// <summary>True when a gradient flows through this tensor.</summary>
    public bool NeedsGrad => RequiresGrad || Node != null;

    /// <summary>Optional name (parameters), used in messages.</summary>
    public string? Name { get; set; }

    public bool IsDisposed { get; private set; }

    internal TensorScope? Scope
    {
        get => scope;
        set => scope = value;
    }

    public int Dim(int axis) => Shape[ShapeUtil.Axis(axis, Rank)];

    public override string ToString() => $"Tensor{ShapeUtil.Format(Shape)}{(Name is null ? "" : " " + Name)} on {Device}";

    // --- creation -------------------------------------------------------------------------------
    public static Tensor Empty(int[] shape, Device? device = null)
    {
        var backend = (device ?? Device.Cpu).Backend;
        return new Tensor(backend.Allocate(ShapeUtil.Numel(shape), zero: false), (int[])shape.Clone());
    }

    public static Tensor Zeros(params int[] shape) => Zeros(shape, null);

    public static Tensor Zeros(int[] shape, Device? device)
    {
        var backend = (device ?? Device.Cpu).Backend;
        return new Tensor(backend.Allocate(ShapeUtil.Numel(shape), zero: true), (int[])shape.Clone());
    }

    public static Tensor Ones(params int[] shape) => Full(1f, shape);

    public static Tensor Full(float value, int[] shape, Device? device = null)
    {
        var t = Empty(shape, device);
        t.Backend.Fill(t.Storage, value);
        return t;
    }

    public static Tensor Scalar(float value, Device? device = null) => Full(value, [], device);

    /// <summary>A tensor holding a copy of <paramref name="data"/>.</summary>
    public static Tensor FromArray(float[] data, params int[] shape) => FromSpan(data, shape, null);

    public static Tensor FromSpan(ReadOnlySpan<float> data, int[] shape, Device? device)
    {
        if (data.Length != ShapeUtil.Numel(shape))
            throw new ShapeException($"FromArray: {data.Length} values do not fill shape {ShapeUtil.Format(shape)} ({ShapeUtil.Numel(shape)} elements)");
        var t = Empty(shape, device);
        t.Backend.Upload(t.Storage, data);
        return t;
    }

    /// <summary>Normal(mean, std) values from a seeded generator.</summary>
    public static Tensor RandN(int[] shape, Rng rng, float mean = 0f, float std = 1f, Device? device = null)
    {
        var data = new float[ShapeUtil.Numel(shape)];
        for (int i = 0; i < data.Length; i++) data[i] = mean + std * (float)rng.NextNormal();
        return FromSpan(data, shape, device);
    }

    /// <summary>Uniform values in [lo, hi) from a seeded generator.</summary>
    public static Tensor RandU(int[] shape, Rng rng, float lo = 0f, float hi = 1f, Device? device = null)
    {
        var data = new float[ShapeUtil.Numel(shape)];
        for (int i = 0; i < data.Length; i++) data[i] = lo + (hi - lo) * (float)rng.NextDouble();
        return FromSpan(data, shape, device);
    }

    /// <summary>
    /// Normal(0, std) resampled until inside [lo, hi] (absolute bounds, as timm's trunc_normal_ with its
    /// defaults a = -2, b = 2).
    /// </summary>
    public static Tensor TruncNormal(int[] shape, Rng rng, float std, float lo = -2f, float hi = 2f, Device? device = null)
    {
        var data = new float[ShapeUtil.Numel(shape)];
        for (int i = 0; i < data.Length; i++)
        {
            double v;
            do v = std * rng.NextNormal(); while (v < lo || v > hi);
            data[i] = (float)v;
        }
        return FromSpan(data, shape, device);
    }

    // --- host access ----------------------------------------------------------------------------
    public float[] ToArray()
    {
        ThrowIfDisposed();
        RequireFloat("ToArray");
        var a = new float[Numel];
        Backend.Download(a, Storage);
        return a;
    }

    /// <summary>The value of a one-element tensor.</summary>
    public float Item()
    {
        if (Numel != 1) throw new ShapeException($"Item: tensor {ShapeUtil.Format(Shape)} has {Numel} elements, expected 1");
        return ToArray()[0];
    }

    // --- lifetime -------------------------------------------------------------------------------
    /// <summary>
    /// Makes this tensor outlive the current scope (a parameter, a result to keep). It must then be
    /// disposed by its owner.
    /// </summary>
    public Tensor Keep()
    {
        scope = null;
        return this;
    }

    /// <summary>Marks a leaf as a trainable parameter: it receives gradients and outlives scopes.</summary>
    public Tensor AsParameter(string? name = null)
    {
        if (Node != null) throw new InvalidOperationException($"AsParameter: {this} was made by op '{Node.Op}'; only a leaf can be a parameter");
        RequiresGrad = true;
        Name = name ?? Name;
        return Keep();
    }

    /// <summary>A new tensor over the same storage, cut from the graph (no gradient flows through it).</summary>
    public Tensor Detach()
    {
        Storage.AddRef();
        return new Tensor(Storage, Shape, dtype: DType);
    }

    /// <summary>A copy in fresh storage, cut from the graph.</summary>
    public Tensor Clone()
    {
        int words = Numel * WordsPerElement(DType);
        var t = new Tensor(Backend.Allocate(words, false), Shape, dtype: DType);
        // A copy of 32-bit words: exact for integer tensors too (the copy primitive moves values, it computes nothing).
        Backend.CopyStrided(new View(t.Storage, 0, [1]), new View(Storage, 0, [1]), [words], CopyMode.Assign);
        return t;
    }

    public void Dispose()
    {
        if (IsDisposed) return;
        IsDisposed = true;
        Node = null;
        if (!DataReleased) Storage.Release();
    }

    /// <summary>True after <see cref="ReleaseData"/>: the shape and the graph remain, the values are gone.</summary>
    public bool DataReleased { get; private set; }

    /// <summary>
    /// Gives the values back to the pool now while the tensor stays in the graph: for an intermediate whose every
    /// consumer has been made and none of whose backward reads it (e.g. a residual branch's output consumed only by
    /// the add). Training then holds one activation less until the end of the step. Any later use of the values throws.
    /// </summary>
    public void ReleaseData()
    {
        if (IsDisposed || DataReleased) return;
        if (RequiresGrad) throw new InvalidOperationException($"ReleaseData: {this} is a parameter; its values are needed");
        DataReleased = true;
        Storage.Release();
    }

    /// <summary>Throws when the tensor or its values are gone (every op checks its inputs with this).</summary>
    internal void ThrowIfDisposed()
    {
        ThrowIfGone();
        if (DataReleased) throw new InvalidOperationException($"{this}: its values were released (ReleaseData) after its last use; it cannot be read again");
    }

    /// <summary>Throws when the tensor was disposed (the graph walk only needs the tensor, not its values).</summary>
    internal void ThrowIfGone()
    {
        if (IsDisposed) throw new ObjectDisposedException(ToString(), "tensor was disposed (was it made inside a TensorScope that has ended? call Keep() to keep it)");
    }

    /// <summary>
    /// Moves a leaf (a parameter) to another device in place: the same tensor object, its values copied into storage
    /// of the new device. Modules keep references to their parameters, so this is how a built model changes device.
    /// </summary>
    public void MoveTo(Device device)
    {
        ThrowIfDisposed();
        if (device == Device) return;
        if (Node != null) throw new InvalidOperationException($"MoveTo: {this} was made by op '{Node.Op}'; only leaves move in place (use To for others)");
        var values = new float[Storage.Length];
        Backend.Download(values, Storage);
        var storage = device.Backend.Allocate(Storage.Length, zero: false);
        device.Backend.Upload(storage, values);
        Storage.Release();
        Storage = storage;
        if (Grad != null)
        {
            Grad.Dispose();
            Grad = null;
        }
    }

    /// <summary>Releases this leaf's gradient.</summary>
    public void ZeroGrad()
    {
        Grad?.Dispose();
        Grad = null;
    }
}
