using System.Text.Json.Serialization;
using MicroExpr.Nn;
using MicroExpr.Tensors;

namespace MicroExpr.Models;

/// <summary>
/// A model's training loss (part of the <see cref="IMerModel"/> contract): reads the model's output and the labels and
/// returns a scalar. A loss is a <see cref="Module"/> so that it can own parameters (e.g. class centres); the trainer
/// optimises them with the model's parameters and checkpoints them under "loss.".
/// </summary>
public abstract class MerLoss : Module
{
    /// <summary>
    /// output, the batch it was computed from, labels [B] → scalar loss. The batch gives a loss the per-clip targets the
    /// cache holds beside the model's inputs (e.g. FDP's dynamic image, AIE-CCL's action units). <paramref name="classWeights"/>
    /// (per class, or null) and <paramref name="labelSmoothing"/> apply to the cross-entropy part.
    /// </summary>
    public abstract Tensor Forward(ModelOutput output, ModelBatch batch, int[] labels, float[]? classWeights = null, float labelSmoothing = 0f);

    /// <summary>
    /// Called by the trainer once per fold, before the first step (and again on resume), with the training clips: a loss
    /// that needs the fold as a whole (AIE-CCL's AU-set prototypes) gathers it here. Nothing of the test subject is passed.
    /// </summary>
    public virtual void BeginFold(TrainingFold fold) { }

    /// <summary>
    /// True when the loss can train on soft targets (<see cref="ForwardSoft"/>, what <c>--mixup</c> needs). False by default:
    /// a loss with a term on hard labels (STT's class centres, FDP's joint loss, AIE-CCL's AU-set contrast) has no one
    /// meaning for a mixed clip, so mixup refuses it rather than guess.
    /// </summary>
    public virtual bool TakesSoftTargets => false;

    /// <summary>
    /// output, batch, soft targets [B, K] (row-major, each row sums to 1) → scalar loss; only where <see cref="TakesSoftTargets"/>.
    /// </summary>
    public virtual Tensor ForwardSoft(ModelOutput output, ModelBatch batch, float[] targets, float[]? classWeights = null, float labelSmoothing = 0f) =>
        throw new NotSupportedException($"{GetType().Name} takes hard labels only; it cannot train on soft (mixup) targets");
}

/// <summary>
/// The training fold as a loss sees it at fold start: <see cref="Clips"/> training clips and, for each, its per-clip data
/// of a kind the model declares (an input or a training target), [T, C, S, S] flattened.
/// </summary>
public sealed class TrainingFold(int clips, Func<int, InputKind, float[]> input)
{
    public int Clips { get; } = clips;
    public float[] Input(int clip, InputKind kind) => input(clip, kind);
}

/// <summary>(Class-weighted, optionally label-smoothed) cross-entropy of the logits: the default loss.</summary>
public sealed class CrossEntropyLoss : MerLoss
{
    public override Tensor Forward(ModelOutput output, ModelBatch batch, int[] labels, float[]? classWeights = null, float labelSmoothing = 0f) =>
        Tensor.CrossEntropy(output.Logits, labels, classWeights, labelSmoothing);

    public override bool TakesSoftTargets => true;

    /// <summary>Soft-target cross-entropy (<see cref="Tensor.CrossEntropy(Tensor, float[], float[], float)"/>): mixup's loss.</summary>
    public override Tensor ForwardSoft(ModelOutput output, ModelBatch batch, float[] targets, float[]? classWeights = null, float labelSmoothing = 0f) =>
        Tensor.CrossEntropy(output.Logits, targets, classWeights, labelSmoothing);
}

/// <summary>Which compactness term <see cref="CompactSoftmaxLoss"/> adds to the cross-entropy.</summary>
[JsonConverter(typeof(JsonStringEnumConverter))]
public enum CompactKind
{
    /// <summary>Plain cross-entropy (no compactness term).</summary>
    None,
    /// <summary>Our reading: a class-centre ratio term on the features (below).</summary>
    Centre,
    /// <summary>The alternative reading: symmetric KL between the non-target predictions of same-class samples (<see cref="NonTargetKlLoss"/>).</summary>
    SymmetricKl,
}

