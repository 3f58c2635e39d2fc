using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace MicroExpr.Data;

/// <summary>Dense optical flow from the onset frame to each selected frame.</summary>
public enum FlowMethod
{
    /// <summary>OpenCV's Farneback with SLSTT's parameters (pyr_scale 0.5, levels 3, winsize 15, iterations 3, poly_n 5, poly_sigma 1.2).</summary>
    Farneback,
    /// <summary>TV-L1 (Zach–Pock–Bischof), implemented in C# in <see cref="Motion.TvL1Flow"/>: the OpenCvSharp runtime's DualTVL1 crashes natively.</summary>
    TvL1,
}

/// <summary>How a flow field becomes the three channels of one frame.</summary>
public enum MotionEncoding
{
    /// <summary>Channels u, v, optical strain; u and v divided by the clip's largest flow magnitude (in [-1, 1]), strain by the clip's largest strain (in [0, 1]).</summary>
    Uvs,
    /// <summary>SLSTT's image: HSV with hue = flow angle, saturation 1, value = magnitude min–max stretched per frame, converted to RGB in [0, 1].</summary>
    Hsv,
    /// <summary>
    /// SLSTT's image as its released code stores it: 8-bit HSV (H = angle/2, S = 255, V = per-frame min–max of the magnitude),
    /// HSV → BGR, written as JPEG (OpenCV's default quality 95) and read back as RGB in [0, 1] (<see cref="Motion.MotionEncoder.Hsv8Bgr"/>).
    /// </summary>
    Hsv8,
    /// <summary>
    /// Precomputed motion images only (a manifest of images; computed flow refuses it): channels u, v, optical strain (red,
    /// green, blue), each min–max stretched to 0..255 per image, as in the MEGC2019 composite's STSTNet images (the
    /// <c>STSNet_whole_norm_u_v_os</c> folder). It declares what the images hold, which a horizontal flip needs: under a
    /// per-image stretch the flipped flow −u stretches to exactly 1 − u, so the flip mirrors and maps channel 0 to 1 − u
    /// (<see cref="Motion.FlowFlip.ComplementU"/>). Preprocessing checks every image's red channel spans 0..255.
    /// </summary>
    UvsStretched,
}

/// <summary>Which T frames of onset..offset are kept.</summary>
public enum FrameSelection
{
    /// <summary>SLSTT: T consecutive frames centred on the apex, shifted to fit inside onset+1..offset.</summary>
    ApexCentred,
    /// <summary>T frames spread uniformly over onset..offset (both ends included).</summary>
    Uniform,
    /// <summary>
    /// FDP's released sampling: frame onset + i·⌊L/T⌋ (i = 0..T−1, L = offset − onset + 1; T = 8 in the code), so the last
    /// frame is usually not the offset. A clip of fewer than T frames is dropped (reported), never padded.
    /// </summary>
    Fdp,
    /// <summary>
    /// SLSTT's released window (<c>preprocess/data_init.py</c>): start = max(apex − ⌊T/2⌋, onset + 1), end = min(start + T − 1,
    /// offset), never shifted back; a window shorter than T is filled by blends of neighbouring frames spread over its gaps
    /// (<see cref="Motion.FrameSelector.SlsttReleased"/>). A clip whose apex is unknown or not after the onset is dropped (reported).
    /// </summary>
    SlsttReleased,
}

/// <summary>How the face is found and cut (<c>--face</c>).</summary>
public enum FaceMode
{
    /// <summary>The largest Haar detection on the onset frame, plus margin, made square.</summary>
    Haar,
    /// <summary>SLSTT's crop: dlib's 68 landmarks (<see cref="Faces.ShapePredictor"/>) on the apex frame (the onset frame when
    /// the apex is unknown), a square of side (y₈ − y₁₉) + (y₈ − y₅₇) centred on the nose tip, the same for every frame.</summary>
    Landmarks,
    /// <summary>The whole frame (pre-cropped data sets).</summary>
    None,
    /// <summary>
    /// FDP's released alignment, per frame: each frame warped by its own 68 landmarks (<see cref="Faces.FaceCrops.FdpTransform"/>:
    /// eye line levelled, a square of half-side 1.25 × the five points' extent, bilinear, border 128) straight to S×S. The
    /// landmarks are the clip's <see cref="Faces.LandmarkFile"/> (<c>landmarks.csv</c> beside the frames; the synthetic
    /// generator writes its true ones) where it lists the frame, else dlib's on that frame.
    /// </summary>
    Fdp,
}

