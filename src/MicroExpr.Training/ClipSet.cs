using MicroExpr.Data.ActionUnitCodes;
using MicroExpr.Data;
using MicroExpr.Data.Motion;
using MicroExpr.Models;

namespace MicroExpr.Training;

/// <summary>
/// One preprocessed clip in memory: the loaded inputs by kind (each [T, C, S, S] float32; the dynamic image [1, C, S, S])
/// and its action units as the coding file writes them ("" when none; parsing is the AU model's).
/// </summary>
public sealed record Clip(string Id, string Subject, int Label, IReadOnlyDictionary<InputKind, float[]> Inputs)
{
    /// <summary>A clip holding motion frames only (what every cache held before other kinds existed).</summary>
    public Clip(string id, string subject, int label, float[] data)
        : this(id, subject, label, new Dictionary<InputKind, float[]> { [InputKind.MotionFrames] = data }) { }

    /// <summary>The data set the clip came from (the cache index's <c>dataset</c>: casme2, samm, smic, a manifest's column), "" when unknown.</summary>
    public string Dataset { get; init; } = "";

    /// <summary>The raw action-unit string ("4+L10"), "" when the data set has none.</summary>
    public string ActionUnits { get; init; } = "";

    /// <summary>The motion frames [T, 3, S, S] (throws when they were not loaded); <c>with { Data = … }</c> replaces them.</summary>
    public float[] Data
    {
        get => Inputs.TryGetValue(InputKind.MotionFrames, out var d) ? d
            : throw new InvalidOperationException($"clip {Id}: no motion frames loaded (it holds {string.Join(", ", Inputs.Keys.Select(InputShape.Describe))})");
        init => Inputs = new Dictionary<InputKind, float[]>(Inputs) { [InputKind.MotionFrames] = value };
    }
}

/// <summary>
/// A data set in memory: clips, class names indexed by label, and per input kind one shape shared by every clip. What
/// the cache holds (<see cref="Shape"/>, every kind) and what was loaded (<see cref="Loaded"/>, the kinds some model reads)
/// are kept apart, so a model is fitted against the whole cache while memory holds only what is read.
/// </summary>
public sealed class ClipSet
{
    /// <summary>A motion-only set: every clip's <see cref="Clip.Data"/> is [frames, channels, size, size].</summary>
    public ClipSet(IReadOnlyList<Clip> clips, IReadOnlyList<string> classNames, int frames, int channels, int size, string source)
        : this(clips, classNames, [new InputShape(InputKind.MotionFrames, frames, channels, size)], source)
    {
        if (channels != 3) throw new InvalidDataException($"{source}: motion clips have {channels} channels; the models take 3");
    }

    /// <param name="loaded">the kinds every clip holds in memory, with their shapes</param>
    /// <param name="held">every kind the source holds (default: <paramref name="loaded"/>); must include the loaded ones</param>
    public ClipSet(IReadOnlyList<Clip> clips, IReadOnlyList<string> classNames, IReadOnlyList<InputShape> loaded, string source, IReadOnlyList<InputShape>? held = null)
    {
        held ??= loaded;
        foreach (var l in loaded)
            if (!held.Contains(l)) throw new ArgumentException($"{source}: loaded {l} is not among the kinds held ({string.Join(", ", held)})");
        foreach (var c in clips)
        {
            foreach (var s in loaded)
            {
                if (!c.Inputs.TryGetValue(s.Kind, out var d))
                    throw new InvalidDataException($"{source}: clip {c.Id} holds no {InputShape.Describe(s.Kind)}");
                if (d.Length != s.Frames * s.Channels * s.Size * s.Size)
                    throw new InvalidDataException($"{source}: clip {c.Id} has {d.Length} values of {InputShape.Describe(s.Kind)}, expected [T={s.Frames}, C={s.Channels}, {s.Size}, {s.Size}]");
            }
            if (c.Label < 0 || c.Label >= classNames.Count)
                throw new InvalidDataException($"{source}: clip {c.Id} has label {c.Label}, outside the {classNames.Count} classes ({string.Join(", ", classNames)})");
        }
        Clips = clips;
        ClassNames = classNames;
        Loaded = loaded;
        Held = held;
        var frames = held.FirstOrDefault(s => s.Kind != InputKind.DynamicImage) ?? held.FirstOrDefault();
        Frames = frames?.Frames ?? 0;
        Channels = frames?.Channels ?? 0;
        Size = frames?.Size ?? 0;
        Source = source;
        // The AU vocabulary: every AU number some clip's coding names (numbers only: side and intensity are not kept).
        foreach (var code in clips.Select(c => c.ActionUnits).Distinct())
            auSets[code] = ActionUnitParser.TryParse(code, out var set, out _) ? set.Numbers : [];
        AuVocabulary = auSets.Values.SelectMany(n => n).Distinct().Order().ToList();
    }

