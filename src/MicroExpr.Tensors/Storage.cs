namespace MicroExpr.Tensors;

/// <summary>
/// A flat float32 buffer owned by one backend. Several tensors may share one storage (a reshape is a
/// new tensor over the same storage), so storage is reference counted: the last tensor to let go
/// returns the buffer to its backend's pool.
/// </summary>
public abstract class Storage
{
    private int refCount = 1;

    protected Storage(IBackend owner, int length)
    {
        Owner = owner;
        Length = length;
    }

    /// <summary>The backend whose memory this is (without the profiling decorator).</summary>
    public IBackend Owner { get; }

    /// <summary>The backend ops on this storage go through: its device's, profiling decorator included.</summary>
    public IBackend Backend => Owner.Device.Backend;

    /// <summary>Number of float elements.</summary>
    public int Length { get; }

    internal bool IsReleased => Volatile.Read(ref refCount) <= 0;

    /// <summary>True when more than one tensor uses this storage (copy before writing in place).</summary>
    internal bool IsShared => Volatile.Read(ref refCount) > 1;

    internal void AddRef()
    {
        if (Interlocked.Increment(ref refCount) <= 1)
            throw new ObjectDisposedException(nameof(Storage), "storage was already released");
    }

    internal void Release()
    {
        int left = Interlocked.Decrement(ref refCount);
        if (left == 0) Free();
        else if (left < 0) throw new InvalidOperationException("storage released twice");
    }

    /// <summary>Returns the buffer to the backend's pool.</summary>
    protected abstract void Free();
}
