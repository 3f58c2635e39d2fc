using MicroExpr.Nn;
using MicroExpr.Tensors;

namespace MicroExpr.Models;

/// <summary>
/// AIE-CCL's attribute encoder: AU sets (each a sorted list of indices into the config's AU vocabulary, never empty) →
/// their embeddings t [K, D], L2-normalised rows. Deterministic (no dropout, no sampling): the same weights and sets give
/// the same t.
/// </summary>
public abstract class AuSetEncoder : Module
{
    public abstract Tensor Encode(IReadOnlyList<int[]> sets);

    public static AuSetEncoder Create(AieConfig c, Rng rng) => c.Text switch
    {
        AuTextKind.Words => new AuWordEncoder(c.ActionUnits, c.TextWidth, c.TextDepth, c.TextHeads, c.TextMlpHidden, c.EmbedDim, rng),
        AuTextKind.Table => new AuTableEncoder(c.ActionUnits.Count, c.TextWidth, c.EmbedDim, rng),
        _ => throw new ArgumentOutOfRangeException(nameof(c)),
    };

    protected static void CheckSets(IReadOnlyList<int[]> sets, int vocabulary)
    {
        if (sets.Count == 0) throw new ArgumentException("aie: no AU sets to encode");
        foreach (var s in sets)
        {
            if (s.Length == 0) throw new ArgumentException("aie: an empty AU set has no attribute embedding");
            for (int i = 0; i < s.Length; i++)
                if (s[i] < 0 || s[i] >= vocabulary || i > 0 && s[i] <= s[i - 1])
                    throw new ArgumentException($"aie: AU set [{string.Join(",", s)}] is not a sorted set of indices into the {vocabulary}-entry AU vocabulary");
        }
    }
}

/// <summary>
/// The attribute (text) encoder, in-engine and without downloaded weights (the paper uses BERT): an AU set is written as
/// the FACS descriptions of its AUs in vocabulary order (AU number order), e.g. {4, 7} → "brow lowerer lid tightener",
/// tokenised into lower-case words. Tokens [L] → word embeddings [L, E] (a table over the words of the vocabulary's
/// descriptions) + learned positions [L, E] → <c>depth</c> pre-norm transformer blocks (our
/// <see cref="TransformerBlock"/>) → final LayerNorm → mean over the L tokens → Linear(E, D) → L2 normalisation.
/// <para>
/// Choices: the set is one sequence, so words of different AUs attend to each other (AU1's and AU4's "brow" meet);
/// rejected: encoding each AU alone and averaging (no interaction inside a set: that is <see cref="AuTableEncoder"/>'s
/// reading with extra steps). Mean pooling rather than a class token: a set of one one-word AU ("blink") would leave a
/// class token one neighbour. Sets of equal token count are encoded as one batch [G, L, E], so no padding (and no
/// attention mask) is needed; the batches are put back in the caller's order. Positions exist for the longest possible
/// sequence, every vocabulary AU once.
/// </para>
/// </summary>
public sealed class AuWordEncoder : AuSetEncoder
{
    private readonly int[][] auTokens;

    public AuWordEncoder(IReadOnlyList<AuVocabularyEntry> vocabulary, int width, int depth, int heads, int mlpHidden, int dim, Rng rng)
    {
        if (vocabulary.Count == 0) throw new ArgumentException("aie: the AU vocabulary is empty (the data set codes no action units)");
        var words = vocabulary.Select(v => Tokenise(v.Description)).ToArray();
        Words = words.SelectMany(w => w).Distinct().Order(StringComparer.Ordinal).ToList();
        var index = Words.Select((w, i) => (w, i)).ToDictionary(p => p.w, p => p.i);
        auTokens = words.Select(ws => ws.Select(w => index[w]).ToArray()).ToArray();
        MaxTokens = auTokens.Sum(t => t.Length);
        Width = width;
        WordEmbed = Parameter("word_embed", Tensor.TruncNormal([Words.Count, width], rng, 0.02f, -0.04f, 0.04f));
        PosEmbed = Parameter("pos_embed", Tensor.TruncNormal([MaxTokens, width], rng, 0.02f, -0.04f, 0.04f));
        Blocks = new TransformerBlock[depth];
        for (int i = 0; i < depth; i++) Blocks[i] = Child($"blocks.{i}", new TransformerBlock(width, heads, mlpHidden, rng, initStd: 0.02f));
        Norm = Child("norm", new LayerNorm(width));
        Proj = Child("proj", new Linear(width, dim, rng));
    }