    /// <summary>The AU numbers of each coding string of the clips (uncoded or unparsable: none).</summary>
    private readonly Dictionary<string, IReadOnlyList<int>> auSets = new(StringComparer.Ordinal);

    /// <summary>
    /// The AU numbers that occur in the clips' codings, ascending: the channels of the <see cref="InputKind.ActionUnits"/>
    /// input (multi-hot [1, A, 1, 1]). Built over every clip of the set, the test subjects' included: it lists AU numbers,
    /// not labels, and an AU that only a test subject shows gets a channel no training clip sets (no prototype uses it).
    /// Rejected: a fixed FACS-wide vocabulary (A ≈ 60 channels and word embeddings that no clip ever trains). A coding that
    /// does not parse counts as uncoded (the reader reported it with its file and row).
    /// </summary>
    public IReadOnlyList<int> AuVocabulary { get; }

    public IReadOnlyList<Clip> Clips { get; }
    public IReadOnlyList<string> ClassNames { get; }
    /// <summary>T of the frame inputs (every stored frame kind shares it: one selection per clip).</summary>
    public int Frames { get; }
    /// <summary>C of the first frame kind held (3 for motion).</summary>
    public int Channels { get; }
    /// <summary>S, shared by every kind.</summary>
    public int Size { get; }
    public string Source { get; }
    /// <summary>The kinds in memory.</summary>
    public IReadOnlyList<InputShape> Loaded { get; }
    /// <summary>Every kind the source holds (loaded or not).</summary>
    public IReadOnlyList<InputShape> Held { get; }
    /// <summary>The cache's settings hash (<see cref="PreprocessSettings.Hash"/>) when the clips came from one.</summary>
    public string? SettingsHash { get; init; }

    /// <summary>
    /// What a horizontal flip does to channel 0 of the motion frames: <see cref="FlowFlip.NegateU"/> when it is the signed
    /// horizontal flow u (the u, v, strain encoding), <see cref="FlowFlip.ComplementU"/> for precomputed images declared
    /// <see cref="MotionEncoding.UvsStretched"/>, else <see cref="FlowFlip.Mirror"/> (HSV flow images, undeclared
    /// precomputed images; every other kind is an image a flip only mirrors).
    /// </summary>
    public FlowFlip HorizontalFlip { get; init; }

    /// <summary>
    /// What the clips offer a model (the <see cref="IMerModel"/> contract): every kind the cache holds and, when some clip
    /// has coded action units, the <see cref="InputKind.ActionUnits"/> input [1, A, 1, 1] with its vocabulary (FACS names).
    /// </summary>
    public DataShape Shape => AuVocabulary.Count == 0
        ? new(ClassNames.Count, Held, Source)
        : new(ClassNames.Count, [.. Held, new InputShape(InputKind.ActionUnits, 1, AuVocabulary.Count, 1)], Source)
        {
            ActionUnits = AuVocabulary.Select(n => new AuVocabularyEntry(n, Facs.Name(n))).ToList(),
        };

    /// <summary>
    /// The values of one input of a clip, [T, C, S, S]; for <see cref="InputKind.ActionUnits"/> the multi-hot vector over
    /// <see cref="AuVocabulary"/> (all zeros for an uncoded clip).
    /// </summary>
    public float[] Input(Clip clip, InputKind kind)
    {
        if (clip.Inputs.TryGetValue(kind, out var d)) return d;
        if (kind == InputKind.ActionUnits && AuVocabulary.Count > 0)
        {
            var hot = new float[AuVocabulary.Count];
            if (!auSets.TryGetValue(clip.ActionUnits, out var numbers))
                numbers = ActionUnitParser.TryParse(clip.ActionUnits, out var set, out _) ? set.Numbers.Where(AuVocabulary.Contains).ToList() : [];
            foreach (int n in numbers) hot[IndexOfAu(n)] = 1f;
            return hot;
        }
        throw new InvalidDataException(Held.Any(h => h.Kind == kind)
            ? $"{Source}: {InputShape.Describe(kind)} were not loaded (this clip set holds {string.Join(", ", Loaded.Select(l => InputShape.Describe(l.Kind)))} in memory; load it with the kinds the model reads)"
            : $"{Source}: the clips hold no {InputShape.Describe(kind)}");
    }

    private int IndexOfAu(int number)
    {
        int i = ((List<int>)AuVocabulary).BinarySearch(number);
        return i >= 0 ? i : throw new InvalidOperationException($"AU {number} is not in the vocabulary");
    }

