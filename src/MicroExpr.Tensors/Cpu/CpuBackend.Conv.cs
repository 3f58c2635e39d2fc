using MicroExpr.Kernels;

namespace MicroExpr.Tensors.Cpu;

/// <summary>The convolutions: <see cref="ConvSimd"/> on <see cref="CpuThreads.Count"/> threads.</summary>
public sealed unsafe partial class CpuBackend
{
    public void Conv(Storage y, Storage x, Storage w, Storage? b, in ConvGeometry g, bool relu)
    {
        using var prof = OpProfiler.Measure(OpCost.Conv(g));
        CheckConv(g, ("y", y, g.YLength), ("x", x, g.XLength), ("w", w, g.WLength), ("b", b, g.Cout));
        ConvSimd.Forward(P(y), P(x), P(w), b is null ? null : P(b), g, relu, CpuThreads.Count);
    }

    public void ConvBackwardData(Storage dx, Storage dy, Storage w, in ConvGeometry g)
    {
        using var prof = OpProfiler.Measure(OpCost.ConvBackwardData(g));
        CheckConv(g, ("dx", dx, g.XLength), ("dy", dy, g.YLength), ("w", w, g.WLength), ("", null, 0));
        ConvSimd.BackwardData(P(dx), P(dy), P(w), g, CpuThreads.Count);
    }

    public void ConvBackwardWeight(Storage dw, Storage? db, Storage dy, Storage x, in ConvGeometry g)
    {
        using var prof = OpProfiler.Measure(OpCost.ConvBackwardWeight(g, db != null));
        CheckConv(g, ("dw", dw, g.WLength), ("dy", dy, g.YLength), ("x", x, g.XLength), ("db", db, g.Cout));
        ConvSimd.BackwardWeight(P(dw), db is null ? null : P(db), P(dy), P(x), g, CpuThreads.Count);
    }

    /// <summary>The SIMD kernels take raw pointers: a buffer shorter than the geometry needs is refused here.</summary>
    private static void CheckConv(in ConvGeometry g, params ReadOnlySpan<(string Name, Storage? S, long Needed)> buffers)
    {
        foreach (var (name, s, needed) in buffers)
            if (s != null && s.Length < needed)
                throw new ArgumentException($"conv: {name} has {s.Length} elements, {g} needs {needed}");
    }
}
