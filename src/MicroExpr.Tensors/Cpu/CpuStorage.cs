using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MicroExpr.Tensors.Cpu;

/// <summary>
/// CPU storage: a pinned float[] (allocated on the pinned object heap, so a raw pointer stays valid
/// without <c>fixed</c>) rented from <see cref="CpuPool"/> and returned to it when released. The data starts at the
/// array's first 64-byte boundary (<see cref="CpuPool.AlignmentFloats"/> spare floats make room for it): a pinned
/// array's elements are only 8-byte aligned, and a Vector512 load that straddles two cache lines costs two
/// (measured: fused attention 5 % slower on data 16 bytes off a line).
/// </summary>
public sealed unsafe class CpuStorage : Storage
{
    private readonly CpuPool pool;

    internal CpuStorage(IBackend backend, CpuPool pool, float[] array, int length) : base(backend, length)
    {
        this.pool = pool;
        Array = array;
        float* first = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
        Offset = (int)(((64 - ((nint)first & 63)) & 63) / sizeof(float));
        Pointer = first + Offset;
    }

    /// <summary>The pooled array; the data is <see cref="Storage.Length"/> floats from <see cref="Offset"/>.</summary>
    public float[] Array { get; }

    /// <summary>Where the data starts in <see cref="Array"/>: the first 64-byte-aligned element.</summary>
    public int Offset { get; }

    /// <summary>64-byte aligned.</summary>
    public float* Pointer { get; }

    public Span<float> Span => Array.AsSpan(Offset, Length);

    protected override void Free() => pool.Return(Array);
}

/// <summary>
/// A pool of pinned arrays keyed by exact length. A training step asks for the same sizes every
/// step, so after the first step nothing is allocated and the GC has nothing to do.
/// </summary>
public sealed class CpuPool
{
    private readonly Dictionary<int, Stack<float[]>> free = new();
    private readonly object gate = new();
    private long pooledBytes;
    private long allocations;

    /// <summary>
    /// Test aid: fill every buffer handed out for an op to overwrite with NaN, so that an output
    /// element an op forgets to write shows up as NaN.
    /// </summary>
    public static bool PoisonOnRent { get; set; }

    /// <summary>Arrays created because the pool had none of the size asked for (a steady training loop stops creating them).</summary>
    public long Allocations => Interlocked.Read(ref allocations);

    /// <summary>Bytes held by the pool, not in use.</summary>
    public long PooledBytes => Interlocked.Read(ref pooledBytes);

    /// <summary>Spare floats at the end of every array: room to start the data at a 64-byte boundary.</summary>
    public const int AlignmentFloats = 16;

    /// <summary>An array of at least <paramref name="length"/> + <see cref="AlignmentFloats"/> floats.</summary>
    public float[] Rent(int length)
    {
        lock (gate)
        {
            if (free.TryGetValue(length, out var stack) && stack.Count > 0)
            {
                pooledBytes -= 4L * (length + AlignmentFloats);
                return stack.Pop();
            }
        }
        Interlocked.Increment(ref allocations);
        return GC.AllocateUninitializedArray<float>(Math.Max(length, 1) + AlignmentFloats, pinned: true);
    }

    public void Return(float[] array)
    {
        int length = array.Length - AlignmentFloats;
        lock (gate)
        {
            if (!free.TryGetValue(length, out var stack)) free[length] = stack = new Stack<float[]>();
            stack.Push(array);
            pooledBytes += 4L * array.Length;
        }
    }

    /// <summary>Drops every pooled array (the GC reclaims them).</summary>
    public void Trim()
    {
        lock (gate)
        {
            free.Clear();
            pooledBytes = 0;
        }
    }
}