    /// <summary>The word vocabulary, sorted (ordinal).</summary>
    public IReadOnlyList<string> Words { get; }
    public int MaxTokens { get; }
    public int Width { get; }
    public Tensor WordEmbed { get; }
    public Tensor PosEmbed { get; }
    public TransformerBlock[] Blocks { get; }
    public LayerNorm Norm { get; }
    public Linear Proj { get; }

    /// <summary>"Lip corner puller" → ["lip", "corner", "puller"] (lower case; split on spaces, hyphens and slashes).</summary>
    public static string[] Tokenise(string description)
    {
        var w = description.ToLowerInvariant().Split([' ', '-', '/', '\t'], StringSplitOptions.RemoveEmptyEntries);
        return w.Length > 0 ? w : throw new ArgumentException($"aie: the AU description '{description}' has no words");
    }

    /// <summary>The word indices of a set's text (its AUs' descriptions in vocabulary order).</summary>
    public int[] TokensOf(int[] set) => set.SelectMany(a => auTokens[a]).ToArray();

    public override Tensor Encode(IReadOnlyList<int[]> sets)
    {
        CheckSets(sets, auTokens.Length);
        var tokens = sets.Select(TokensOf).ToArray();
        var groups = Enumerable.Range(0, sets.Count).GroupBy(k => tokens[k].Length).OrderBy(g => g.Key).ToList();
        var pooled = new List<Tensor>();
        var order = new List<int>();
        foreach (var g in groups)
        {
            int l = g.Key, n = g.Count();
            var ids = g.SelectMany(k => tokens[k]).ToArray();
            var x = WordEmbed.IndexSelect(0, ids).Reshape(n, l, Width) + PosEmbed.Slice(0, 0, l).Reshape(1, l, Width); // [G, L, E]
            foreach (var block in Blocks) x = block.Forward(x);
            pooled.Add(Norm.Forward(x).Mean([1]));                                                                      // [G, E]
            order.AddRange(g);
        }
        var all = pooled.Count == 1 ? pooled[0] : Tensor.Concat(0, pooled.ToArray());                                  // [K, E], grouped
        var back = new int[sets.Count];
        for (int r = 0; r < order.Count; r++) back[order[r]] = r;
        return AieModel.L2Normalize(Proj.Forward(all.IndexSelect(0, back)));                                           // [K, D]
    }
}

/// <summary>
/// The plain variant: one learned embedding per vocabulary AU [A, E]; a set's embedding is the mean of its AUs' rows →
/// Linear(E, D) → L2 normalisation. No words: AUs share nothing but what training puts in their rows.
/// </summary>
public sealed class AuTableEncoder : AuSetEncoder
{
    public AuTableEncoder(int vocabulary, int width, int dim, Rng rng)
    {
        if (vocabulary == 0) throw new ArgumentException("aie: the AU vocabulary is empty (the data set codes no action units)");
        Vocabulary = vocabulary;
        Table = Parameter("au_embed", Tensor.RandN([vocabulary, width], rng, 0f, 1f));
        Proj = Child("proj", new Linear(width, dim, rng));
    }

    public int Vocabulary { get; }
    public Tensor Table { get; }
    public Linear Proj { get; }

