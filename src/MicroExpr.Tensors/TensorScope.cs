namespace MicroExpr.Tensors;

/// <summary>
/// Frees, when disposed, every tensor created on this thread while it was the innermost scope, except
/// tensors that called <see cref="Tensor.Keep"/> (parameters, results to keep). Wrap one training
/// step in a scope and its activations and gradients go back to the pool at the end of the step.
/// </summary>
public sealed class TensorScope : IDisposable
{
    [ThreadStatic] private static TensorScope? current;

    private readonly TensorScope? parent;
    private readonly List<Tensor> tensors = new();
    private bool disposed;

    public TensorScope()
    {
        parent = current;
        current = this;
    }

    internal static TensorScope? Current => current;

    /// <summary>Tensors registered so far (for diagnostics).</summary>
    public int Count => tensors.Count;

    internal void Register(Tensor t)
    {
        t.Scope = this;
        tensors.Add(t);
    }

    /// <summary>
    /// Hands <paramref name="t"/> to the enclosing scope (or makes it kept when there is none), so it outlives this
    /// scope's end: <c>using var s = new TensorScope(); ...; return s.Return(y);</c> frees everything else made inside.
    /// </summary>
    public Tensor Return(Tensor t)
    {
        if (t.Scope == this)
        {
            if (parent != null) parent.Register(t);
            else t.Keep();
        }
        return t;
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        if (current != this) throw new InvalidOperationException("TensorScope disposed out of order (scopes must nest)");
        current = parent;
        foreach (var t in tensors)
            if (t.Scope == this) t.Dispose();
        tensors.Clear();
    }
}
