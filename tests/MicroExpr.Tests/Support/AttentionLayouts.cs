using MicroExpr.Kernels;
using MicroExpr.Tensors;

namespace MicroExpr.Tests.Support;

/// <summary>
/// Strided attention operands for the kernel tests: layouts other than contiguous, and moving [BH, N, D] data in and
/// out of a buffer through a layout. Buffers are NaN everywhere a layout does not reach, so a kernel that reads a gap
/// (or an element of another operand) gets NaN into its results, and one that writes a gap is caught by
/// <see cref="AssertGapsUntouched"/>.
/// </summary>
public static class AttentionLayouts
{
    /// <summary>
    /// Token-major heads with gaps: [B, N, Heads, D] with rowPad unused floats after each row of Heads·D, batchPad after
    /// each batch, offset floats before the first (what a QKV projection looks like, with padding on top).
    /// </summary>
    public static AttentionOperandLayout TokenMajor(int n, int heads, int d, int rowPad, int batchPad, int offset)
    {
        int row = heads * d + rowPad;
        return new AttentionOperandLayout(offset, heads, n * row + batchPad, d, row);
    }

    /// <summary>Head-major [BH, N, D] with rowPad floats after each row, headPad after each head, offset before the first.</summary>
    public static AttentionOperandLayout HeadMajor(int n, int d, int rowPad, int headPad, int offset) =>
        new(offset, 1, n * (d + rowPad) + headPad, 0, d + rowPad);

    /// <summary>
    /// Four different layouts in four separate buffers: q token-major with gaps, k head-major with gaps, v token-major
    /// without row gaps, o head-major with gaps. <paramref name="heads"/> must divide BH.
    /// </summary>
    public static AttentionLayout Mixed(int heads, int nq, int nk, int d) => new(
        TokenMajor(nq, heads, d, rowPad: 3, batchPad: 2, offset: 5),
        HeadMajor(nk, d, rowPad: 2, headPad: 1, offset: 0),
        TokenMajor(nk, heads, d, rowPad: 0, batchPad: 0, offset: 1),
        HeadMajor(nq, d, rowPad: 1, headPad: 3, offset: 2));

    /// <summary>Buffer length for a layout: its reach plus a NaN tail (a kernel that runs past the end reads NaN).</summary>
    public static int Length(AttentionOperandLayout l, int bh, int n, int d) => (int)l.Reach(bh, n, d) + 7;

    /// <summary>dense [BH, N, D] written into buf through the layout.</summary>
    public static void Place(float[] buf, AttentionOperandLayout l, float[] dense, int bh, int n, int d)
    {
        for (int h = 0; h < bh; h++)
            for (int r = 0; r < n; r++)
                for (int c = 0; c < d; c++)
                    buf[l.RowStart(h, r) + c] = dense[(h * n + r) * d + c];
    }

    /// <summary>A NaN buffer holding dense [BH, N, D] at the layout.</summary>
    public static float[] Placed(AttentionOperandLayout l, float[] dense, int bh, int n, int d)
    {
        var buf = Check.NaNs(Length(l, bh, n, d));
        Place(buf, l, dense, bh, n, d);
        return buf;
    }

    /// <summary>[BH, N, D] read out of buf through the layout.</summary>
    public static float[] Take(float[] buf, AttentionOperandLayout l, int bh, int n, int d)
    {
        var dense = new float[bh * n * d];
        for (int h = 0; h < bh; h++)
            for (int r = 0; r < n; r++)
                for (int c = 0; c < d; c++)
                    dense[(h * n + r) * d + c] = buf[l.RowStart(h, r) + c];
        return dense;
    }

    /// <summary>Every element of buf that none of the layouts reaches is still NaN (nothing was written into a gap).</summary>
    public static void AssertGapsUntouched(float[] buf, string what, int bh, int d, params (AttentionOperandLayout L, int N)[] layouts)
    {
        var reached = new bool[buf.Length];
        foreach (var (l, n) in layouts)
            for (int h = 0; h < bh; h++)
                for (int r = 0; r < n; r++)
                    for (int c = 0; c < d; c++)
                        reached[l.RowStart(h, r) + c] = true;
        for (int i = 0; i < buf.Length; i++)
            if (!reached[i] && !float.IsNaN(buf[i]))
                Assert.Fail($"{what}: element {i} lies outside the layout but was written ({buf[i]})");
    }
}