    public override Tensor Encode(IReadOnlyList<int[]> sets)
    {
        CheckSets(sets, Vocabulary);
        var mean = new float[sets.Count * Vocabulary];                                  // [K, A]: 1/|set| on the set's AUs
        for (int k = 0; k < sets.Count; k++)
            foreach (int a in sets[k]) mean[k * Vocabulary + a] = 1f / sets[k].Length;
        var m = Tensor.FromSpan(mean, [sets.Count, Vocabulary], Table.Device);
        return AieModel.L2Normalize(Proj.Forward(Tensor.MatMul(m, Table)));
    }
}

/// <summary>
/// AIE-CCL's training loss: L = CE(logits, y) + λ · L_con, with the cross-modal InfoNCE
/// <code>
/// L_con = (1/B′) Σᵢ −log( exp(s·vᵢ·t_kᵢ) / Σ_k exp(s·vᵢ·t_k) ),   s = 1/τ = exp(ln(1/τ₀) + θ)
/// </code>
/// over the B′ clips of the batch whose AU set is coded, v the model's unit embedding (<see cref="AieModel.Embedding"/>),
/// t_k the attribute encoder's unit embedding of the k-th <b>AU-set prototype</b> and kᵢ the clip's own set.
/// <para>
/// <b>Prototypes</b>: one per distinct non-empty AU set (AU numbers; side and intensity ignored, as
/// <c>ActionUnitSet.Numbers</c>) among the <b>training fold's</b> clips, gathered once at fold start by
/// <see cref="BeginFold"/> from the clips' multi-hot action-unit input (the trainer hands the loss the fold; the test
/// subject's clips are never seen), sorted by size then indices. Every step encodes all K prototypes, so every other set
/// of the fold is a negative of a clip. Rejected: in-batch negatives (CASME II repeats AU sets, so two clips of a batch
/// often share a set and would push each other apart as false negatives), and prototypes over the whole data set (they
/// would include sets only the test subject has). A clip without coded AUs adds only cross-entropy.
/// </para>
/// <para>
/// <b>Temperature</b>: learned, τ₀ = 0.07 (CLIP's start), as the offset θ of ln s from ln(1/τ₀), θ initialised at 0: the
/// trainer's (decoupled) weight decay then pulls τ back towards τ₀ rather than towards τ = 1, as decay on ln s itself
/// would. Unclamped (CLIP clamps s at 100; a fold of a few hundred steps moves θ little): rejected as a knob nothing
/// here needs yet. The encoder and θ are this module's parameters, trained with the model's and saved under "loss.";
/// the model needs neither at test time.
/// </para>
/// </summary>
public sealed class AieLoss : MerLoss
{
    private List<int[]> prototypes = [];
    private Dictionary<string, int> prototypeIndex = [];

    public AieLoss(AieConfig config, Rng rng)
    {
        if (config.ActionUnits.Count == 0) throw new ArgumentException($"{config.Name}: the config has no AU vocabulary (fit it to a data set with action units)");
        Config = config;
        Lambda = config.ContrastiveWeight;
        LogScale0 = MathF.Log(1f / config.InitTemperature);
        Encoder = Child("text", AuSetEncoder.Create(config, rng));
        LogScaleOffset = Parameter("log_scale_offset", Tensor.Zeros(1, 1));
    }

    public AieConfig Config { get; }
    public float Lambda { get; }
    /// <summary>ln(1/τ₀).</summary>
    public float LogScale0 { get; }
    public AuSetEncoder Encoder { get; }
    /// <summary>θ [1, 1]: ln(1/τ) = ln(1/τ₀) + θ.</summary>
    public Tensor LogScaleOffset { get; }
    /// <summary>The current temperature τ.</summary>
    public float Temperature => 1f / MathF.Exp(LogScale0 + LogScaleOffset.ToArray()[0]);
    /// <summary>The fold's AU-set prototypes (sorted vocabulary indices), set by <see cref="BeginFold"/>.</summary>
    public IReadOnlyList<int[]> Prototypes => prototypes;

    /// <summary>The non-empty AU set of a multi-hot row (indices with a value above ½), or an empty array.</summary>
    public static int[] SetOf(ReadOnlySpan<float> multiHot)
    {
        var s = new List<int>();
        for (int a = 0; a < multiHot.Length; a++) if (multiHot[a] > 0.5f) s.Add(a);
        return s.ToArray();
    }

