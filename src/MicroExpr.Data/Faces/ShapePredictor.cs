using System.Globalization;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using OpenCvSharp;

namespace MicroExpr.Data.Faces;

/// <summary>A face rectangle as dlib stores it: inclusive corners (left, top) and (right, bottom), in pixels.</summary>
public readonly record struct DlibRect(int Left, int Top, int Right, int Bottom)
{
    public int Width => Right - Left + 1;
    public int Height => Bottom - Top + 1;
    public override string ToString() => FormattableString.Invariant($"[{Left}, {Top}, {Right}, {Bottom}]");
}

/// <summary>
/// dlib's <c>shape_predictor</c> (an ensemble of regression trees, Kazemi and Sullivan 2014) read from its own file and
/// run in C#, with the arithmetic of dlib 19.24's <c>shape_predictor.h</c>, so that the points match dlib's to float
/// rounding (tested against dlib itself: tools/dlib-landmarks-ref).
/// <para>
/// Model, for P parts (68), L cascade levels (15), K trees per level (500), F feature pixels per level (400):
/// the mean shape s₀ ∈ ℝ^{2P} in box-normalised coordinates ((0, 0) the box's top-left corner, (1, 1) its
/// bottom-right); per level, F feature pixels, each an anchor part a and an offset δ from that part of s₀; per tree,
/// split nodes (feature indices i₁, i₂ and a threshold τ, a complete binary tree in breadth-first order) and leaf
/// vectors ∈ ℝ^{2P}.
/// </para>
/// <para>
/// Inference on an 8-bit grey image and a face box: s = s₀; for each level, A = the 2×2 part of the least-squares
/// similarity transform taking s₀ to s (Umeyama; translation dropped), each feature pixel is
/// q = box(A·δ + s[a]) rounded to the nearest pixel (its value, or 0 outside the image); each tree walks left when
/// value[i₁] − value[i₂] &gt; τ, and s += its leaf vector. The output is box(s): the 68 points in image pixels
/// (dlib's 0-based indices: 0–16 jaw, 17–26 brows, 27–35 nose, 36–47 eyes, 48–67 mouth).
/// </para>
/// Thread-safe after loading (Predict allocates its own scratch).
/// </summary>
public sealed class ShapePredictor
{
    /// <summary>Where Debian's libdlib-data installs the 68-point model trained on iBUG 300-W.</summary>
    public const string DebianModelPath = "/usr/share/dlib/shape_predictor_68_face_landmarks.dat";

    /// <summary>One line for a missing model: the file and the package that installs it.</summary>
    public static string MissingModelMessage(string path) =>
        $"landmark model {path} not found: install Debian's libdlib-data (apt-get install libdlib-data) or give --landmarks-model FILE";

    /// <summary>P, the number of parts (68 for the Debian model).</summary>
    public int Parts { get; }
    /// <summary>L, the number of cascade levels.</summary>
    public int Levels => levels.Length;
    /// <summary>Trees in all levels.</summary>
    public int Trees { get; }

    /// <summary>s₀, [2P] interleaved x, y in box-normalised coordinates.</summary>
    readonly float[] initialShape;
    readonly Level[] levels;

    /// <summary>One cascade level. Trees are stored flat: tree k's splits at SplitStart[k].., its leaves at LeafStart[k]·2P...</summary>
    sealed class Level
    {
        public required int[] Anchor;       // [F] part index a of each feature pixel
        public required float[] Delta;      // [2F] δ = pixel − s₀[a], interleaved x, y
        public required int[] SplitStart;   // [K+1]
        public required int[] Idx1, Idx2;   // [splits] feature indices
        public required float[] Thresh;     // [splits]
        public required int[] LeafStart;    // [K+1] in leaves
        public required float[] Leaves;     // [leaves·2P]
    }

    ShapePredictor(float[] initialShape, Level[] levels)
    {
        this.initialShape = initialShape;
        this.levels = levels;
        Parts = initialShape.Length / 2;
        Trees = levels.Sum(l => l.SplitStart.Length - 1);
    }

    /// <summary>Mean shape s₀ as points in box-normalised coordinates.</summary>
    public Point2d[] MeanShape()
    {
        var p = new Point2d[Parts];
        for (int i = 0; i < Parts; i++) p[i] = new Point2d(initialShape[2 * i], initialShape[2 * i + 1]);
        return p;
    }

    static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<ShapePredictor>> Loaded = new();