/// <summary>
/// STT's compact softmax cross-entropy, <b>as we read it</b> (the paper's formula is unverified; papers.md §2):
/// <code>
/// L = CE(z, y) + λ · (1/B) Σᵢ ½‖fᵢ − c_yᵢ‖² / (Σ_{j≠yᵢ} ‖fᵢ − c_j‖² + δ)
/// </code>
/// with features f [B, C] (the model's <see cref="ModelOutput.Features"/>), learnable class centres c [K, C] (a parameter
/// of this module, trained by the model's optimizer), λ = 0.01 and δ = 1e-6 by default. The numerator pulls a sample
/// to its class centre, the denominator pushes it from the other centres, so the ratio is scale-free: a centre-loss
/// numerator alone could be lowered by shrinking every feature. Chosen because the same authors' LOGO-Former calls its
/// term a "compact loss regularization" on features (papers.md §2). The alternative, a prediction-space reading (a
/// symmetric KL divergence between the non-target parts of the softmax predictions of samples of one class), is offered
/// as <see cref="NonTargetKlLoss"/> (<c>--set compact=SymmetricKl</c>); not the default because it needs same-class pairs
/// within a batch and says nothing about feature compactness.
/// Built from primitive ops (broadcast subtract, square, masked sums), so its gradient is the autograd of those.
/// Centres are initialised N(0, 0.02²) like the transformer's embeddings (never at one point: the ratio's denominator
/// would then be the numerator's scale for every sample).
/// </summary>
public sealed class CompactSoftmaxLoss : MerLoss
{
    public CompactSoftmaxLoss(int classes, int features, Rng rng, float lambda = 0.01f, float delta = 1e-6f)
    {
        if (classes < 2) throw new ArgumentOutOfRangeException(nameof(classes), classes, "compact softmax: needs at least 2 classes");
        Classes = classes;
        Features = features;
        Lambda = lambda;
        Delta = delta;
        Centres = Parameter("centres", Tensor.RandN([classes, features], rng, 0f, 0.02f));
    }

    public int Classes { get; }
    public int Features { get; }
    public float Lambda { get; }
    public float Delta { get; }
    /// <summary>The class centres c [K, C].</summary>
    public Tensor Centres { get; }

    public override Tensor Forward(ModelOutput output, ModelBatch batch, int[] labels, float[]? classWeights = null, float labelSmoothing = 0f)
    {
        var ce = Tensor.CrossEntropy(output.Logits, labels, classWeights, labelSmoothing);
        if (Lambda == 0f) return ce;
        return ce + Compactness(output.Get(ModelOutput.Features), labels).Scale(Lambda);
    }

    /// <summary>f [B, C], labels [B] → (1/B) Σᵢ ½‖fᵢ − c_yᵢ‖² / (Σ_{j≠yᵢ} ‖fᵢ − c_j‖² + δ) with this module's centres.</summary>
    public Tensor Compactness(Tensor features, int[] labels) => Compactness(features, Centres, labels, Delta);

    /// <summary>f [B, C], centres c [K, C], labels [B] → (1/B) Σᵢ ½‖fᵢ − c_yᵢ‖² / (Σ_{j≠yᵢ} ‖fᵢ − c_j‖² + δ), a scalar.</summary>
    public static Tensor Compactness(Tensor features, Tensor centres, int[] labels, float delta)
    {
        if (centres.Rank != 2 || features.Rank != 2 || features.Shape[1] != centres.Shape[1] || features.Shape[0] != labels.Length)
            throw new ShapeException($"compact softmax: expected features [B={labels.Length}, C] and centres [K, C], got {ShapeUtil.Format(features.Shape)} and {ShapeUtil.Format(centres.Shape)}");
        int b = labels.Length, k = centres.Shape[0], c = centres.Shape[1];
        var own = new float[b * k];
        var other = new float[b * k];
        for (int i = 0; i < b; i++)
        {
            if (labels[i] < 0 || labels[i] >= k) throw new ArgumentOutOfRangeException(nameof(labels), $"compact softmax: label {labels[i]} of sample {i} is outside 0..{k - 1}");
            for (int j = 0; j < k; j++) (j == labels[i] ? own : other)[i * k + j] = 1f;
        }
        var diff = features.Reshape(b, 1, c) - centres.Reshape(1, k, c);                     // [B, K, C]
        var d2 = (diff * diff).Sum([2]);                                                    // [B, K]
        var pull = (d2 * Tensor.FromSpan(own, [b, k], features.Device)).Sum([1]);           // ‖fᵢ − c_yᵢ‖²  [B]
        var push = (d2 * Tensor.FromSpan(other, [b, k], features.Device)).Sum([1]) + delta; // Σ_{j≠yᵢ} ‖fᵢ − c_j‖² + δ  [B]
        return (pull / push).Mean().Scale(0.5f);
    }
}

