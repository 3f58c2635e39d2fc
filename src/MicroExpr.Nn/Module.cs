using MicroExpr.Tensors;

namespace MicroExpr.Nn;

/// <summary>
/// A layer or model: named parameters (timm/PyTorch naming, e.g. <c>blocks.0.attn.qkv.weight</c>) and
/// child modules. Parameters are leaves that receive gradients and outlive tensor scopes; the module
/// owns and disposes them.
/// </summary>
public abstract class Module : IDisposable
{
    private readonly List<(string Name, Tensor Value)> parameters = new();
    private readonly List<(string Name, Module Value)> children = new();
    private bool training = true;

    /// <summary>Training mode (dropout active); propagates to children.</summary>
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

    /// <summary>Moves every parameter to the device (in place; optimizers must be created after this).</summary>
    public void To(Device device)
    {
        foreach (var p in Parameters()) p.MoveTo(device);
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
        foreach (var (_, c) in children) c.Dispose();
        GC.SuppressFinalize(this);
    }
}
