namespace MicroExpr.Tensors;

/// <summary>The exception for a shape that does not fit an op; the message names the op and the shapes.</summary>
public sealed class ShapeException(string message) : ArgumentException(message);

/// <summary>Shape arithmetic shared by the ops.</summary>
public static class ShapeUtil
{
    public static int Numel(int[] shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ShapeException($"negative dimension in shape {Format(shape)}");
            n *= d;
        }
        if (n > int.MaxValue) throw new ShapeException($"shape {Format(shape)} has more than 2^31 elements");
        return (int)n;
    }

    public static string Format(int[] shape) => "[" + string.Join(", ", shape) + "]";

    /// <summary>Contiguous row-major strides.</summary>
    public static int[] Strides(int[] shape)
    {
        var s = new int[shape.Length];
        int acc = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            s[i] = acc;
            acc *= shape[i];
        }
        return s;
    }

    /// <summary>Normalises a possibly negative axis.</summary>
    public static int Axis(int axis, int rank)
    {
        int a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= rank) throw new ShapeException($"axis {axis} is out of range for rank {rank}");
        return a;
    }

    /// <summary>NumPy broadcasting: shapes aligned at the right, each pair equal or one of them 1.</summary>
    public static int[] Broadcast(string op, int[] a, int[] b)
    {
        int rank = Math.Max(a.Length, b.Length);
        var r = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i - (rank - a.Length) >= 0 ? a[i - (rank - a.Length)] : 1;
            int db = i - (rank - b.Length) >= 0 ? b[i - (rank - b.Length)] : 1;
            if (da != db && da != 1 && db != 1)
                throw new ShapeException($"{op}: shapes {Format(a)} and {Format(b)} cannot be broadcast together");
            r[i] = da == 1 ? db : da;
        }
        return r;
    }

    /// <summary>Strides that read a contiguous tensor of shape <paramref name="shape"/> as <paramref name="outShape"/> (0 on broadcast axes).</summary>
    public static int[] BroadcastStrides(int[] shape, int[] outShape)
    {
        var strides = Strides(shape);
        var r = new int[outShape.Length];
        int offset = outShape.Length - shape.Length;
        for (int i = 0; i < shape.Length; i++)
            r[i + offset] = shape[i] == 1 && outShape[i + offset] != 1 ? 0 : strides[i];
        return r;
    }

    public static bool SameShape(int[] a, int[] b) => a.AsSpan().SequenceEqual(b);
}
