using System.Globalization;

namespace MicroExpr.Data.Annotations;

/// <summary>
/// SAMM as distributed: <c>SAMM_*_Micro_FACS_Codes*.xlsx</c> (title rows above the header are skipped: the header is the
/// first row naming Subject, Filename, Onset Frame, Apex Frame, Offset Frame and Estimated Emotion) and frames at
/// <c>ROOT/006/006_1_2/006_05562.jpg</c>. An apex or offset of -1 or blank is unknown: the offset becomes the last frame
/// of the folder, the apex is estimated. The row loop is <see cref="CodingSheet.Read"/>.
/// </summary>
public static class SammReader
{
    public const string Pattern = "*Micro_FACS_Codes*.xlsx";

    static readonly CodingSheet Sheet = new()
    {
        Dataset = "samm",
        Title = "SAMM",
        Pattern = Pattern,
        Onset = ["Onset Frame", "Onset"],
        Apex = ["Apex Frame", "Apex"],
        Offset = ["Offset Frame", "Offset"],
        Emotion = ["Estimated Emotion", "Emotion"],
        ActionUnits = ["Action Units", "ActionUnits"],
        SubjectExpected = "a subject number (6 or 006)",
        Subject = cell => ClipChecks.SubjectNumber(cell) is int n and >= 0 ? n.ToString("000", CultureInfo.InvariantCulture) : null,
        // 006 as distributed, then the cell as written, then clip folders straight under the root.
        Folders = (root, cell, subject, clip) => [Path.Combine(root, subject, clip), Path.Combine(root, cell, clip), Path.Combine(root, clip)],
        Needs = (onset, _) => onset < 0 ? "onset frame missing (expected a frame number)" : null,
    };

    public static ClipList Read(string root, string? annotations = null, ClassScheme scheme = ClassScheme.Native, string subjectPrefix = "", bool allowOutsideRoot = false) =>
        Sheet.Read(root, annotations, scheme, subjectPrefix, allowOutsideRoot);
}
