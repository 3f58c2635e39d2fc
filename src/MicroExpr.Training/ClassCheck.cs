namespace MicroExpr.Training;

/// <summary>How many clips and subjects one class has in a clip set.</summary>
public sealed record ClassCount(int Label, string Name, int Clips, int Subjects);

/// <summary>
/// The class set a run is about to train on, and what is surprising about it — said before training, not found out
/// from a confusion matrix afterwards: a class with no clips (an output the model can never learn, often a typo or a
/// stray label in the annotation), a class that only one subject shows (in that subject's LOSO fold the model never
/// sees it trained), a class with very few clips, and more classes than any MER data set has (usually a wrong column
/// read as the label).
/// </summary>
public static class ClassCheck
{
    /// <summary>MER data sets have 3 to 8 emotion classes (CASME II 5 or 7, SAMM 5–8 with "other", CAS(ME)³ 7).</summary>
    public const int MostClassesExpected = 8;
    /// <summary>Fewer clips than this in one class is reported.</summary>
    public const int FewestClipsExpected = 3;

    public static IReadOnlyList<ClassCount> Count(ClipSet set) =>
        Enumerable.Range(0, set.ClassNames.Count).Select(k =>
        {
            var clips = set.Clips.Where(c => c.Label == k).ToList();
            return new ClassCount(k, set.ClassNames[k], clips.Count, clips.Select(c => c.Subject).Distinct().Count());
        }).ToList();

    /// <summary>One line per surprising fact about the class set (empty when there is none).</summary>
    public static IReadOnlyList<string> Warnings(ClipSet set)
    {
        var counts = Count(set);
        var lines = new List<string>();
        if (counts.Count > MostClassesExpected)
            lines.Add($"{counts.Count} classes: MER data sets have 3 to {MostClassesExpected}; is the label column the emotion?");
        foreach (var c in counts)
        {
            if (c.Clips == 0)
                lines.Add($"class '{c.Name}' (label {c.Label}) has no clips: the model gets an output it can never learn");
            else if (c.Subjects == 1 && set.Subjects.Count > 1)
                lines.Add($"class '{c.Name}' has clips of one subject only ({set.Clips.First(x => x.Label == c.Label).Subject}): in that subject's fold no training clip shows it");
            else if (c.Clips < FewestClipsExpected)
                lines.Add($"class '{c.Name}' has only {c.Clips} clip{(c.Clips == 1 ? "" : "s")}");
        }
        return lines;
    }

    /// <summary>"negative 120 (20 subjects), positive 48 (15), …".</summary>
    public static string Describe(ClipSet set) =>
        string.Join(", ", Count(set).Select((c, i) => i == 0 ? $"{c.Name} {c.Clips} ({c.Subjects} subjects)" : $"{c.Name} {c.Clips} ({c.Subjects})"));
}
