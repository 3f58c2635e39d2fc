using MicroExpr.Data;
using MicroExpr.Models;

namespace MicroExpr.Training;

/// <summary>
/// The one mapping between what a cache stores (<see cref="CacheInputs"/>, MicroExpr.Data) and what a model reads
/// (<see cref="InputKind"/>, MicroExpr.Models): Training sees both projects, neither sees the other. Action units have no
/// cache file (their raw string travels on every clip), so <see cref="ToCache"/> gives null for them.
/// </summary>
public static class CacheKinds
{
    public static CacheInputs? ToCache(InputKind kind) => kind switch
    {
        InputKind.MotionFrames => CacheInputs.Motion,
        InputKind.RgbFrames => CacheInputs.Rgb,
        InputKind.GreyFrames => CacheInputs.Grey,
        InputKind.DynamicImage => CacheInputs.DynamicImage,
        _ => null,
    };

    public static InputKind ToInput(CacheInputs kind) => kind switch
    {
        CacheInputs.Motion => InputKind.MotionFrames,
        CacheInputs.Rgb => InputKind.RgbFrames,
        CacheInputs.Grey => InputKind.GreyFrames,
        CacheInputs.DynamicImage => InputKind.DynamicImage,
        _ => throw new ArgumentException($"not a single cache input kind: {kind}"),
    };

    /// <summary>The kinds a model reads (with <paramref name="targets"/>: also its loss's targets).</summary>
    public static IReadOnlyList<InputKind> Read(IMerModelConfig config, bool targets = true) =>
        config.Inputs.Concat(targets ? config.Targets : []).Select(i => i.Kind).Distinct().ToList();

    /// <summary>The cache kinds to store for a model: <c>preprocess --inputs</c> derived from its inputs and targets (motion when it reads none of them).</summary>
    public static CacheInputs Preprocess(IMerModelConfig config)
    {
        var set = CacheInputs.None;
        foreach (var k in Read(config)) set |= ToCache(k) ?? CacheInputs.None;
        return set == CacheInputs.None ? CacheInputs.Motion : set;
    }
}
