using System.Diagnostics;
using ILGPU.Runtime;

namespace MicroExpr.Tensors.Ilgpu;

/// <summary>
/// Times the ILGPU backend's primitives for <see cref="OpProfiler"/> with device events: a profiling marker goes on
/// the backend's stream before an op's launches and another after them; the pair is queued with the op's
/// <see cref="OpCost"/> and nothing waits. When the profile is read (<see cref="OpProfiler.Snapshot"/> or
/// <see cref="OpProfiler.Flush"/>), <see cref="Resolve"/> synchronises the stream once, turns every pair into a time
/// and disposes both markers. At most <see cref="DefaultMaxQueued"/> ops stay queued: the op that fills the queue
/// resolves it (one synchronisation per that many ops), so a long profiled training run holds a bounded number of
/// CUDA events.
/// <para>
/// An accelerator whose stream refuses markers (a context created without profiling, or a runtime without them)
/// falls back to <see cref="OpClock.HostSynchronised"/>: the stream is synchronised before and after each op and a
/// host stopwatch reads the interval.
/// </para>
/// </summary>
internal sealed class IlgpuOpTimer : IOpTimer, IDeferredOpTimings
{
    /// <summary>Ops (marker pairs) queued before they are resolved without waiting for the profile to be read.</summary>
    public const int DefaultMaxQueued = 4096;

    private readonly AcceleratorStream stream;
    private readonly Func<string> deviceName;
    private readonly int maxQueued;
    private readonly List<(OpCost Cost, ProfilingMarker Start, ProfilingMarker End)> queued = new();
    private bool markers;
    private long anchor;

    /// <param name="stream">The backend's stream: markers go there, between the op's launches.</param>
    /// <param name="deviceName">The device name the rows are filed under (resolved late, as the backend's device is).</param>
    /// <param name="maxQueued">Ops queued at most (tests use a small number).</param>
    public IlgpuOpTimer(AcceleratorStream stream, Func<string> deviceName, int maxQueued = DefaultMaxQueued)
    {
        this.stream = stream;
        this.deviceName = deviceName;
        this.maxQueued = maxQueued;
        markers = stream.Accelerator.Context.Properties.EnableProfiling;
    }

    /// <summary>The clock this timer uses now.</summary>
    public OpClock Clock => markers ? OpClock.DeviceEvents : OpClock.HostSynchronised;

    /// <summary>Markers created and not yet disposed (test aid: zero once the profile has been read or reset).</summary>
    public int LiveMarkers { get; private set; }

    /// <summary>Starts timing one op (<c>using var prof = timer.Measure(...)</c>); the default timing (profiler off) does nothing.</summary>
    public OpTiming Measure(in OpCost cost) => OpProfiler.Enabled ? Start(cost) : default;

    public OpTiming Start(in OpCost cost)
    {
        if (markers && TryMark() is { } start) return new OpTiming(this, cost, start, 0);
        stream.Synchronize();
        return new OpTiming(this, cost, null, Stopwatch.GetTimestamp());
    }

    public void Stop(in OpTiming timing) => End(timing.Cost, timing.Mark as ProfilingMarker, timing.Timestamp);

    private ProfilingMarker? TryMark()
    {
        try
        {
            var marker = stream.AddProfilingMarker();
            LiveMarkers++;
            return marker;
        }
        catch (NotSupportedException)
        {
            markers = false; // this accelerator has no markers: host clocks from now on
            return null;
        }
    }

    private void End(in OpCost cost, ProfilingMarker? start, long t0)
    {
        if (start is null)
        {
            stream.Synchronize();
            OpProfiler.Add(deviceName(), OpClock.HostSynchronised, cost, Stopwatch.GetElapsedTime(t0).TotalMilliseconds, t0, "");
            return;
        }
        var end = stream.AddProfilingMarker();
        LiveMarkers++;
        queued.Add((cost, start, end));
        if (queued.Count == 1)
        {
            OpProfiler.Defer(this);
            anchor = Stopwatch.GetTimestamp(); // the trace places this batch of device times on the host timeline from here
        }
        if (queued.Count >= maxQueued) Resolve();
    }

    public void Resolve()
    {
        if (queued.Count == 0) return;
        stream.Synchronize(); // one wait: on an in-order stream every queued marker has then completed
        string device = deviceName();
        var first = queued[0].Start;
        string track = $"{device} stream";
        foreach (var (cost, start, end) in queued)
        {
            // ILGPU's CPU accelerator stamps its markers with the wall clock, which may step back: never a negative time.
            double ms = Math.Max(0, end.MeasureFrom(start).TotalMilliseconds);
            long at = anchor + (long)(Math.Max(0, start.MeasureFrom(first).TotalMilliseconds) * Stopwatch.Frequency / 1000);
            OpProfiler.Add(device, OpClock.DeviceEvents, cost, ms, at, track);
        }
        Discard();
    }

    public void Discard()
    {
        foreach (var (_, start, end) in queued)
        {
            start.Dispose();
            end.Dispose();
            LiveMarkers -= 2;
        }
        queued.Clear();
    }
}
