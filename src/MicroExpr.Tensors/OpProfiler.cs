using System.Diagnostics;

namespace MicroExpr.Tensors;

/// <summary>Which clock timed a row of a profile.</summary>
public enum OpClock
{
    /// <summary>A host stopwatch around the call: right for the CPU backend, whose calls are synchronous.</summary>
    Host,

    /// <summary>
    /// Two device events (ILGPU profiling markers) on the backend's stream, one before and one after the op's
    /// launches, read after one stream synchronisation when the profile is read. The interval is the time the
    /// stream spent from the first marker to the second: the op's kernels, plus any gap in which the device sat
    /// waiting for the host to launch them.
    /// </summary>
    DeviceEvents,

    /// <summary>
    /// A host stopwatch around the call with the stream synchronised before and after it: the fallback of an ILGPU
    /// accelerator without profiling markers. Launch latency is included and the device drains between ops.
    /// </summary>
    HostSynchronised,
}

/// <summary>One op kind's totals in a profile, on one device, timed by one clock.</summary>
public sealed record OpStat(string Device, OpClock Clock, string Kind, long Calls, double TotalMs, double Flops, double Bytes)
{
    public double MeanUs => Calls == 0 ? 0 : TotalMs * 1000 / Calls;
    public double Gflops => TotalMs <= 0 ? 0 : Flops / (TotalMs * 1e-3) / 1e9;
    public double Gbps => TotalMs <= 0 ? 0 : Bytes / (TotalMs * 1e-3) / 1e9;
}

/// <summary>
/// Timings a backend has queued but not yet read (device events still in flight). <see cref="OpProfiler"/> asks
/// for them when the profile is read; the source then adds them through <see cref="OpProfiler.Add"/>.
/// </summary>
public interface IDeferredOpTimings
{
    /// <summary>Waits for the queued work (one synchronisation), adds every queued timing and releases its markers.</summary>
    void Resolve();

    /// <summary>Releases every queued marker unread.</summary>
    void Discard();
}

/// <summary>
/// Per-op-kind timing of the backends: when <see cref="Enabled"/>, every backend primitive (timed by the
/// <see cref="ProfiledBackend"/> decorator that every <see cref="Device"/> puts in front of its backend) (gemm, attention,
/// layernorm_backward, add, …) adds its time, its FLOPs and the bytes it reads and writes (<see cref="OpCost"/>),
/// under the device it ran on and the clock that timed it (<see cref="OpClock"/>): host clocks for the CPU
/// backend, device events for the ILGPU backend. Device events are queued on the stream and resolved only when the
/// profile is read (<see cref="Snapshot"/>, <see cref="Flush"/>), so profiling adds no host synchronisation between
/// launches. Off by default; when off, a primitive pays one branch (and the few multiplications of its cost).
/// Ops are issued from one thread at a time (the thread that runs the step), so no locking is needed.
/// </summary>
public static class OpProfiler
{
    private static readonly Dictionary<(string Device, OpClock Clock, string Kind), (long Calls, double Ms, double Flops, double Bytes)> Stats = new();
    private static readonly List<IDeferredOpTimings> Deferred = new();

    public static bool Enabled { get; set; }

    /// <summary>Adds one timed call (backends with their own clock: the ILGPU backend when it reads its markers).</summary>
    public static void Add(string device, OpClock clock, in OpCost cost, double ms) => Add(device, clock, cost, ms, -1, "");

    /// <summary>
    /// Adds one timed call that started at <paramref name="start"/> (Stopwatch ticks on the host timeline; −1: it ended
    /// just now) on trace track <paramref name="track"/> ("": the calling thread's), and passes it to <see cref="OpTrace"/>.
    /// </summary>
    public static void Add(string device, OpClock clock, in OpCost cost, double ms, long start, string track)
    {
        if (OpTrace.Enabled)
        {
            long duration = (long)(ms * Stopwatch.Frequency / 1000);
            OpTrace.Op(device, clock, cost, start >= 0 ? start : Stopwatch.GetTimestamp() - duration, duration, track.Length > 0 ? track : OpTrace.ThreadTrack);
        }
        var key = (device, clock, cost.Kind);
        Stats.TryGetValue(key, out var s);
        Stats[key] = (s.Calls + 1, s.Ms + ms, s.Flops + cost.Flops, s.Bytes + cost.Bytes);
    }