    /// <summary>The model at <paramref name="path"/>, loaded once per process and shared (a failed load is not cached).</summary>
    public static ShapePredictor Shared(string path)
    {
        var lazy = Loaded.GetOrAdd(Path.GetFullPath(path), p => new Lazy<ShapePredictor>(() => Load(p)));
        try { return lazy.Value; }
        catch
        {
            Loaded.TryRemove(new KeyValuePair<string, Lazy<ShapePredictor>>(Path.GetFullPath(path), lazy));
            throw;
        }
    }

    /// <summary>Reads a model file; <see cref="FileNotFoundException"/> (one line naming the package) when absent, <see cref="DlibFormatException"/> when truncated or foreign.</summary>
    public static ShapePredictor Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException(MissingModelMessage(path), path);
        return Parse(File.ReadAllBytes(path), path);
    }

    // Bounds that no real model reaches; they stop a corrupt count from allocating without limit.
    const int MaxParts = 10_000, MaxLevels = 1_000, MaxTrees = 100_000, MaxNodes = 1 << 16, MaxPixels = 1 << 20;

    /// <summary>Parses the bytes of a model file (the order of dlib's <c>deserialize(shape_predictor&amp;)</c>); <paramref name="name"/> is used in errors.</summary>
    public static ShapePredictor Parse(ReadOnlySpan<byte> bytes, string name)
    {
        var d = new DlibDecoder(bytes, name);
        if (bytes.Length == 0) throw d.Error("empty file, not a dlib shape_predictor");
        long version = d.ReadSigned("the shape_predictor version", 4);
        if (version != 1) throw d.Error($"not a dlib shape_predictor (version {version}, expected 1)");
        var s0 = d.ReadFloatColumn("initial_shape", 2 * MaxParts);
        if (s0.Length == 0 || s0.Length % 2 != 0) throw d.Error($"corrupt initial_shape: {s0.Length} values, expected a positive even count");
        int parts = s0.Length / 2;

        int nLevels = d.ReadCount("the number of cascade levels (forests)", MaxLevels);
        if (nLevels == 0) throw d.Error("corrupt model: no cascade levels");
        var splits = new List<(int[] I1, int[] I2, float[] T, int[] SplitStart, int[] LeafStart, float[] Leaves)>(nLevels);
        for (int l = 0; l < nLevels; l++)
        {
            d.Context = null;
            int nTrees = d.ReadCount(string.Create(CultureInfo.InvariantCulture, $"the tree count of level {l}"), MaxTrees);
            var i1 = new List<int>(); var i2 = new List<int>(); var th = new List<float>();
            var splitStart = new int[nTrees + 1];
            var leafStart = new int[nTrees + 1];
            var leaves = new List<float[]>(nTrees);
            for (int k = 0; k < nTrees; k++)
            {
                d.Context = string.Create(CultureInfo.InvariantCulture, $"level {l} tree {k}");
                int ns = d.ReadCount("the split count", MaxNodes);
                for (int s = 0; s < ns; s++)
                {
                    i1.Add(d.ReadCount("a split's idx1", MaxPixels));
                    i2.Add(d.ReadCount("a split's idx2", MaxPixels));
                    th.Add(d.ReadFloat("a split's threshold"));
                }
                int nl = d.ReadCount("the leaf count", MaxNodes + 1);
                if (nl != ns + 1 || !BitOperations.IsPow2(nl))
                    throw d.Error($"corrupt tree: {ns} splits and {nl} leaves (dlib needs a complete tree: leaves = splits + 1, a power of 2)");
                var lv = new float[nl * 2 * parts];
                for (int j = 0; j < nl; j++)
                {
                    var v = d.ReadFloatColumn("a leaf vector", 2 * parts);
                    if (v.Length != 2 * parts) throw d.Error($"corrupt leaf {j}: {v.Length} values, expected {2 * parts}");
                    v.CopyTo(lv, j * 2 * parts);
                }
                splitStart[k + 1] = splitStart[k] + ns;
                leafStart[k + 1] = leafStart[k] + nl;
                leaves.Add(lv);
            }
            var flat = new float[leafStart[nTrees] * 2 * parts];
            for (int k = 0; k < nTrees; k++) leaves[k].CopyTo(flat, leafStart[k] * 2 * parts);
            splits.Add((i1.ToArray(), i2.ToArray(), th.ToArray(), splitStart, leafStart, flat));
        }
        d.Context = null;

        int nAnchor = d.ReadCount("the number of anchor_idx lists", MaxLevels);
        if (nAnchor != nLevels) throw d.Error($"corrupt model: {nAnchor} anchor_idx lists for {nLevels} cascade levels");
        var anchors = new int[nLevels][];
        for (int l = 0; l < nLevels; l++)
        {
            d.Context = null;
            int n = d.ReadCount(string.Create(CultureInfo.InvariantCulture, $"the anchor_idx count of level {l}"), MaxPixels);
            d.Context = string.Create(CultureInfo.InvariantCulture, $"level {l}");
            anchors[l] = new int[n];
            for (int i = 0; i < n; i++)
            {
                int a = d.ReadCount("anchor_idx", MaxPixels);
                if (a >= parts) throw new DlibFormatException($"{name}: corrupt anchor_idx {i} of level {l}: part {a}, the model has {parts}");
                anchors[l][i] = a;
            }
        }
        d.Context = null;
        int nDeltas = d.ReadCount("the number of deltas lists", MaxLevels);
        if (nDeltas != nLevels) throw d.Error($"corrupt model: {nDeltas} deltas lists for {nLevels} cascade levels");
        var result = new Level[nLevels];
        for (int l = 0; l < nLevels; l++)
        {
            d.Context = null;
            int n = d.ReadCount(string.Create(CultureInfo.InvariantCulture, $"the deltas count of level {l}"), MaxPixels);
            if (n != anchors[l].Length) throw d.Error($"corrupt level {l}: {n} deltas for {anchors[l].Length} anchors");
            d.Context = string.Create(CultureInfo.InvariantCulture, $"level {l}");
            var delta = new float[2 * n];
            for (int i = 0; i < n; i++)
            {
                delta[2 * i] = d.ReadFloat("a delta's x");
                delta[2 * i + 1] = d.ReadFloat("a delta's y");
            }
            var (i1, i2, th, ss, ls, lv) = splits[l];
            for (int s = 0; s < i1.Length; s++)
                if (i1[s] >= n || i2[s] >= n)
                    throw new DlibFormatException($"{name}: corrupt level {l}: split {s} reads feature pixel {Math.Max(i1[s], i2[s])} of {n}");
            result[l] = new Level { Anchor = anchors[l], Delta = delta, SplitStart = ss, Idx1 = i1, Idx2 = i2, Thresh = th, LeafStart = ls, Leaves = lv };
        }
        return new ShapePredictor(s0, result);
    }

    /// <summary>
    /// The P landmarks of the face in <paramref name="box"/> on a W×H 8-bit grey image (row-major, stride W), in image pixels
    /// (sub-pixel; dlib's own <c>full_object_detection</c> holds these rounded to the nearest integer).
    /// </summary>
    public Point2d[] Predict(ReadOnlySpan<byte> grey, int width, int height, DlibRect box)
    {
        if (width <= 0 || height <= 0 || grey.Length < (long)width * height)
            throw new ArgumentException($"a {width}x{height} grey image needs {(long)width * height} bytes, got {grey.Length}");
        int p2 = initialShape.Length;
        var shape = (float[])initialShape.Clone();
        int maxPixels = levels.Max(l => l.Anchor.Length);
        Span<float> values = maxPixels <= 2048 ? stackalloc float[maxPixels] : new float[maxPixels];
        // The box transform (dlib's unnormalizing_tform): (0, 0) → (left, top), (1, 1) → (right, bottom).
        double bx = box.Left, by = box.Top, bw = box.Right - box.Left, bh = box.Bottom - box.Top;
        foreach (var level in levels)
        {
            var (m00, m01, m10, m11) = SimilarityToCurrent(shape);
            int f = level.Anchor.Length;
            var anchor = level.Anchor;
            var delta = level.Delta;
            for (int i = 0; i < f; i++)
            {
                // float, as dlib: tform (matrix<float,2,2>) · delta (vector<float,2>) + location(current_shape, a)
                float dx = delta[2 * i], dy = delta[2 * i + 1];
                int a = anchor[i];
                float sx = m00 * dx + m01 * dy + shape[2 * a];
                float sy = m10 * dx + m11 * dy + shape[2 * a + 1];
                // double, then dlib::point's rounding floor(v + 0.5)
                double x = Math.Floor(bx + bw * sx + 0.5), y = Math.Floor(by + bh * sy + 0.5);
                values[i] = x >= 0 && y >= 0 && x < width && y < height ? grey[(int)y * width + (int)x] : 0f;
            }
            WalkTrees(level, values, shape);
        }
        var points = new Point2d[p2 / 2];
        for (int i = 0; i < points.Length; i++) points[i] = new Point2d(bx + bw * shape[2 * i], by + bh * shape[2 * i + 1]);
        return points;
    }

    /// <summary>Predict on an 8-bit single-channel Mat (any stride).</summary>
    public Point2d[] Predict(Mat grey, DlibRect box)
    {
        if (grey.Type() != MatType.CV_8UC1) throw new ArgumentException($"landmarks need an 8-bit grey image, got {grey.Type()}");
        if (grey.IsContinuous())
            unsafe { return Predict(new ReadOnlySpan<byte>((void*)grey.Data, grey.Rows * grey.Cols), grey.Cols, grey.Rows, box); }
        using var copy = grey.Clone();
        unsafe { return Predict(new ReadOnlySpan<byte>((void*)copy.Data, copy.Rows * copy.Cols), copy.Cols, copy.Rows, box); }
    }

    /// <summary>Every tree of the level: walk to a leaf on the feature pixel differences, add its vector to the shape.</summary>
    static void WalkTrees(Level level, ReadOnlySpan<float> values, float[] shape)
    {
        int p2 = shape.Length;
        var ss = level.SplitStart;
        var i1 = level.Idx1; var i2 = level.Idx2; var th = level.Thresh;
        var leaves = level.Leaves;
        var ls = level.LeafStart;
        ref float s0 = ref MemoryMarshal.GetArrayDataReference(shape);
        for (int k = 0; k + 1 < ss.Length; k++)
        {
            int start = ss[k], n = ss[k + 1] - start;
            int node = 0;
            while (node < n)
            {
                int s = start + node;
                node = values[i1[s]] - values[i2[s]] > th[s] ? 2 * node + 1 : 2 * node + 2;
            }
            int leaf = ls[k] + node - n;
            ref float v0 = ref leaves[leaf * p2];
            int j = 0;
            if (Vector.IsHardwareAccelerated)
                for (; j + Vector<float>.Count <= p2; j += Vector<float>.Count)
                {
                    var sum = Vector.LoadUnsafe(ref s0, (nuint)j) + Vector.LoadUnsafe(ref v0, (nuint)j);
                    sum.StoreUnsafe(ref s0, (nuint)j);
                }
            for (; j < p2; j++) Unsafe.Add(ref s0, j) += Unsafe.Add(ref v0, j);
        }
    }

    /// <summary>
    /// The 2×2 linear part of the least-squares similarity transform from s₀ to <paramref name="current"/> (dlib's
    /// find_similarity_transform, Umeyama's equations 34–43, in double, then cast to float as dlib's matrix_cast does).
    /// For 2-D points the SVD has a closed form: with the cross-covariance Σ = (1/n)·Σᵢ (tᵢ − t̄)(fᵢ − f̄)ᵀ = [[a, b], [c, d]]
    /// and σ² = (1/n)·Σᵢ |fᵢ − f̄|², c·R = [[a + d, b − c], [c − b, a + d]] / σ² (the reflection case of Umeyama gives the same
    /// rotation). It equals dlib's SVD route up to double rounding.
    /// </summary>
    (float M00, float M01, float M10, float M11) SimilarityToCurrent(float[] current)
    {
        var from = initialShape;
        int n = from.Length / 2;
        double mfx = 0, mfy = 0, mtx = 0, mty = 0;
        for (int i = 0; i < n; i++)
        {
            mfx += from[2 * i]; mfy += from[2 * i + 1];
            mtx += current[2 * i]; mty += current[2 * i + 1];
        }
        mfx /= n; mfy /= n; mtx /= n; mty /= n;
        double sigma = 0, a = 0, b = 0, c = 0, d = 0;
        for (int i = 0; i < n; i++)
        {
            double fx = from[2 * i] - mfx, fy = from[2 * i + 1] - mfy;
            double tx = current[2 * i] - mtx, ty = current[2 * i + 1] - mty;
            sigma += fx * fx + fy * fy;
            a += tx * fx; b += tx * fy; c += ty * fx; d += ty * fy;
        }
        sigma /= n; a /= n; b /= n; c /= n; d /= n;
        if (sigma == 0) return (1, 0, 0, 1);
        double p = (a + d) / sigma, q = (c - b) / sigma;
        return ((float)p, (float)-q, (float)q, (float)p);
    }
}
