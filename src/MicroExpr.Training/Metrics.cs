namespace MicroExpr.Training;

/// <summary>
/// One prediction of one clip. <paramref name="Dataset"/> is the data set the clip came from (the cache index's
/// <c>dataset</c>, e.g. casme2, samm, smic of the MEGC2019 composite), "" when unknown (fold results written before it was
/// recorded: <see cref="DatasetOf"/> then reads it from the clip id).
/// </summary>
public sealed record Prediction(string Clip, string Subject, int Label, int Predicted, float[] Probabilities, string Dataset = "")
{
    /// <summary>
    /// The clip's data set: <see cref="Dataset"/>, or for an older fold result the first part of an id of the form
    /// "dataset/subject/clip" (what <see cref="ClipSet.FromCache(string)"/> writes when the index names a data set), else "".
    /// </summary>
    public string DatasetOf()
    {
        if (!string.IsNullOrEmpty(Dataset)) return Dataset;
        var parts = Clip.Split('/');
        return parts.Length >= 3 && parts[1] == Subject ? parts[0] : "";
    }
}

/// <summary>
/// MER metrics over pooled predictions (protocol-and-data.md): UF1 = mean over classes of
/// 2·TP/(2·TP + FP + FN); UAR = mean over classes of TP/N_c; accuracy; the confusion matrix
/// (rows true, columns predicted); per-subject accuracy. A class absent from the pooled set (no true
/// sample) is left out of both means and listed in <see cref="AbsentClasses"/>.
/// </summary>
public sealed record MetricSet(double Uf1, double Uar, double Accuracy, int[,] Confusion, IReadOnlyDictionary<string, double> PerSubjectAccuracy,
    IReadOnlyList<int> AbsentClasses, double[] F1PerClass, double[] RecallPerClass, int Count)
{
    public static MetricSet Compute(IReadOnlyList<Prediction> predictions, int classes)
    {
        var cm = new int[classes, classes];
        foreach (var p in predictions)
        {
            if (p.Label < 0 || p.Label >= classes || p.Predicted < 0 || p.Predicted >= classes)
                throw new ArgumentException($"prediction for clip {p.Clip}: label {p.Label} / predicted {p.Predicted} outside 0..{classes - 1}");
            cm[p.Label, p.Predicted]++;
        }
        var f1 = new double[classes];
        var recall = new double[classes];
        var absent = new List<int>();
        double sumF1 = 0, sumRecall = 0;
        int present = 0, correct = 0;
        for (int c = 0; c < classes; c++)
        {
            int tp = cm[c, c], n = 0, predicted = 0;
            for (int j = 0; j < classes; j++) { n += cm[c, j]; predicted += cm[j, c]; }
            correct += tp;
            int fn = n - tp, fp = predicted - tp;
            f1[c] = 2 * tp + fp + fn == 0 ? 0 : 2.0 * tp / (2 * tp + fp + fn);
            recall[c] = n == 0 ? 0 : (double)tp / n;
            if (n == 0) { absent.Add(c); continue; }
            present++;
            sumF1 += f1[c];
            sumRecall += recall[c];
        }
        var perSubject = predictions.GroupBy(p => p.Subject).OrderBy(g => g.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Count(p => p.Label == p.Predicted) / (double)g.Count());
        return new MetricSet(present == 0 ? 0 : sumF1 / present, present == 0 ? 0 : sumRecall / present,
            predictions.Count == 0 ? 0 : (double)correct / predictions.Count, cm, perSubject, absent, f1, recall, predictions.Count);
    }

    /// <summary>
    /// The metrics of each data set's clips alone (MEGC2019 reports CASME II, SAMM and SMIC beside the composite), by
    /// <see cref="Prediction.DatasetOf"/>, ordinally sorted; empty when the predictions come from fewer than two named data
    /// sets (a per-data-set table would repeat the pooled one). Each part's UF1 and UAR leave out the classes absent from
    /// that part, as the pooled figure does.
    /// </summary>
    public static IReadOnlyDictionary<string, MetricSet> PerDataset(IReadOnlyList<Prediction> predictions, int classes)
    {
        var groups = predictions.GroupBy(p => p.DatasetOf()).Where(g => g.Key.Length > 0).OrderBy(g => g.Key, StringComparer.Ordinal).ToList();
        if (groups.Count < 2) return new Dictionary<string, MetricSet>();
        return groups.ToDictionary(g => g.Key, g => Compute(g.ToList(), classes), StringComparer.Ordinal);
    }
}