/// <summary>
/// The second reading of STT's compact softmax cross-entropy (papers.md §2; not the default, see
/// <see cref="CompactSoftmaxLoss"/>): samples of one class should agree also on how they spread their probability over
/// the <i>other</i> classes. With qᵢ the softmax of sample i's logits over the non-target classes only
/// (qᵢₖ = pᵢₖ / (1 − pᵢ,yᵢ), k ≠ yᵢ), and P the pairs i &lt; j of the batch with yᵢ = yⱼ:
/// <code>
/// L = CE(z, y) + λ · (1/|P|) Σ_{(i,j)∈P} ½ [KL(qᵢ‖qⱼ) + KL(qⱼ‖qᵢ)] = CE + λ · (1/|P|) Σ ½ Σ_{k≠y} (qᵢₖ − qⱼₖ)(log qᵢₖ − log qⱼₖ)
/// </code>
/// and just CE when the batch has no same-class pair. No parameters. Built from primitive ops (the target logit masked
/// by −10⁴ before a softmax, pairs gathered by one-hot matrix products), so its gradient is the autograd of those.
/// </summary>
public sealed class NonTargetKlLoss(float lambda = 0.01f) : MerLoss
{
    /// <summary>Added to the target logit: exp(−10⁴) is 0 in float32, and the masked entries are multiplied out anyway.</summary>
    const float Masked = -1e4f;

    public float Lambda { get; } = lambda;

    public override Tensor Forward(ModelOutput output, ModelBatch batch, int[] labels, float[]? classWeights = null, float labelSmoothing = 0f)
    {
        var ce = Tensor.CrossEntropy(output.Logits, labels, classWeights, labelSmoothing);
        return Lambda == 0f || Divergence(output.Logits, labels) is not { } kl ? ce : ce + kl.Scale(Lambda);
    }

    /// <summary>z [B, K], labels [B] → the mean symmetric KL of the same-class pairs' non-target predictions; null without such a pair.</summary>
    public static Tensor? Divergence(Tensor logits, int[] labels)
    {
        if (logits.Rank != 2 || logits.Shape[0] != labels.Length)
            throw new ShapeException($"non-target KL: expected logits [B={labels.Length}, K], got {ShapeUtil.Format(logits.Shape)}");
        int b = labels.Length, k = logits.Shape[1];
        var pairs = new List<(int I, int J)>();
        for (int i = 0; i < b; i++)
        {
            if (labels[i] < 0 || labels[i] >= k) throw new ArgumentOutOfRangeException(nameof(labels), $"non-target KL: label {labels[i]} of sample {i} is outside 0..{k - 1}");
            for (int j = i + 1; j < b; j++) if (labels[j] == labels[i]) pairs.Add((i, j));
        }
        if (pairs.Count == 0) return null;
        var mask = new float[b * k];     // −10⁴ on the target logit
        var keep = new float[pairs.Count * k]; // 1 on a pair's non-target classes
        var first = new float[pairs.Count * b];
        var second = new float[pairs.Count * b];
        for (int i = 0; i < b; i++) mask[i * k + labels[i]] = Masked;
        for (int p = 0; p < pairs.Count; p++)
        {
            first[p * b + pairs[p].I] = 1f;
            second[p * b + pairs[p].J] = 1f;
            for (int c = 0; c < k; c++) keep[p * k + c] = c == labels[pairs[p].I] ? 0f : 1f;
        }
        var dev = logits.Device;
        var masked = logits + Tensor.FromSpan(mask, [b, k], dev);
        var q = masked.Softmax();
        var logQ = masked.LogSoftmax();
        var a = Tensor.FromSpan(first, [pairs.Count, b], dev);
        var c2 = Tensor.FromSpan(second, [pairs.Count, b], dev);
        var dq = a.MatMul(q) - c2.MatMul(q);                 // qᵢ − qⱼ     [P, K]
        var dlog = a.MatMul(logQ) - c2.MatMul(logQ);         // log qᵢ − log qⱼ
        return (dq * dlog * Tensor.FromSpan(keep, [pairs.Count, k], dev)).Sum([1]).Mean().Scale(0.5f);
    }
}