    /// <summary>Registers a source of queued timings, read at the next <see cref="Flush"/> (registering twice is harmless).</summary>
    public static void Defer(IDeferredOpTimings source)
    {
        if (!Deferred.Contains(source)) Deferred.Add(source);
    }

    /// <summary>Reads every queued device timing now: one synchronisation per stream with queued markers.</summary>
    public static void Flush()
    {
        foreach (var source in Deferred) source.Resolve();
        Deferred.Clear();
    }

    /// <summary>Forgets the totals and releases queued markers unread.</summary>
    public static void Reset()
    {
        foreach (var source in Deferred) source.Discard();
        Deferred.Clear();
        Stats.Clear();
    }

    /// <summary>The totals so far (queued device timings read first), slowest kind first.</summary>
    public static IReadOnlyList<OpStat> Snapshot()
    {
        Flush();
        return Stats
            .Select(kv => new OpStat(kv.Key.Device, kv.Key.Clock, kv.Key.Kind, kv.Value.Calls, kv.Value.Ms, kv.Value.Flops, kv.Value.Bytes))
            .OrderByDescending(s => s.TotalMs).ToList();
    }

    /// <summary>The clock in words, for a table's header.</summary>
    public static string Describe(OpClock clock) => clock switch
    {
        OpClock.Host => "host clocks",
        OpClock.DeviceEvents => "device events",
        OpClock.HostSynchronised => "host clocks, synchronised per op",
        _ => throw new ArgumentOutOfRangeException(nameof(clock), clock, null),
    };

}

/// <summary>
/// How a backend's calls are timed by <see cref="ProfiledBackend"/>: <see cref="HostOpTimer"/> for synchronous
/// backends, device events for the ILGPU backend. Called only while <see cref="OpProfiler.Enabled"/>.
/// </summary>
public interface IOpTimer
{
    /// <summary>The clock the rows of this timer are filed under.</summary>
    OpClock Clock { get; }

    /// <summary>Starts timing one call of cost <paramref name="cost"/>; <see cref="OpTiming.Dispose"/> ends it.</summary>
    OpTiming Start(in OpCost cost);

    /// <summary>Ends the timing that <see cref="Start"/> returned (called by <see cref="OpTiming.Dispose"/>).</summary>
    void Stop(in OpTiming timing);
}

/// <summary>One call being timed: the timer, the call's cost, a device mark (or null) and a host timestamp. The default
/// value (profiler off) does nothing when disposed.</summary>
public readonly struct OpTiming(IOpTimer? timer, OpCost cost, object? mark, long timestamp) : IDisposable
{
    public OpCost Cost => cost;

    /// <summary>The device event recorded at the start (null for host clocks).</summary>
    public object? Mark => mark;

    /// <summary>The host timestamp at the start (<see cref="Stopwatch.GetTimestamp"/>).</summary>
    public long Timestamp => timestamp;

    public void Dispose() => timer?.Stop(this);
}

/// <summary>Host clocks around a synchronous call (the CPU backend): rows under <paramref name="device"/>.</summary>
public sealed class HostOpTimer(string device) : IOpTimer
{
    public OpClock Clock => OpClock.Host;

    public OpTiming Start(in OpCost cost) => new(this, cost, null, Stopwatch.GetTimestamp());

    public void Stop(in OpTiming timing) =>
        OpProfiler.Add(device, OpClock.Host, timing.Cost, Stopwatch.GetElapsedTime(timing.Timestamp).TotalMilliseconds, timing.Timestamp, "");
}
