namespace MicroExpr.Tensors.Autograd;

/// <summary>
/// One recorded op on the tape: its inputs and a closure that maps the gradient of its output to the
/// gradients of its inputs (null where an input needs none). As in micrograd, backward is a
/// topological sort and a reverse walk over these nodes.
/// </summary>
internal sealed class Node(string op, Tensor[] inputs, Func<Tensor, Tensor?[]> backward)
{
    public string Op { get; } = op;
    public Tensor[] Inputs { get; } = inputs;
    public Func<Tensor, Tensor?[]> Backward { get; } = backward;
}

/// <summary>Switches for the tape: gradient recording and anomaly detection (per thread).</summary>
public static class GradMode
{
    [ThreadStatic] private static int noGradDepth;

    /// <summary>False inside a <see cref="NoGrad"/> scope (and during backward).</summary>
    public static bool Enabled => noGradDepth == 0;

    /// <summary>When on, every op checks its output (and backward every gradient) for NaN/Inf and throws naming the op.</summary>
    public static bool DetectAnomaly { get; set; }

    /// <summary>Ops inside the returned scope record nothing: <c>using (GradMode.NoGrad()) { ... }</c>.</summary>
    public static IDisposable NoGrad()
    {
        noGradDepth++;
        return new Restore();
    }

    private sealed class Restore : IDisposable
    {
        private bool done;

        public void Dispose()
        {
            if (done) return;
            done = true;
            noGradDepth--;
        }
    }
}

/// <summary>The exception anomaly mode throws: names the first op whose output held NaN or Inf.</summary>
public sealed class AnomalyException(string message) : InvalidOperationException(message);
