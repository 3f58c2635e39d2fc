using ILGPU;
using ILGPU.Runtime;

namespace MicroExpr.Kernels;

/// <summary>
/// Fused softmax / log-softmax over the last axis of x [rows, cols] on an ILGPU accelerator.
/// Forward: y = exp(x − max)/Σexp(x − max), log: y = x − max − log Σexp(x − max).
/// Backward: dx = y∘(dy − Σ dy∘y); log backward: dx = dy − exp(y)·Σ dy.
/// <para>Versions:</para>
/// <list type="bullet">
/// <item>v1 <see cref="ForwardKernel"/> / <see cref="BackwardKernel"/>: one warp per row, W warps (rows) per group; lanes
/// stride over cols; the forward keeps an online (max, sum) per lane in one read of x, merges lanes with butterfly
/// shuffles, then writes y in a second pass; the backward reduces its one row sum with shuffles, then writes dx.
/// No shared memory and no group barrier: rows are independent, so a warp past the last row simply exits.</item>
/// </list>
/// </summary>
public sealed class SoftmaxKernels
{
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, SoftmaxArgs> _forward;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, SoftmaxArgs> _backward;

    /// <summary>Default: 4 warps (128 threads, 4 rows) per group.</summary>
    public SoftmaxKernels(Accelerator accelerator) : this(accelerator, 4) { }

    public SoftmaxKernels(Accelerator accelerator, int warpsPerGroup)
    {
        KernelChecks.GroupSize(accelerator, warpsPerGroup * KernelChecks.WarpSize, "softmax");
        Accelerator = accelerator;
        WarpsPerGroup = warpsPerGroup;
        _forward = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, SoftmaxArgs>(ForwardKernel);
        _backward = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, SoftmaxArgs>(BackwardKernel);
    }

    public Accelerator Accelerator { get; }

    /// <summary>Rows per group (one warp each).</summary>
    public int WarpsPerGroup { get; }

    public void Forward(AcceleratorStream stream, ArrayView<float> y, ArrayView<float> x, int rows, int cols) =>
        Launch(_forward, stream, y, x, x, rows, cols, log: false);

    public void Backward(AcceleratorStream stream, ArrayView<float> dx, ArrayView<float> y, ArrayView<float> dy, int rows, int cols) =>
        Launch(_backward, stream, dx, y, dy, rows, cols, log: false);

    public void LogForward(AcceleratorStream stream, ArrayView<float> y, ArrayView<float> x, int rows, int cols) =>
        Launch(_forward, stream, y, x, x, rows, cols, log: true);

    public void LogBackward(AcceleratorStream stream, ArrayView<float> dx, ArrayView<float> y, ArrayView<float> dy, int rows, int cols) =>
        Launch(_backward, stream, dx, y, dy, rows, cols, log: true);

    private void Launch(Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, SoftmaxArgs> kernel,
        AcceleratorStream stream, ArrayView<float> output, ArrayView<float> in1, ArrayView<float> in2, int rows, int cols, bool log)
    {
        if (rows < 0 || cols < 0) throw new ArgumentOutOfRangeException(nameof(rows), "softmax: negative dimension");
        if (rows == 0 || cols == 0) return;
        long n = (long)rows * cols;
        KernelChecks.Length(output, n, "output", "softmax");
        KernelChecks.Length(in1, n, "input", "softmax");
        KernelChecks.Length(in2, n, "input", "softmax");
        int groups = (rows + WarpsPerGroup - 1) / WarpsPerGroup;
        kernel(stream, new KernelConfig(groups, WarpsPerGroup * KernelChecks.WarpSize), output, in1, in2,
            new SoftmaxArgs { Rows = rows, Cols = cols, Log = log ? 1 : 0 });
    }

    /// <summary>v1 forward: y [rows, cols] from x [rows, cols] (<paramref name="unused"/> keeps one launcher signature).</summary>
    internal static void ForwardKernel(ArrayView<float> y, ArrayView<float> x, ArrayView<float> unused, SoftmaxArgs p)
    {
        int row = Grid.IdxX * (Group.DimX / Warp.WarpSize) + Warp.WarpIdx;
        if (row >= p.Rows) return;
        int lane = Warp.LaneIdx;
        long start = (long)row * p.Cols;
        // Online max/sum per lane: s is Σ exp(x − m) over this lane's columns.
        float m = float.NegativeInfinity, s = 0f;
        for (int j = lane; j < p.Cols; j += Warp.WarpSize)
        {
            float v = x[start + j];
            if (v > m) { s = s * FastMath.Exp(m - v) + 1f; m = v; }
            else s += FastMath.Exp(v - m);
        }
        float rowMax = WarpReduce.Max(m);
        float sum = WarpReduce.Sum(s == 0f ? 0f : s * FastMath.Exp(m - rowMax));
        if (p.Log != 0)
        {
            float shift = rowMax + FastMath.Log(sum);
            for (int j = lane; j < p.Cols; j += Warp.WarpSize) y[start + j] = x[start + j] - shift;
        }
        else
        {
            float inv = 1f / sum;
            for (int j = lane; j < p.Cols; j += Warp.WarpSize) y[start + j] = FastMath.Exp(x[start + j] - rowMax) * inv;
        }
    }

    /// <summary>v1 backward: dx [rows, cols] from y and dy [rows, cols].</summary>
    internal static void BackwardKernel(ArrayView<float> dx, ArrayView<float> y, ArrayView<float> dy, SoftmaxArgs p)
    {
        int row = Grid.IdxX * (Group.DimX / Warp.WarpSize) + Warp.WarpIdx;
        if (row >= p.Rows) return;
        int lane = Warp.LaneIdx;
        long start = (long)row * p.Cols;
        float part = 0f;
        if (p.Log != 0)
        {
            for (int j = lane; j < p.Cols; j += Warp.WarpSize) part += dy[start + j];
            float sum = WarpReduce.Sum(part);
            for (int j = lane; j < p.Cols; j += Warp.WarpSize) dx[start + j] = dy[start + j] - FastMath.Exp(y[start + j]) * sum;
        }
        else
        {
            for (int j = lane; j < p.Cols; j += Warp.WarpSize) part += dy[start + j] * y[start + j];
            float dot = WarpReduce.Sum(part);
            for (int j = lane; j < p.Cols; j += Warp.WarpSize) dx[start + j] = y[start + j] * (dy[start + j] - dot);
        }
    }
}

/// <summary>Softmax launch arguments; Log ≠ 0 selects log-softmax.</summary>
internal struct SoftmaxArgs
{
    public int Rows, Cols, Log;
}
