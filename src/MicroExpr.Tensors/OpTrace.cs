using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace MicroExpr.Tensors;

/// <summary>
/// The <c>--trace FILE.json</c> recorder: while <see cref="Enabled"/> (which also turns <see cref="OpProfiler"/> on), every
/// timed backend op becomes one Chrome trace event ("ph": "X", complete event, microseconds) with its kind as the name and
/// its FLOPs, bytes, device and clock, and its operands' shapes (<see cref="OpShapes"/>: "operands" names them, inputs then
/// outputs, "input_dims" and "output_dims" give their dims in that order, as PyTorch's profiler's "Input Dims") as arguments, and the code that drives the ops adds phases (<see cref="Phase"/>: the
/// tape's forward and backward, the optimizer, loading a batch). <see cref="Write"/> writes the trace-event JSON that
/// Perfetto (ui.perfetto.dev) and chrome://tracing open.
/// <para>Tracks: a CPU op is on the track of the thread that issued it (its kernels' worker threads run inside that
/// interval); phases are on a track of their own; ILGPU ops timed by device events are on one track per device stream,
/// placed on the host timeline by the host time at which the first queued marker was recorded plus the device time from
/// it, so gaps on that track are where the device sat idle (and its clock's offset from the host's is not known: align
/// by the first op). Ops timed with host clocks synchronised per op (an accelerator without markers) are on the issuing
/// thread's track.</para>
/// Events are kept in memory (about 100 bytes each): a traced run should be short (a few steps, a fold of a small set).
/// </summary>
public static class OpTrace
{
    /// <summary>One complete event: start and duration in Stopwatch ticks, a track, a name, a category and arguments.</summary>
    public readonly record struct Event(string Name, string Category, long Start, long Duration, string Track, double Flops, double Bytes, string? Device,
        OpShapes? Shapes = null);

    private static readonly List<Event> Events = new();
    private static readonly object Gate = new();
    private static long origin;

    /// <summary>Recording on or off; turning it on clears earlier events and switches <see cref="OpProfiler"/> on.</summary>
    public static bool Enabled
    {
        get => enabled;
        set
        {
            if (value && !enabled)
            {
                lock (Gate) Events.Clear();
                origin = Stopwatch.GetTimestamp();
                OpProfiler.Enabled = true;
            }
            enabled = value;
        }
    }

    private static bool enabled;

    /// <summary>Events recorded so far, in order of their start.</summary>
    public static IReadOnlyList<Event> Snapshot()
    {
        OpProfiler.Flush();
        lock (Gate) return Events.OrderBy(e => e.Start).ToList();
    }

    /// <summary>The track of the calling thread.</summary>
    public static string ThreadTrack => $"thread {Environment.CurrentManagedThreadId}" + (Thread.CurrentThread.Name is { Length: > 0 } n ? $" ({n})" : "");

    /// <summary>Records one timed op (called by the timers through <see cref="OpProfiler.Add"/>).</summary>
    internal static void Op(string device, OpClock clock, in OpCost cost, long start, long duration, string track)
    {
        if (!enabled) return;
        var e = new Event(cost.Kind, "op", start, duration, track, cost.Flops, cost.Bytes, $"{device}, {OpProfiler.Describe(clock)}", cost.Shapes);
        lock (Gate) Events.Add(e);
    }

    /// <summary>A phase on the "phases" track, from now until the returned value is disposed (<c>using (OpTrace.Phase("backward")) …</c>).</summary>
    public static PhaseScope Phase(string name) => enabled ? new PhaseScope(name, Stopwatch.GetTimestamp()) : default;

    /// <summary>An open phase; the default value (tracing off) records nothing.</summary>
    public readonly struct PhaseScope(string? name, long start) : IDisposable
    {
        public void Dispose()
        {
            if (name is null || !enabled) return;
            var e = new Event(name, "phase", start, Stopwatch.GetTimestamp() - start, "phases", 0, 0, null);
            lock (Gate) Events.Add(e);
        }
    }

    /// <summary>Writes the events as Chrome trace-event JSON: one process, one named thread per track, "X" events in µs; returns how many.</summary>
    public static int Write(string path, string processName)
    {
        var events = Snapshot();
        var tracks = events.Select(e => e.Track).Distinct().OrderBy(t => t == "phases" ? 0 : t.StartsWith("thread", StringComparison.Ordinal) ? 1 : 2).ThenBy(t => t, StringComparer.Ordinal).ToList();
        var ids = tracks.Select((t, i) => (t, i + 1)).ToDictionary(x => x.t, x => x.Item2);
        double Us(long ticks) => ticks * 1e6 / Stopwatch.Frequency;
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = false }))
        {
            w.WriteStartObject();
            w.WriteString("displayTimeUnit", "ms");
            w.WriteStartArray("traceEvents");
            w.WriteStartObject();
            w.WriteString("name", "process_name"); w.WriteString("ph", "M"); w.WriteNumber("pid", 1); w.WriteNumber("tid", 0);
            w.WriteStartObject("args"); w.WriteString("name", processName); w.WriteEndObject();
            w.WriteEndObject();
            foreach (var (track, id) in ids)
            {
                w.WriteStartObject();
                w.WriteString("name", "thread_name"); w.WriteString("ph", "M"); w.WriteNumber("pid", 1); w.WriteNumber("tid", id);
                w.WriteStartObject("args"); w.WriteString("name", track); w.WriteEndObject();
                w.WriteEndObject();
                w.WriteStartObject();
                w.WriteString("name", "thread_sort_index"); w.WriteString("ph", "M"); w.WriteNumber("pid", 1); w.WriteNumber("tid", id);
                w.WriteStartObject("args"); w.WriteNumber("sort_index", id); w.WriteEndObject();
                w.WriteEndObject();
            }
            foreach (var e in events)
            {
                w.WriteStartObject();
                w.WriteString("name", e.Name);
                w.WriteString("cat", e.Category);
                w.WriteString("ph", "X");
                w.WriteNumber("ts", Math.Round(Us(e.Start - origin), 3));
                w.WriteNumber("dur", Math.Round(Us(e.Duration), 3));
                w.WriteNumber("pid", 1);
                w.WriteNumber("tid", ids[e.Track]);
                if (e.Category == "op")
                {
                    w.WriteStartObject("args");
                    w.WriteNumber("flops", e.Flops);
                    w.WriteNumber("bytes", e.Bytes);
                    if (e.Flops > 0 && e.Bytes > 0) w.WriteNumber("flops_per_byte", Math.Round(e.Flops / e.Bytes, 3));
                    w.WriteString("device", e.Device);
                    if (e.Shapes is { } shapes)
                    {
                        w.WriteString("operands", shapes.Operands);
                        WriteDims(w, "input_dims", shapes.Inputs);
                        WriteDims(w, "output_dims", shapes.Outputs);
                    }
                    w.WriteEndObject();
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        static void WriteDims(Utf8JsonWriter w, string name, int[][] dims)
        {
            w.WriteStartArray(name);
            foreach (var d in dims)
            {
                w.WriteStartArray();
                foreach (int x in d) w.WriteNumberValue(x);
                w.WriteEndArray();
            }
            w.WriteEndArray();
        }
        string tmp = $"{path}.{Environment.ProcessId}.tmp";
        File.WriteAllBytes(tmp, stream.ToArray());
        File.Move(tmp, path, overwrite: true);
        return events.Count;
    }
}
