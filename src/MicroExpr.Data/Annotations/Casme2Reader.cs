using System.Globalization;

namespace MicroExpr.Data.Annotations;

/// <summary>
/// CASME II as distributed: <c>CASME2-coding-*.xlsx</c> (2014 and 2019 versions; columns Subject, Filename, OnsetFrame,
/// ApexFrame, OffsetFrame, Action Units, Estimated Emotion, found by name wherever the header row is) and frames at
/// <c>ROOT/sub01/EP02_01f/img46.jpg</c> (the raw or the cropped set: any name whose last number is the frame number).
/// The Subject cell may be <c>1</c>, <c>01</c> or <c>sub01</c>. An apex of "/" (one row of the 2014 file) is unknown and
/// is estimated. The row loop is <see cref="CodingSheet.Read"/>.
/// </summary>
public static class Casme2Reader
{
    public const string Pattern = "CASME2-coding-*.xlsx";

    static readonly CodingSheet Sheet = new()
    {
        Dataset = "casme2",
        Title = "CASME II",
        Pattern = Pattern,
        Onset = ["OnsetFrame", "Onset"],
        Apex = ["ApexFrame", "Apex"],
        Offset = ["OffsetFrame", "Offset"],
        Emotion = ["Estimated Emotion", "Emotion"],
        ActionUnits = ["Action Units", "ActionUnits"],
        SubjectExpected = "a subject (1, 01 or sub01)",
        Subject = cell => ClipChecks.SubjectNumber(cell) is int n and >= 0 ? "sub" + n.ToString("00", CultureInfo.InvariantCulture) : null,
        // sub01 as distributed, then sub1 and the cell as written.
        Folders = (root, cell, subject, clip) =>
            [Path.Combine(root, subject, clip), Path.Combine(root, "sub" + ClipChecks.SubjectNumber(cell).ToString(CultureInfo.InvariantCulture), clip), Path.Combine(root, cell, clip)],
    };

    public static ClipList Read(string root, string? annotations = null, ClassScheme scheme = ClassScheme.Native, string subjectPrefix = "", bool allowOutsideRoot = false) =>
        Sheet.Read(root, annotations, scheme, subjectPrefix, allowOutsideRoot);
}
