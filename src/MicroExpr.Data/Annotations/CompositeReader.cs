namespace MicroExpr.Data.Annotations;

/// <summary>
/// MEGC2019's composite set: CASME II, SAMM and SMIC-HS in three classes (0 negative, 1 positive, 2 surprise; mapping in
/// <see cref="LabelMaps"/>). ROOT holds one folder per data set, found by name prefix (case-insensitive): CASME2*,
/// SAMM*, SMIC*. Each set's annotation file is looked for in its folder, then in ROOT (SMIC's is optional). Subject ids
/// are prefixed with the data set's name (casme2_sub01, samm_006, smic_s1): subjects of different sets are different people.
/// </summary>
public static class CompositeReader
{
    public static ClipList Read(string root, bool allowOutsideRoot = false)
    {
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"composite root folder {root} not found");
        string Find(string prefix) => Directory.EnumerateDirectories(root)
            .Where(d => Path.GetFileName(d).StartsWith(prefix, StringComparison.OrdinalIgnoreCase)).OrderBy(d => d, StringComparer.Ordinal).FirstOrDefault()
            ?? throw new DirectoryNotFoundException($"{root}: no {prefix}* folder (the composite root holds CASME2*, SAMM* and SMIC* folders)");
        string casme = Find("CASME2"), samm = Find("SAMM"), smic = Find("SMIC");
        var parts = new List<ClipList>
        {
            Casme2Reader.Read(casme, ClipChecks.FindAnnotation([casme, root], Casme2Reader.Pattern, "CASME II"), ClassScheme.Three, "casme2_", allowOutsideRoot),
            SammReader.Read(samm, ClipChecks.FindAnnotation([samm, root], SammReader.Pattern, "SAMM"), ClassScheme.Three, "samm_", allowOutsideRoot),
            SmicReader.Read(smic, FindOptional([smic, root], "*SMIC*.xlsx"), "smic_", allowOutsideRoot),
        };
        var all = new ClipList("composite", LabelMaps.ThreeClasses);
        foreach (var p in parts)
        {
            all.Clips.AddRange(p.Clips);
            all.Skipped.AddRange(p.Skipped);
            all.Warnings.AddRange(p.Warnings);
        }
        return all;
    }

    static string? FindOptional(string[] dirs, string pattern) =>
        dirs.Where(Directory.Exists).SelectMany(d => Directory.EnumerateFiles(d, pattern)).OrderBy(f => f, StringComparer.Ordinal).LastOrDefault();
}
