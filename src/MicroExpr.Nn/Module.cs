using MicroExpr.Tensors;

namespace MicroExpr.Nn;

/// <summary>
/// A layer or model: named parameters (timm/PyTorch naming, e.g. <c>blocks.0.attn.qkv.weight</c>), named buffers
/// (state that is saved but not trained, e.g. BatchNorm's <c>running_mean</c>) and child modules. Parameters are leaves
/// that receive gradients and outlive tensor scopes; the module owns and disposes them and its buffers.
/// </summary>
public abstract class Module : IDisposable
{
    private readonly List<(string Name, Tensor Value)> parameters = new();
    private readonly List<(string Name, Tensor Value, bool Host)> buffers = new();
    private readonly List<(string Name, Module Value)> children = new();
    private bool training = true;

    /// <summary>Training mode (dropout active, BatchNorm on batch statistics); propagates to children.</summary>
    public bool Training
    {
        get => training;
        set
        {
            training = value;
            foreach (var (_, c) in children) c.Training = value;
        }
    }

    protected Tensor Parameter(string name, Tensor value)
    {
        parameters.Add((name, value.AsParameter(name)));
        return value;
    }

    /// <summary>Training mode for this module and its children (PyTorch's <c>train()</c>).</summary>
    public Module Train()
    {
        Training = true;
        return this;
    }

    /// <summary>Evaluation mode for this module and its children (PyTorch's <c>eval()</c>).</summary>
    public Module Eval()
    {
        Training = false;
        return this;
    }

    /// <summary>
    /// Registers a buffer: saved with the parameters, never trained. <paramref name="host"/>: it stays in CPU memory when
    /// the module moves (a counter the host updates, such as <c>num_batches_tracked</c>).
    /// </summary>
    protected Tensor Buffer(string name, Tensor value, bool host = false)
    {
        value.Name = name;
        buffers.Add((name, value.Keep(), host));
        return value;
    }

    protected T Child<T>(string name, T module) where T : Module
    {
        children.Add((name, module));
        return module;
    }

    /// <summary>All parameters with dotted names, depth first, in registration order.</summary>
    public IEnumerable<(string Name, Tensor Value)> NamedParameters(string prefix = "")
    {
        foreach (var (n, p) in parameters) yield return (prefix + n, p);
        foreach (var (n, c) in children)
            foreach (var item in c.NamedParameters(prefix + n + "."))
                yield return item;
    }

    public IEnumerable<Tensor> Parameters() => NamedParameters().Select(p => p.Value);

    /// <summary>All buffers with dotted names, depth first, in registration order.</summary>
    public IEnumerable<(string Name, Tensor Value)> NamedBuffers(string prefix = "")
    {
        foreach (var (n, b, _) in buffers) yield return (prefix + n, b);
        foreach (var (n, c) in children)
            foreach (var item in c.NamedBuffers(prefix + n + "."))
                yield return item;
    }

    /// <summary>Parameters then buffers: everything a checkpoint holds (PyTorch's <c>state_dict</c>, in another order).</summary>
    public IEnumerable<(string Name, Tensor Value)> NamedState() => NamedParameters().Concat(NamedBuffers());

    /// <summary>Moves every parameter and buffer to the device (in place; optimizers must be created after this).</summary>
    public void To(Device device)
    {
        foreach (var p in Parameters()) p.MoveTo(device);
        MoveBuffers(device);
    }

    private void MoveBuffers(Device device)
    {
        foreach (var (_, b, host) in buffers)
            if (!host) b.MoveTo(device);
        foreach (var (_, c) in children) c.MoveBuffers(device);
    }

    public long ParameterCount() => Parameters().Sum(p => (long)p.Numel);

    public void ZeroGrad()
    {
        foreach (var p in Parameters()) p.ZeroGrad();
    }

    public virtual void Dispose()
    {
        foreach (var (_, p) in parameters)
        {
            p.ZeroGrad();
            p.Dispose();
        }
        foreach (var (_, b, _) in buffers) b.Dispose();
        foreach (var (_, c) in children) c.Dispose();
        GC.SuppressFinalize(this);
    }
}
