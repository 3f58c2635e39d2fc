using MicroExpr.Tensors.Autograd;

namespace MicroExpr.Tensors;

public sealed partial class Tensor
{
    /// <summary>
    /// Reverse-mode differentiation from this scalar: visits the recorded graph in reverse topological
    /// order and adds d(this)/d(leaf) into the <see cref="Grad"/> of every leaf with
    /// <see cref="RequiresGrad"/> (gradients accumulate across calls until <see cref="ZeroGrad"/>).
    /// Intermediate gradients are freed as soon as their node has been processed.
    /// </summary>
    public void Backward()
    {
        ThrowIfDisposed();
        if (Numel != 1) throw new ShapeException($"Backward: needs a scalar (one element); this tensor is {ShapeUtil.Format(Shape)}");
        if (!NeedsGrad) throw new InvalidOperationException("Backward: this tensor does not depend on any tensor that requires a gradient");

        var order = TopologicalOrder(this);
        var grads = new Dictionary<Tensor, Tensor>(ReferenceEqualityComparer.Instance);
        using (GradMode.NoGrad())
        {
            grads[this] = Full(1f, Shape, Device);
            for (int i = order.Count - 1; i >= 0; i--)
            {
                var t = order[i];
                if (!grads.Remove(t, out var g)) continue;
                if (t.Node is null)
                {
                    if (t.RequiresGrad) t.AccumulateLeafGrad(g);
                    else g.Dispose();
                    continue;
                }
                var node = t.Node;
                var inputGrads = node.Backward(g);
                for (int j = 0; j < node.Inputs.Length; j++)
                {
                    var gi = inputGrads[j];
                    var input = node.Inputs[j];
                    if (gi is null) continue;
                    if (!input.NeedsGrad)
                    {
                        if (!ReferenceEquals(gi, g)) gi.Dispose();
                        continue;
                    }
                    if (!ShapeUtil.SameShape(gi.Shape, input.Shape))
                        throw new ShapeException($"{node.Op} backward: gradient {ShapeUtil.Format(gi.Shape)} for input {j} of shape {ShapeUtil.Format(input.Shape)}");
                    // A closure may hand the same tensor to several inputs (or pass g through): give each its own handle.
                    if (ReferenceEquals(gi, g) || SharedWithEarlier(inputGrads, j)) gi = gi.Detach();
                    if (GradMode.DetectAnomaly && gi.Backend.HasNonFinite(gi.Storage, gi.Numel))
                        throw new AnomalyException($"anomaly: the gradient that op '{node.Op}' passed to its input {j} {ShapeUtil.Format(input.Shape)} holds NaN or Inf");
                    if (grads.TryGetValue(input, out var existing)) grads[input] = AddInto(existing, gi);
                    else grads[input] = gi;
                }
                g.Dispose();
            }
        }
        foreach (var leftover in grads.Values) leftover.Dispose();
    }

    private static bool SharedWithEarlier(Tensor?[] grads, int j)
    {
        for (int i = 0; i < j; i++)
            if (ReferenceEquals(grads[i], grads[j])) return true;
        return false;
    }

    /// <summary>existing + g, written into existing unless its storage is shared (copy on write).</summary>
    private static Tensor AddInto(Tensor existing, Tensor g)
    {
        if (existing.Storage.IsShared)
        {
            var copy = existing.Clone();
            existing.Dispose();
            existing = copy;
        }
        existing.Backend.Axpy(existing.Storage, g.Storage, g.Numel, 1f);
        g.Dispose();
        return existing;
    }

    private void AccumulateLeafGrad(Tensor g)
    {
        if (Grad is null)
        {
            // The gradient outlives the step's scope; a shared storage is copied so later in-place accumulation is safe.
            Grad = g.Storage.IsShared ? g.Clone() : g;
            if (!ReferenceEquals(Grad, g)) g.Dispose();
            Grad.Keep();
        }
        else
        {
            Grad = AddInto(Grad, g).Keep();
        }
    }

    private static List<Tensor> TopologicalOrder(Tensor root)
    {
        var order = new List<Tensor>();
        var visited = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<(Tensor t, int next)>();
        stack.Push((root, 0));
        visited.Add(root);
        while (stack.Count > 0)
        {
            var (t, next) = stack.Pop();
            var inputs = t.Node?.Inputs ?? [];
            if (next < inputs.Length)
            {
                stack.Push((t, next + 1));
                var child = inputs[next];
                if (child.NeedsGrad && visited.Add(child))
                {
                    child.ThrowIfGone();
                    stack.Push((child, 0));
                }
            }
            else
            {
                order.Add(t);
            }
        }
        return order;
    }

    /// <summary>Attaches the tape node to a freshly computed output (when any input needs a gradient) and runs the anomaly check.</summary>
    internal static Tensor Record(Tensor output, string op, Tensor[] inputs, Func<Tensor, Tensor?[]> backward)
    {
        if (GradMode.DetectAnomaly && output.Backend.HasNonFinite(output.Storage, output.Numel))
            throw new AnomalyException($"anomaly: the output of op '{op}' {ShapeUtil.Format(output.Shape)} holds NaN or Inf (inputs: {string.Join(", ", inputs.Select(i => ShapeUtil.Format(i.Shape)))})");
        if (!GradMode.Enabled) return output;
        foreach (var input in inputs)
        {
            if (input.NeedsGrad)
            {
                output.Node = new Node(op, inputs, backward);
                break;
            }
        }
        return output;
    }
}
