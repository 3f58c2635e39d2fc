using ILGPU;
using ILGPU.Runtime;

namespace MicroExpr.Tensors.Ilgpu;

/// <summary>
/// Device storage: a buffer of accelerator memory rented from <see cref="IlgpuPool"/> and returned to it
/// when the last tensor lets go. <see cref="View"/> covers exactly <see cref="Storage.Length"/> floats.
/// </summary>
public sealed class IlgpuStorage : Storage
{
    private readonly IlgpuPool pool;

    internal IlgpuStorage(IBackend backend, IlgpuPool pool, MemoryBuffer1D<float, Stride1D.Dense> buffer, int length) : base(backend, length)
    {
        this.pool = pool;
        Buffer = buffer;
        View = buffer.View.SubView(0, length);
    }

    /// <summary>The pooled buffer (at least one element, so an empty tensor still has a valid view).</summary>
    public MemoryBuffer1D<float, Stride1D.Dense> Buffer { get; }

    public ArrayView<float> View { get; }

    /// <summary>The view from element <paramref name="offset"/> to the end (kernels take offsets as sub-views).</summary>
    public ArrayView<float> From(int offset) => View.SubView(offset, Length - offset);

    protected override void Free() => pool.Return(Buffer);
}

/// <summary>
/// Device buffers keyed by exact length, like the CPU backend's pool: after the first training step no
/// step allocates device memory.
/// <para>
/// Returning a buffer needs no synchronisation: every kernel, copy and memset of the backend goes to one
/// in-order stream, so when the buffer is handed out again, the new owner's first write is queued behind
/// every earlier kernel that read or wrote it. Only <see cref="Trim"/> (which frees memory for real)
/// synchronises the stream first.
/// </para>
/// </summary>
public sealed class IlgpuPool : IDisposable
{
    private readonly Accelerator accelerator;
    private readonly AcceleratorStream stream;
    private readonly Dictionary<long, Stack<MemoryBuffer1D<float, Stride1D.Dense>>> free = new();
    private readonly Dictionary<long, Stack<MemoryBuffer1D<int, Stride1D.Dense>>> freeInts = new();
    private readonly object gate = new();
    private long pooledBytes;
    private long allocations;

    internal IlgpuPool(Accelerator accelerator, AcceleratorStream stream)
    {
        this.accelerator = accelerator;
        this.stream = stream;
    }

    /// <summary>Buffers created because the pool had none of the size asked for.</summary>
    public long Allocations => Interlocked.Read(ref allocations);

    /// <summary>Bytes held by the pool, not in use.</summary>
    public long PooledBytes => Interlocked.Read(ref pooledBytes);

    public MemoryBuffer1D<float, Stride1D.Dense> Rent(int length)
    {
        long n = Math.Max(length, 1);
        lock (gate)
        {
            if (free.TryGetValue(n, out var stack) && stack.Count > 0)
            {
                pooledBytes -= 4 * n;
                return stack.Pop();
            }
        }
        Interlocked.Increment(ref allocations);
        return accelerator.Allocate1D<float>(n);
    }

    public void Return(MemoryBuffer1D<float, Stride1D.Dense> buffer)
    {
        lock (gate)
        {
            if (!free.TryGetValue(buffer.Length, out var stack)) free[buffer.Length] = stack = new();
            stack.Push(buffer);
            pooledBytes += 4 * buffer.Length;
        }
    }

    /// <summary>An int buffer (indices) of at least one element; same stream-order rule as float buffers.</summary>
    internal MemoryBuffer1D<int, Stride1D.Dense> RentInts(int length)
    {
        long n = Math.Max(length, 1);
        lock (gate)
        {
            if (freeInts.TryGetValue(n, out var stack) && stack.Count > 0) return stack.Pop();
        }
        Interlocked.Increment(ref allocations);
        return accelerator.Allocate1D<int>(n);
    }

    internal void ReturnInts(MemoryBuffer1D<int, Stride1D.Dense> buffer)
    {
        lock (gate)
        {
            if (!freeInts.TryGetValue(buffer.Length, out var stack)) freeInts[buffer.Length] = stack = new();
            stack.Push(buffer);
        }
    }

    /// <summary>Frees every pooled buffer (after the stream has finished with them).</summary>
    public void Trim()
    {
        stream.Synchronize();
        lock (gate)
        {
            foreach (var s in free.Values)
                foreach (var b in s) b.Dispose();
            foreach (var s in freeInts.Values)
                foreach (var b in s) b.Dispose();
            free.Clear();
            freeInts.Clear();
            pooledBytes = 0;
        }
    }

    public void Dispose() => Trim();
}
