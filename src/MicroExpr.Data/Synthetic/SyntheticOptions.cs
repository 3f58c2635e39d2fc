namespace MicroExpr.Data.Synthetic;

/// <summary>Nuisance motions and noise added to every clip, whatever its class. Each can be switched off (tests do).</summary>
[Flags]
public enum Distractors
{
    None = 0,
    /// <summary>0–2 blinks per clip (half the clips have one or two): the upper lid closes over 2–3 frames and opens over 2–4.</summary>
    Blinks = 1,
    /// <summary>Slow head drift: translation of 0.3–1.5 px and rotation of up to ±0.8° over the clip (at 128 px).</summary>
    HeadDrift = 2,
    /// <summary>Gaussian sensor noise, σ = 1.5–3 grey levels, drawn afresh for every frame.</summary>
    Noise = 4,
    /// <summary>Illumination flicker: per-frame global gain within ±3 %.</summary>
    Flicker = 8,
    /// <summary>Per-clip static pose and exposure: shift ±3 px, rotation ±3°, scale ±4 %, gain ±8 % (a new recording session).</summary>
    PoseJitter = 16,
    All = Blinks | HeadDrift | Noise | Flicker | PoseJitter,
}

/// <summary>
/// What <see cref="SyntheticDataset"/> generates. Defaults make a fast demo set on a 2-core machine:
/// 8 subjects × 6 clips, 3 classes (MEGC: negative / positive / surprise), 128 × 128 px colour frames, 24 frames per clip
/// (48 clips, 1152 frames: about a second or two).
/// </summary>
public sealed record SyntheticOptions
{
    public int Subjects { get; init; } = 8;
    public int ClipsPerSubject { get; init; } = 6;
    /// <summary>3 (negative, positive, surprise as CASME II emotion words) or 5 (happiness, disgust, repression, surprise, others).</summary>
    public int Classes { get; init; } = 3;
    public long Seed { get; init; } = 1;
    /// <summary>Frame width and height in pixels. Motion amplitudes are specified at 128 px and scale with the size.</summary>
    public int Size { get; init; } = 128;
    /// <summary>Frames per clip (at least 12). Expression timing scales with it (24 frames: onset at frame 1–3, apex 4–7 frames later, offset 6–10 frames after the apex).</summary>
    public int Frames { get; init; } = 24;
    public Distractors Distractors { get; init; } = Distractors.All;
    /// <summary>Peak expression displacement at the apex, in pixels at 128 px (drawn uniformly per clip).</summary>
    public double MinAmplitude { get; init; } = 0.8;
    public double MaxAmplitude { get; init; } = 1.6;
    public int JpegQuality { get; init; } = 95;

    public void Validate()
    {
        if (Subjects < 1 || Subjects > 99) throw new ArgumentOutOfRangeException(nameof(Subjects), Subjects, "subjects must be 1..99");
        if (ClipsPerSubject < 1 || ClipsPerSubject > 99) throw new ArgumentOutOfRangeException(nameof(ClipsPerSubject), ClipsPerSubject, "clips per subject must be 1..99");
        if (Classes is not (3 or 5)) throw new ArgumentOutOfRangeException(nameof(Classes), Classes, "classes must be 3 or 5");
        if (Size < 32 || Size > 1024) throw new ArgumentOutOfRangeException(nameof(Size), Size, "size must be 32..1024");
        if (Frames < 12 || Frames > 1000) throw new ArgumentOutOfRangeException(nameof(Frames), Frames, "frames must be 12..1000");
        if (!(MinAmplitude > 0) || MaxAmplitude < MinAmplitude) throw new ArgumentOutOfRangeException(nameof(MinAmplitude), "need 0 < MinAmplitude <= MaxAmplitude");
        if (JpegQuality < 1 || JpegQuality > 100) throw new ArgumentOutOfRangeException(nameof(JpegQuality), JpegQuality, "JPEG quality must be 1..100");
    }
}

/// <summary>What <see cref="SyntheticDataset.Generate"/> wrote.</summary>
public sealed record SyntheticSummary(
    string OutDir,
    string RawDir,
    string CodingFile,
    IReadOnlyDictionary<string, int> ClipsPerClass,
    IReadOnlyDictionary<string, int> ClipsPerEmotion,
    IReadOnlyDictionary<string, int> ClipsPerSubject,
    int Clips,
    int FramesWritten,
    TimeSpan Elapsed,
    string? Preview);
