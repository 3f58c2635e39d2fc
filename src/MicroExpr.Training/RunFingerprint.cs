using System.Globalization;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;

namespace MicroExpr.Training;

/// <summary>
/// What a run was trained on, beyond its options: checked in one place when a run is resumed, so folds trained on one
/// data set are never reported as results on another.
/// </summary>
public static class RunFingerprint
{
    /// <summary>
    /// "xxh3:" and 16 hex digits over every clip's id, subject, label and values, in order: another cache, a cache made
    /// with other settings, or clips changed in place all give another fingerprint. The motion frames' values come first
    /// with no tag (a motion-only set keeps the fingerprint it had before other kinds existed); every other loaded kind
    /// follows in <see cref="Models.InputKind"/> order, tagged with its name, then the action units when there are any.
    /// </summary>
    public static string Of(ClipSet data)
    {
        var hash = new XxHash3();
        foreach (var c in data.Clips)
        {
            hash.Append(Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{c.Id}\u0000{c.Subject}\u0000{c.Label}\u0000")));
            if (c.Inputs.TryGetValue(Models.InputKind.MotionFrames, out var motion)) hash.Append(MemoryMarshal.AsBytes(motion.AsSpan()));
            foreach (var (kind, values) in c.Inputs.Where(p => p.Key != Models.InputKind.MotionFrames).OrderBy(p => p.Key))
            {
                hash.Append(Encoding.UTF8.GetBytes($"\u0000{kind}\u0000"));
                hash.Append(MemoryMarshal.AsBytes(values.AsSpan()));
            }
            if (!string.IsNullOrEmpty(c.ActionUnits)) hash.Append(Encoding.UTF8.GetBytes($"\u0000au\u0000{c.ActionUnits}"));
        }
        return "xxh3:" + hash.GetCurrentHashAsUInt64().ToString("x16", CultureInfo.InvariantCulture);
    }

    /// <summary>The fields where the recorded run and the one being resumed differ ("data: A vs B", …); empty when they match.</summary>
    public static IReadOnlyList<string> Differences(RunRecord recorded, RunRecord now)
    {
        var d = new List<string>();
        void Cmp(string name, string a, string b) { if (a != b) d.Add($"{name}: {a} (recorded) vs {b} (now)"); }
        static string Full(string? p) => string.IsNullOrEmpty(p) ? "" : Path.GetFullPath(p);
        Cmp("data", Full(recorded.Data), Full(now.Data));
        Cmp("class names", string.Join(",", recorded.ClassNames ?? []), string.Join(",", now.ClassNames));
        Cmp("subjects", string.Join(",", recorded.Subjects ?? []), string.Join(",", now.Subjects));
        Cmp("frames", recorded.Frames.ToString(CultureInfo.InvariantCulture), now.Frames.ToString(CultureInfo.InvariantCulture));
        Cmp("size", recorded.Size.ToString(CultureInfo.InvariantCulture), now.Size.ToString(CultureInfo.InvariantCulture));
        Cmp("settings hash", recorded.SettingsHash ?? "", now.SettingsHash ?? "");
        Cmp("clip fingerprint", string.IsNullOrEmpty(recorded.Fingerprint) ? "(not recorded)" : recorded.Fingerprint, now.Fingerprint ?? "");
        return d;
    }
}