/// <summary>
/// Everything that changes the tensor a clip becomes. <see cref="Hash"/> is stable across runs and machines
/// (SHA-256 of <see cref="Canonical"/>, which includes <see cref="PipelineVersion"/>), so a cache never reuses a file
/// made with other settings. The cascade path only counts when face detection is on.
/// </summary>
/// <param name="Flow">optical flow method</param>
/// <param name="Frames">T, the number of frames per clip (flows from the onset)</param>
/// <param name="Size">S: the face crop is resized to S×S before the flow is computed</param>
/// <param name="Encoding">channel encoding of each flow field</param>
/// <param name="Selection">which frames are kept</param>
/// <param name="FaceDetect">detect the face on the onset frame (off: the whole frame is the face, for pre-cropped sets)</param>
/// <param name="CascadePath">Haar cascade file; null: <see cref="DefaultCascade"/></param>
/// <param name="Margin">added on each side of the detected box, as a fraction of its side</param>
/// <param name="FlowSize">when above S, the flow is computed at FlowSize×FlowSize and then area-averaged down to S×S (sub-pixel
/// facial motion survives better at the higher resolution; the averaging also lowers the flow noise); 0: at S</param>
/// <param name="FlowScale">uvs: when &gt; 0, divide u, v and strain by this fixed value in pixels of the S×S image (clipped
/// to ±4) instead of by the clip's maxima</param>
/// <param name="RemoveGlobalMotion">subtract a robust affine fit of each flow field (head drift and rotation), see <see cref="Motion.GlobalMotion"/></param>
/// <param name="Face">how the face is found when <paramref name="FaceDetect"/> is on (off means <see cref="FaceMode.None"/>)</param>
/// <param name="LandmarksModel">dlib's 68-point model file; null: <see cref="Faces.ShapePredictor.DebianModelPath"/></param>
/// <param name="FaceFallback">landmarks mode: a clip whose landmarks fail falls back to the Haar box (true) instead of being skipped</param>
/// <param name="Inputs">the kinds stored per clip (<c>--inputs</c>); <see cref="CacheInputs.Motion"/> alone is the default
/// and leaves <see cref="Canonical"/> (and so the hash and every file name) as it was before other kinds existed</param>
public sealed record PreprocessSettings(
    FlowMethod Flow = FlowMethod.Farneback,
    int Frames = 11,
    int Size = 112,
    MotionEncoding Encoding = MotionEncoding.Uvs,
    FrameSelection Selection = FrameSelection.ApexCentred,
    bool FaceDetect = true,
    string? CascadePath = null,
    double Margin = 0.1,
    bool RemoveGlobalMotion = false,
    int FlowSize = 0,
    double FlowScale = 0,
    FaceMode Face = FaceMode.Haar,
    string? LandmarksModel = null,
    bool FaceFallback = false,
    CacheInputs Inputs = CacheInputs.Motion)
{
    /// <summary>The stored kinds; an index written before <see cref="Inputs"/> existed reads as None and means motion.</summary>
    public CacheInputs StoredInputs => Inputs == CacheInputs.None ? CacheInputs.Motion : Inputs;

    /// <summary>
    /// The frames the dynamic image pools: grey when grey frames are stored (FDP's target is a grey DI, [1, 1, S, S]),
    /// else RGB ([1, 3, S, S]). Chosen so a cache never holds a DI of frames it does not also offer (rejected: always
    /// grey, which would give an RGB-only model a target it cannot relate to its input).
    /// </summary>
    public CacheInputs DynamicImageSource => (StoredInputs & CacheInputs.Grey) != 0 ? CacheInputs.Grey : CacheInputs.Rgb;

    /// <summary>
    /// Canonical of the settings one stored kind depends on, for its file name: the motion files' key is exactly the
    /// motion-only <see cref="Canonical"/> (so a cache that adds rgb to motion reuses the motion files of an earlier run
    /// in the same folder, and motion-only caches keep their names); other kinds append ";kind=NAME" (the DI also what it pools).
    /// </summary>
    public string FileKey(CacheInputs kind)
    {
        string motionOnly = (this with { Inputs = CacheInputs.Motion }).Canonical;
        return kind switch
        {
            CacheInputs.Motion => motionOnly,
            CacheInputs.DynamicImage => $"{motionOnly};kind=dynamic-image;of={CacheInputNames.Name(DynamicImageSource)}",
            _ => $"{motionOnly};kind={CacheInputNames.Name(kind)}",
        };
    }

    /// <summary>The face mode in effect: <see cref="FaceMode.None"/> when <see cref="FaceDetect"/> is off.</summary>
    public FaceMode EffectiveFace => FaceDetect ? Face : FaceMode.None;

    public string LandmarksModelPath => LandmarksModel ?? Faces.ShapePredictor.DebianModelPath;

    /// <summary>The face part of <see cref="Canonical"/>: the cascade alone for Haar (as before landmarks existed, so old caches stay valid).</summary>
    string FaceKey => EffectiveFace switch
    {
        FaceMode.None => "off",
        FaceMode.Haar => Cascade,
        FaceMode.Fdp => $"fdp-align:{LandmarkFileOrModel}",
        _ => $"landmarks-slstt:{Cascade}:{LandmarksModelPath}{(FaceFallback ? ":fallback-haar" : "")}",
    };

    /// <summary>FDP alignment's landmark sources, in order: the clip's landmarks file, then the dlib model (with its cascade).</summary>
    string LandmarkFileOrModel => $"{Faces.LandmarkFile.FileName}|{Cascade}:{LandmarksModelPath}";

    /// <summary>The resolution the flow is computed at.</summary>
    public int FlowResolution => Math.Max(Size, FlowSize);

    /// <summary>Bumped whenever the pipeline's output for the same settings changes, so old caches are not reused.</summary>
    public const int PipelineVersion = 1;

    /// <summary>Debian's opencv-data package puts OpenCV's cascades here.</summary>
    public const string DefaultCascade = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml";

    public string Cascade => CascadePath ?? DefaultCascade;

    /// <summary>Throws <see cref="ArgumentException"/> naming the wrong setting.</summary>
    public void Validate()
    {
        if (Frames < 1) throw new ArgumentException($"frames T must be >= 1, got {Frames}");
        if (Size < 16) throw new ArgumentException($"size S must be >= 16, got {Size}");
        if (!(Margin >= 0 && Margin <= 2)) throw new ArgumentException($"margin must be in 0..2, got {Margin}");
        if ((Inputs & ~CacheInputNames.Known) != 0) throw new ArgumentException($"inputs: unknown kind bits in {Inputs}");
    }

    /// <summary>One line, invariant culture, every setting that changes the output.</summary>
    public string Canonical => string.Create(CultureInfo.InvariantCulture,
        $"v{PipelineVersion};flow={Name(Flow)};T={Frames};S={Size};enc={Name(Encoding)};sel={Name(Selection)};face={FaceKey};margin={(EffectiveFace == FaceMode.None ? "-" : Margin.ToString("R", CultureInfo.InvariantCulture))}{(RemoveGlobalMotion ? ";global=affine" : "")}{(FlowResolution > Size ? $";flowsize={FlowResolution}" : "")}{(FlowScale > 0 ? $";flowscale={FlowScale.ToString("R", CultureInfo.InvariantCulture)}" : "")}{(StoredInputs != CacheInputs.Motion ? $";inputs={CacheInputNames.Names(StoredInputs)}" : "")}");

    /// <summary>First 16 hex digits of SHA-256(<see cref="Canonical"/>).</summary>
    public string Hash => Convert.ToHexStringLower(SHA256.HashData(Encoding_.GetBytes(Canonical)))[..16];

    /// <summary>
    /// Human-readable, for a list of precomputed motion images only: the settings that apply to them (the size and what the
    /// channels are declared to hold); flow, frames, selection and face settings do not, so they are not listed.
    /// </summary>
    public string DescribeImages() => FormattableString.Invariant($"precomputed motion images at {Size}x{Size}, ") +
        (Encoding == MotionEncoding.UvsStretched
            ? "declared u, v, strain each stretched per image (a flip maps u to 1 - u)"
            : "channels not declared (a flip only mirrors them; --encoding uvs-stretched declares u, v, strain stretched per image)");

    /// <summary>Human-readable: "flow farneback, T 11 (apex-centred), 112x112, encoding uvs, face detection (margin 0.1, cascade ...)".</summary>
    public string Describe() => FormattableString.Invariant(
        $"flow {Name(Flow)}, T {Frames} ({Name(Selection)}), {Size}x{Size}, encoding {Name(Encoding)}, ") +
        EffectiveFace switch
        {
            FaceMode.Haar => FormattableString.Invariant($"face detection (margin {Margin}, cascade {Cascade})"),
            FaceMode.Landmarks => $"SLSTT landmark crop (cascade {Cascade}, model {LandmarksModelPath}{(FaceFallback ? ", Haar fallback" : "")})",
            FaceMode.Fdp => $"FDP landmark alignment per frame ({Faces.LandmarkFile.FileName} beside the frames, else cascade {Cascade}, model {LandmarksModelPath})",
            _ => "no face detection (whole frame)",
        } +
        (RemoveGlobalMotion ? ", global motion removed (affine)" : "") +
        (FlowResolution > Size ? FormattableString.Invariant($", flow at {FlowResolution}x{FlowResolution}") : "") +
        (FlowScale > 0 ? FormattableString.Invariant($", fixed flow scale {FlowScale} px") : "") +
        (StoredInputs != CacheInputs.Motion ? $", stores {CacheInputNames.Names(StoredInputs)}" : "");

    public static string Name(FlowMethod f) => f == FlowMethod.Farneback ? "farneback" : "tvl1";
    public static string Name(MotionEncoding e) => e switch
    {
        MotionEncoding.Uvs => "uvs",
        MotionEncoding.Hsv => "hsv",
        MotionEncoding.Hsv8 => "hsv8",
        _ => "uvs-stretched",
    };
    public static string Name(FrameSelection s) => s switch
    {
        FrameSelection.ApexCentred => "apex-centred",
        FrameSelection.Uniform => "uniform",
        FrameSelection.SlsttReleased => "slstt-released",
        _ => "fdp",
    };

    static readonly UTF8Encoding Encoding_ = new(false);
}
