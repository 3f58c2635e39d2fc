using System.Numerics.Tensors;

namespace MicroExpr.Tensors.Cpu;

/// <summary>
/// How a broadcasting binary op walks memory: the output (contiguous) is cut into Outer runs of
/// Inner elements; within a run each operand is either contiguous or one repeated scalar, so each run
/// is one TensorPrimitives call. Size-1 axes are dropped first; trailing axes are merged while both
/// operands keep the same mode.
/// </summary>
internal sealed class BroadcastPlan
{
    private int[] outerShape = [];
    private int[] outerA = [];
    private int[] outerB = [];

    public int Inner { get; private set; } = 1;
    public int Outer { get; private set; } = 1;
    public bool AScalar { get; private set; } = true;
    public bool BScalar { get; private set; } = true;

    public static BroadcastPlan Create(int[] shape, int[] aStrides, int[] bStrides)
    {
        var dims = new List<(int size, int sa, int sb)>();
        for (int i = 0; i < shape.Length; i++)
            if (shape[i] != 1) dims.Add((shape[i], aStrides[i], bStrides[i]));
        var plan = new BroadcastPlan();
        if (dims.Count == 0) return plan;

        int last = dims.Count - 1;
        plan.AScalar = dims[last].sa == 0;
        plan.BScalar = dims[last].sb == 0;
        int inner = 1, j = last;
        for (; j >= 0; j--)
        {
            var (size, sa, sb) = dims[j];
            bool aOk = plan.AScalar ? sa == 0 : sa == inner;
            bool bOk = plan.BScalar ? sb == 0 : sb == inner;
            if (!aOk || !bOk) break;
            inner *= size;
        }
        plan.Inner = inner;
        int outerCount = j + 1;
        plan.outerShape = new int[outerCount];
        plan.outerA = new int[outerCount];
        plan.outerB = new int[outerCount];
        int outer = 1;
        for (int i = 0; i < outerCount; i++)
        {
            plan.outerShape[i] = dims[i].size;
            plan.outerA[i] = dims[i].sa;
            plan.outerB[i] = dims[i].sb;
            outer *= dims[i].size;
        }
        plan.Outer = outer;
        return plan;
    }

    /// <summary>Element offsets of a and b at the start of output run <paramref name="o"/>.</summary>
    public void Offsets(int o, out int aOff, out int bOff)
    {
        aOff = 0;
        bOff = 0;
        for (int j = outerShape.Length - 1; j >= 0; j--)
        {
            int idx = o % outerShape[j];
            o /= outerShape[j];
            aOff += idx * outerA[j];
            bOff += idx * outerB[j];
        }
    }
}

/// <summary>
/// How <see cref="CpuBackend.SumTo"/> walks memory: axes of size 1 in the source are dropped, the rest
/// are merged into alternating groups of kept and reduced axes, and the innermost group becomes one
/// TensorPrimitives call (an add of a row, or a sum of a row).
/// </summary>
internal sealed unsafe class ReducePlan
{
    public readonly record struct Group(int Size, bool Reduced, long SrcStride, long DstStride);

    public Group[] Groups { get; private init; } = [];

    public static ReducePlan Create(int[] dstShape, int[] srcShape)
    {
        if (dstShape.Length != srcShape.Length)
            throw new ArgumentException($"SumTo: rank of [{string.Join(", ", dstShape)}] differs from [{string.Join(", ", srcShape)}]");
        var dims = new List<(int size, bool reduced)>();
        for (int i = 0; i < srcShape.Length; i++)
        {
            if (srcShape[i] == 1) continue;
            bool reduced = dstShape[i] == 1;
            if (!reduced && dstShape[i] != srcShape[i])
                throw new ArgumentException($"SumTo: cannot reduce [{string.Join(", ", srcShape)}] to [{string.Join(", ", dstShape)}]");
            if (dims.Count > 0 && dims[^1].reduced == reduced) dims[^1] = (dims[^1].size * srcShape[i], reduced);
            else dims.Add((srcShape[i], reduced));
        }
        var groups = new Group[dims.Count];
        long srcStride = 1, dstStride = 1;
        for (int g = dims.Count - 1; g >= 0; g--)
        {
            groups[g] = new Group(dims[g].size, dims[g].reduced, srcStride, dims[g].reduced ? 0 : dstStride);
            srcStride *= dims[g].size;
            if (!dims[g].reduced) dstStride *= dims[g].size;
        }
        return new ReducePlan { Groups = groups };
    }

    /// <summary>Adds the source block that starts at sp into dst at dp, from group g inwards.</summary>
    public void Run(int g, float* dp, float* sp)
    {
        if (Groups.Length == 0)
        {
            *dp += *sp;
            return;
        }
        var grp = Groups[g];
        if (g == Groups.Length - 1)
        {
            var s = new ReadOnlySpan<float>(sp, grp.Size);
            if (grp.Reduced) *dp += TensorPrimitives.Sum(s);
            else
            {
                var d = new Span<float>(dp, grp.Size);
                TensorPrimitives.Add(d, s, d);
            }
            return;
        }
        for (int i = 0; i < grp.Size; i++)
            Run(g + 1, dp + i * grp.DstStride, sp + i * grp.SrcStride);
    }
}
