using System.Numerics;

namespace MicroExpr.Kernels;

/// <summary>
/// Scalar softmax / log-softmax reference over the last axis of [rows, cols]: every sum and exp in double, no threads,
/// no SIMD. Generic in the element type (float to compare with <see cref="SoftmaxSimd"/>, double for gradient checks).
/// Same argument order as the SIMD kernels.
/// </summary>
public static class SoftmaxReference
{
    /// <summary>y = exp(x − max)/Σ exp(x − max) per row.</summary>
    public static void Forward<T>(Span<T> y, ReadOnlySpan<T> x, int rows, int cols) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * cols, cols);
            double m = Max(xr), s = 0;
            for (int i = 0; i < cols; i++) s += Math.Exp(double.CreateTruncating(xr[i]) - m);
            for (int i = 0; i < cols; i++) y[r * cols + i] = T.CreateTruncating(Math.Exp(double.CreateTruncating(xr[i]) - m) / s);
        }
    }

    /// <summary>dx = y·(dy − Σ dy·y) per row, overwritten.</summary>
    public static void Backward<T>(Span<T> dx, ReadOnlySpan<T> y, ReadOnlySpan<T> dy, int rows, int cols)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
        {
            int o = r * cols;
            double dot = 0;
            for (int i = 0; i < cols; i++) dot += double.CreateTruncating(y[o + i]) * double.CreateTruncating(dy[o + i]);
            for (int i = 0; i < cols; i++)
                dx[o + i] = T.CreateTruncating(double.CreateTruncating(y[o + i]) * (double.CreateTruncating(dy[o + i]) - dot));
        }
    }

    /// <summary>y = x − max − ln Σ exp(x − max) per row.</summary>
    public static void LogForward<T>(Span<T> y, ReadOnlySpan<T> x, int rows, int cols) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * cols, cols);
            double m = Max(xr), s = 0;
            for (int i = 0; i < cols; i++) s += Math.Exp(double.CreateTruncating(xr[i]) - m);
            double sh = m + Math.Log(s);
            for (int i = 0; i < cols; i++) y[r * cols + i] = T.CreateTruncating(double.CreateTruncating(xr[i]) - sh);
        }
    }

    /// <summary>dx = dy − exp(y)·Σ dy per row, overwritten.</summary>
    public static void LogBackward<T>(Span<T> dx, ReadOnlySpan<T> y, ReadOnlySpan<T> dy, int rows, int cols)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
        {
            int o = r * cols;
            double s = 0;
            for (int i = 0; i < cols; i++) s += double.CreateTruncating(dy[o + i]);
            for (int i = 0; i < cols; i++)
                dx[o + i] = T.CreateTruncating(double.CreateTruncating(dy[o + i]) - Math.Exp(double.CreateTruncating(y[o + i])) * s);
        }
    }

    private static double Max<T>(ReadOnlySpan<T> v) where T : unmanaged, IFloatingPointIeee754<T>
    {
        double m = double.NegativeInfinity;
        foreach (var t in v) m = Math.Max(m, double.CreateTruncating(t));
        return m;
    }
}