    /// <summary>
    /// The same clips with their AU codings permuted across the clips (Fisher–Yates from <paramref name="seed"/>): the
    /// control for the attribute embedding (<c>--shuffle-aus</c>). Every clip keeps its frames and label; the codings'
    /// frequencies stay, their link to the clips is gone.
    /// </summary>
    public ClipSet WithShuffledActionUnits(ulong seed)
    {
        var codes = Clips.Select(c => c.ActionUnits).ToArray();
        var rng = new Tensors.Rng(seed ^ 0xA5A5_5A5A_C3C3_3C3CUL);
        rng.Shuffle(codes.AsSpan());
        var clips = Clips.Select((c, i) => c with { ActionUnits = codes[i] }).ToList();
        return new ClipSet(clips, ClassNames, Loaded, Source, Held) { HorizontalFlip = HorizontalFlip, SettingsHash = SettingsHash };
    }

    public IReadOnlyList<string> Subjects => Clips.Select(c => c.Subject).Distinct().OrderBy(s => s, StringComparer.Ordinal).ToList();

    /// <summary>Loads every clip of a preprocessing cache with every kind it stores (all clips must share T and size).</summary>
    public static ClipSet FromCache(string dir) => FromCache(dir, null);

    /// <summary>
    /// Loads every clip of a preprocessing cache, only the kinds in <paramref name="kinds"/> that the cache stores (null:
    /// all); <see cref="Shape"/> still lists every stored kind, so a model that needs a missing one is refused by its
    /// <see cref="IMerModelConfig.ForData"/> with the one-line message of <see cref="DataShape.Require"/>. Pass
    /// <see cref="CacheKinds.Read"/> of the model: a kind nobody reads is never read from disk.
    /// </summary>
    public static ClipSet FromCache(string dir, IEnumerable<InputKind>? kinds)
    {
        var cache = PreprocessedCache.Open(dir);
        if (cache.Clips.Count == 0) throw new InvalidDataException($"{dir}: the cache holds no clips");
        var first = cache.Clips[0];
        var stored = CacheInputNames.Each(cache.Stored);
        var held = new List<InputShape>();
        foreach (var k in stored)
        {
            var f = first.Find(k)!;
            held.Add(new InputShape(CacheKinds.ToInput(k), f.Frames, f.Channels, f.Height));
        }
        var want = kinds is null ? cache.Stored : kinds.Aggregate(CacheInputs.None, (s, k) => s | (CacheKinds.ToCache(k) ?? CacheInputs.None));
        var load = stored.Where(k => (want & k) != 0).ToList();
        int frameT = -1;
        foreach (var e in cache.Clips)
            foreach (var k in stored)
            {
                var f = e.Find(k)!;
                var h = first.Find(k)!;
                if (f.Frames != h.Frames || f.Channels != h.Channels || f.Height != h.Height || f.Width != h.Width || f.Height != f.Width)
                    throw new InvalidDataException($"{dir}: clip {e.Clip} has {CacheInputNames.Name(k)} [T={f.Frames}, {f.Channels}, {f.Height}×{f.Width}], others [T={h.Frames}, {h.Channels}, {h.Height}×{h.Width}] (square images of one size needed)");
                if (k != CacheInputs.DynamicImage)
                {
                    if (frameT >= 0 && f.Frames != frameT)
                        throw new InvalidDataException($"{dir}: clip {e.Clip} has {CacheInputNames.Name(k)} of T={f.Frames}, its other frames T={frameT}");
                    frameT = f.Frames;
                }
            }
        var clips = new List<Clip>();
        foreach (var e in cache.Clips)
        {
            var inputs = new Dictionary<InputKind, float[]>();
            foreach (var k in load) inputs[CacheKinds.ToInput(k)] = cache.Load(e, k);
            clips.Add(new Clip(string.IsNullOrEmpty(e.Dataset) ? $"{e.Subject}/{e.Clip}" : $"{e.Dataset}/{e.Subject}/{e.Clip}", e.Subject, e.Label, inputs) { ActionUnits = e.ActionUnits, Dataset = e.Dataset });
        }
        // u, v, strain caches hold signed u in channel 0; HSV images and undeclared precomputed motion images are in [0, 1];
        // precomputed images declared uvs-stretched hold u stretched to [0, 1] per image (checked when they were cached).
        var flowFlip = FlowFlip.Mirror;
        if (load.Contains(CacheInputs.Motion))
        {
            var m = first.Find(CacheInputs.Motion)!;
            int plane = m.Height * m.Width;
            if (cache.Settings is { Encoding: MotionEncoding.UvsStretched }) flowFlip = FlowFlip.ComplementU;
            else if (cache.Settings is { Encoding: MotionEncoding.Uvs } &&
                     clips.Any(c => Enumerable.Range(0, m.Frames).Any(t => c.Data.AsSpan(t * 3 * plane, plane).IndexOfAnyExceptInRange(0f, float.MaxValue) >= 0)))
                flowFlip = FlowFlip.NegateU;
        }
        var loaded = held.Where(h => load.Contains(CacheKinds.ToCache(h.Kind)!.Value)).ToList();
        return new ClipSet(clips, cache.ClassNames, loaded, dir, held) { HorizontalFlip = flowFlip, SettingsHash = cache.SettingsHash };
    }
}
