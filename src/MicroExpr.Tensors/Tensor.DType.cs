using System.Runtime.InteropServices;

namespace MicroExpr.Tensors;

/// <summary>
/// Element type of a tensor. Storage is a buffer of 32-bit words: a float32 or int32 element takes one word, an int64
/// element two (little-endian, low word first). Integer tensors hold indices and counters (pooling arg-max indices,
/// BatchNorm's <c>num_batches_tracked</c>); only the ops that say so accept them (copies, clones, moves between
/// devices, the pooling ops that read indices), the arithmetic ops are float32 only.
/// </summary>
public enum DType { Float32, Int32, Int64 }

public sealed partial class Tensor
{
    /// <summary>Element type (float32 unless made by an integer factory or an op that returns indices).</summary>
    public DType DType { get; }

    /// <summary>32-bit words one element of <paramref name="dtype"/> takes in storage.</summary>
    public static int WordsPerElement(DType dtype) => dtype == DType.Int64 ? 2 : 1;

    /// <summary>An int32 tensor holding a copy of <paramref name="data"/>.</summary>
    public static Tensor FromInt32(ReadOnlySpan<int> data, int[] shape, Device? device = null)
    {
        if (data.Length != ShapeUtil.Numel(shape))
            throw new ShapeException($"FromInt32: {data.Length} values do not fill shape {ShapeUtil.Format(shape)} ({ShapeUtil.Numel(shape)} elements)");
        var backend = (device ?? Device.Cpu).Backend;
        var t = new Tensor(backend.Allocate(data.Length, zero: false), (int[])shape.Clone(), dtype: DType.Int32);
        backend.Upload(t.Storage, MemoryMarshal.Cast<int, float>(data));
        return t;
    }

    /// <summary>An int64 tensor holding a copy of <paramref name="data"/>.</summary>
    public static Tensor FromInt64(ReadOnlySpan<long> data, int[] shape, Device? device = null)
    {
        if (data.Length != ShapeUtil.Numel(shape))
            throw new ShapeException($"FromInt64: {data.Length} values do not fill shape {ShapeUtil.Format(shape)} ({ShapeUtil.Numel(shape)} elements)");
        var backend = (device ?? Device.Cpu).Backend;
        var t = new Tensor(backend.Allocate(2 * data.Length, zero: false), (int[])shape.Clone(), dtype: DType.Int64);
        backend.Upload(t.Storage, MemoryMarshal.Cast<long, float>(data));
        return t;
    }

    /// <summary>An uninitialised int32 tensor (an op's index output).</summary>
    internal static Tensor EmptyInt32(int[] shape, IBackend backend) =>
        new(backend.Allocate(ShapeUtil.Numel(shape), zero: false), shape, dtype: DType.Int32);

    /// <summary>The values of an int32 tensor.</summary>
    public int[] ToInt32Array()
    {
        ThrowIfDisposed();
        if (DType != DType.Int32) throw new InvalidOperationException($"ToInt32Array: {this} is {DType}, not Int32");
        var a = new int[Numel];
        Backend.Download(MemoryMarshal.Cast<int, float>(a.AsSpan()), Storage);
        return a;
    }

    /// <summary>The values of an int64 tensor.</summary>
    public long[] ToInt64Array()
    {
        ThrowIfDisposed();
        if (DType != DType.Int64) throw new InvalidOperationException($"ToInt64Array: {this} is {DType}, not Int64");
        var a = new long[Numel];
        Backend.Download(MemoryMarshal.Cast<long, float>(a.AsSpan()), Storage);
        return a;
    }

    /// <summary>Overwrites an int64 tensor's values (a counter such as <c>num_batches_tracked</c>).</summary>
    public void SetInt64(ReadOnlySpan<long> values)
    {
        ThrowIfDisposed();
        if (DType != DType.Int64) throw new InvalidOperationException($"SetInt64: {this} is {DType}, not Int64");
        if (values.Length != Numel) throw new ShapeException($"SetInt64: {values.Length} values for {ShapeUtil.Format(Shape)}");
        Backend.Upload(Storage, MemoryMarshal.Cast<long, float>(values));
    }

    /// <summary>Overwrites an int32 tensor's values.</summary>
    public void SetInt32(ReadOnlySpan<int> values)
    {
        ThrowIfDisposed();
        if (DType != DType.Int32) throw new InvalidOperationException($"SetInt32: {this} is {DType}, not Int32");
        if (values.Length != Numel) throw new ShapeException($"SetInt32: {values.Length} values for {ShapeUtil.Format(Shape)}");
        Backend.Upload(Storage, MemoryMarshal.Cast<int, float>(values));
    }

    /// <summary>Throws unless the tensor is float32 (ops that compute on values call it).</summary>
    internal void RequireFloat(string op)
    {
        if (DType != DType.Float32) throw new InvalidOperationException($"{op}: {this} is {DType}; this op takes float32 tensors");
    }
}
