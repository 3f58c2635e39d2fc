using MicroExpr.Data;
using MicroExpr.Models;

namespace MicroExpr.Training;

/// <summary>One preprocessed clip in memory: [T, C, S, S] float32.</summary>
public sealed record Clip(string Id, string Subject, int Label, float[] Data);

/// <summary>A data set in memory: clips of one shape, class names indexed by label.</summary>
public sealed class ClipSet
{
    public ClipSet(IReadOnlyList<Clip> clips, IReadOnlyList<string> classNames, int frames, int channels, int size, string source)
    {
        if (channels != 3) throw new InvalidDataException($"{source}: clips have {channels} channels; the models take 3");
        foreach (var c in clips)
        {
            if (c.Data.Length != frames * channels * size * size)
                throw new InvalidDataException($"{source}: clip {c.Id} has {c.Data.Length} values, expected [T={frames}, C={channels}, {size}, {size}]");
            if (c.Label < 0 || c.Label >= classNames.Count)
                throw new InvalidDataException($"{source}: clip {c.Id} has label {c.Label}, outside the {classNames.Count} classes ({string.Join(", ", classNames)})");
        }
        Clips = clips;
        ClassNames = classNames;
        Frames = frames;
        Channels = channels;
        Size = size;
        Source = source;
    }

    public IReadOnlyList<Clip> Clips { get; }
    public IReadOnlyList<string> ClassNames { get; }
    public int Frames { get; }
    public int Channels { get; }
    public int Size { get; }
    public string Source { get; }
    /// <summary>The cache's settings hash (<see cref="PreprocessSettings.Hash"/>) when the clips came from one.</summary>
    public string? SettingsHash { get; init; }

    /// <summary>
    /// Channel 0 is the signed horizontal flow u (the u, v, strain encoding), so a horizontal flip must negate it.
    /// False for HSV flow images and precomputed motion images, where a flip only mirrors.
    /// </summary>
    public bool SignedHorizontalFlow { get; init; }

    /// <summary>
    /// What the clips offer a model (the <see cref="IMerModel"/> contract): today one input per clip, the motion frames
    /// [T, 3, S, S] of the cache (<see cref="Clip.Data"/>). A cache that holds other kinds adds them here and in
    /// <see cref="Input"/>.
    /// </summary>
    public DataShape Shape => new(ClassNames.Count, [new InputShape(InputKind.MotionFrames, Frames, Channels, Size)], Source);

    /// <summary>The values of one input of a clip, [T, C, S, S].</summary>
    public float[] Input(Clip clip, InputKind kind) => kind == InputKind.MotionFrames
        ? clip.Data
        : throw new InvalidDataException($"{Source}: the clips hold no {InputShape.Describe(kind)}");

    public IReadOnlyList<string> Subjects => Clips.Select(c => c.Subject).Distinct().OrderBy(s => s, StringComparer.Ordinal).ToList();

    /// <summary>Loads every clip of a preprocessing cache (all clips must share T and size).</summary>
    public static ClipSet FromCache(string dir)
    {
        var cache = PreprocessedCache.Open(dir);
        if (cache.Clips.Count == 0) throw new InvalidDataException($"{dir}: the cache holds no clips");
        var first = cache.Clips[0];
        var clips = new List<Clip>();
        foreach (var e in cache.Clips)
        {
            if (e.Frames != first.Frames || e.Height != first.Height || e.Width != first.Width || e.Height != e.Width)
                throw new InvalidDataException($"{dir}: clip {e.Clip} is [T={e.Frames}, {e.Height}×{e.Width}], others are [T={first.Frames}, {first.Height}×{first.Width}] (square images of one size needed)");
            clips.Add(new Clip(string.IsNullOrEmpty(e.Dataset) ? $"{e.Subject}/{e.Clip}" : $"{e.Dataset}/{e.Subject}/{e.Clip}", e.Subject, e.Label, cache.Load(e)));
        }
        // u, v, strain caches hold signed u in channel 0; HSV images and precomputed motion images are in [0, 1].
        int plane = first.Height * first.Width;
        bool uvs = cache.Settings is { Encoding: MotionEncoding.Uvs } &&
                   clips.Any(c => Enumerable.Range(0, first.Frames).Any(t => c.Data.AsSpan(t * 3 * plane, plane).IndexOfAnyExceptInRange(0f, float.MaxValue) >= 0));
        return new ClipSet(clips, cache.ClassNames, first.Frames, first.Channels, first.Height, dir) { SignedHorizontalFlow = uvs, SettingsHash = cache.SettingsHash };
    }
}