    private static string Key(int[] set) => string.Join(",", set);

    /// <summary>Gathers the distinct non-empty AU sets of the training fold's clips as the prototypes.</summary>
    public override void BeginFold(TrainingFold fold)
    {
        int a = Config.ActionUnits.Count;
        var sets = new Dictionary<string, int[]>();
        for (int i = 0; i < fold.Clips; i++)
        {
            var row = fold.Input(i, InputKind.ActionUnits);
            if (row.Length != a) throw new InvalidDataException($"{Config.Name}: clip {i} of the fold has {row.Length} action-unit values; the vocabulary has {a}");
            var s = SetOf(row);
            if (s.Length > 0) sets.TryAdd(Key(s), s);
        }
        prototypes = sets.Values.OrderBy(s => s.Length).ThenBy(Key, StringComparer.Ordinal).ToList();
        prototypeIndex = prototypes.Select((s, k) => (Key(s), k)).ToDictionary(p => p.Item1, p => p.k);
    }

    public override Tensor Forward(ModelOutput output, ModelBatch batch, int[] labels, float[]? classWeights = null, float labelSmoothing = 0f)
    {
        var ce = Tensor.CrossEntropy(output.Logits, labels, classWeights, labelSmoothing);
        if (Lambda == 0f) return ce;
        if (prototypes.Count == 0)
            throw new InvalidOperationException($"{Config.Name}: the contrastive loss has no AU-set prototypes: BeginFold was not called, or no training clip has coded action units (train with --con-weight 0)");
        var au = batch[InputKind.ActionUnits];
        int b = labels.Length, a = Config.ActionUnits.Count;
        if (au.Numel != b * a) throw new ShapeException($"{Config.Name}: action units {ShapeUtil.Format(au.Shape)} for a batch of {b} clips over {a} AUs");
        var values = au.ToArray();
        var rows = new List<int>();
        var targets = new List<int>();
        for (int i = 0; i < b; i++)
        {
            var s = SetOf(values.AsSpan(i * a, a));
            if (s.Length == 0) continue;
            if (!prototypeIndex.TryGetValue(Key(s), out int k))
                throw new InvalidDataException($"{Config.Name}: clip {i} of the batch has the AU set {{{string.Join(",", s.Select(x => Config.ActionUnits[x].Number))}}}, which is not among the fold's {prototypes.Count} prototypes (BeginFold saw another fold)");
            rows.Add(i);
            targets.Add(k);
        }
        if (rows.Count == 0) return ce;
        var v = output.Get(AieModel.Embedding);
        if (rows.Count < b) v = v.IndexSelect(0, rows.ToArray());
        var t = Encoder.Encode(prototypes);
        return ce + InfoNce(v, t, LogScaleOffset, LogScale0, targets.ToArray()).Scale(Lambda);
    }

    /// <summary>
    /// v [B, D], t [K, D], θ [1, 1], targets [B] → (1/B) Σᵢ −log softmax_k(exp(ln s₀ + θ) · vᵢ·t_k)[targetᵢ]: the InfoNCE of
    /// rows against prototypes (v and t are used as given; the caller normalises them).
    /// </summary>
    public static Tensor InfoNce(Tensor v, Tensor t, Tensor logScaleOffset, float logScale0, int[] targets)
    {
        if (v.Rank != 2 || t.Rank != 2 || v.Shape[1] != t.Shape[1] || v.Shape[0] != targets.Length)
            throw new ShapeException($"infonce: expected v [B={targets.Length}, D] and t [K, D], got {ShapeUtil.Format(v.Shape)} and {ShapeUtil.Format(t.Shape)}");
        var scale = logScaleOffset.AddScalar(logScale0).Exp();                                     // [1, 1]
        var logits = Tensor.MatMul(v, t, transB: true) * scale;                                   // [B, K]
        return Tensor.CrossEntropy(logits, targets);
    }
}
