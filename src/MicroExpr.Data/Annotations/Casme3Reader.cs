using System.Globalization;

namespace MicroExpr.Data.Annotations;

/// <summary>
/// CAS(ME)³ part A: the workbook's sheet "label" (Subject spNO.x, Filename, Onset, Apex, Offset, AU, Objective class,
/// emotion; the first sheet when none is called "label") and frames at <c>ROOT/spNO.1/b/color/175.jpg</c>. One video
/// folder holds several micro-expressions, so a clip is named Filename_Onset. The row loop is <see cref="CodingSheet.Read"/>.
/// </summary>
public static class Casme3Reader
{
    public const string Pattern = "*.xlsx";

    static readonly CodingSheet Sheet = new()
    {
        Dataset = "casme3",
        Title = "CAS(ME)³",
        Pattern = Pattern,
        SheetName = "label",
        Onset = ["Onset"],
        Apex = ["Apex"],
        Offset = ["Offset"],
        Emotion = ["emotion"],
        ActionUnits = ["AU", "Action Units"],
        SubjectExpected = "a subject (spNO.1)",
        Subject = cell => cell,
        Folders = (root, _, subject, video) => [Path.Combine(root, subject, video, "color"), Path.Combine(root, subject, video)],
        Needs = (onset, offset) => onset < 0 || offset < 0 ? "onset and offset are needed: a part-A folder holds a whole recording" : null,
        ClipName = (video, onset) => video + "_" + onset.ToString(CultureInfo.InvariantCulture),
    };

    public static ClipList Read(string root, string? annotations = null, ClassScheme scheme = ClassScheme.Native, string subjectPrefix = "", bool allowOutsideRoot = false) =>
        Sheet.Read(root, annotations, scheme, subjectPrefix, allowOutsideRoot);
}
