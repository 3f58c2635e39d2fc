using System.Text.Json;
using MicroExpr.Tensors;

namespace MicroExpr.Models;

/// <summary>
/// Every model preset and family behind <c>--model PRESET</c>: a preset name gives a config (<see cref="Preset"/>), a
/// config gives a model (<see cref="Create"/>), and a checkpoint's saved family + config JSON give the config back
/// (<see cref="ConfigFromJson"/>). A new family adds one <see cref="Family"/> entry and its presets here.
/// </summary>
public static class ModelRegistry
{
    /// <summary>A model family: its config type (for JSON), how to build a model from a config, and its presets.</summary>
    public sealed record Family(string Name, Type ConfigType, Func<IMerModelConfig, Rng, IMerModel> Create, IReadOnlyList<Func<IMerModelConfig>> Presets);

    public static IReadOnlyList<Family> Families { get; } =
    [
        new(SlsttConfig.FamilyName, typeof(SlsttConfig), (c, rng) => new SlsttModel((SlsttConfig)c, rng),
            [() => SlsttPresets.Bench, () => SlsttPresets.Tiny, () => SlsttPresets.B16]),
        new(SttConfig.FamilyName, typeof(SttConfig), (c, rng) => new SttModel((SttConfig)c, rng),
            [() => SttPresets.Tiny, () => SttPresets.R18]),
        new(AieConfig.FamilyName, typeof(AieConfig), (c, rng) => new AieModel((AieConfig)c, rng),
            [() => AiePresets.Tiny, () => AiePresets.Full]),
    ];

    /// <summary>Every preset name, family by family.</summary>
    public static IReadOnlyList<string> Names => Families.SelectMany(f => f.Presets.Select(p => p().Name)).ToList();

    /// <summary>The config of a preset, or an <see cref="ArgumentException"/> naming the known presets.</summary>
    public static IMerModelConfig Preset(string name) =>
        Families.SelectMany(f => f.Presets).Select(p => p()).FirstOrDefault(c => c.Name == name)
        ?? throw new ArgumentException($"unknown model preset '{name}'; known: {string.Join(", ", Names)}");

    public static bool IsPreset(string name) => Names.Contains(name);

    /// <summary>A model of the config with weights drawn from <paramref name="rng"/> (on the CPU; move it with To).</summary>
    public static IMerModel Create(IMerModelConfig config, Rng rng) => FamilyOf(config.Family).Create(config, rng);

    public static Family FamilyOf(string family) =>
        Families.FirstOrDefault(f => f.Name == family)
        ?? throw new InvalidDataException($"unknown model family '{family}'; known: {string.Join(", ", Families.Select(f => f.Name))}");

    /// <summary>The JSON saved beside a checkpoint (the config record of the model's family).</summary>
    public static string ConfigToJson(IMerModelConfig config) => JsonSerializer.Serialize(config, config.GetType());

    /// <summary>A saved config back: <paramref name="family"/> null means "slstt" (checkpoints written before the contract).</summary>
    public static IMerModelConfig ConfigFromJson(string? family, string json, string source)
    {
        var f = FamilyOf(family ?? SlsttConfig.FamilyName);
        try
        {
            return (IMerModelConfig?)JsonSerializer.Deserialize(json, f.ConfigType)
                ?? throw new InvalidDataException($"{source}: microexpr.config is null (an empty {f.Name} model config)");
        }
        catch (Exception e) when (e is JsonException or NotSupportedException)
        {
            throw new InvalidDataException($"{source}: microexpr.config is not a valid model config ({f.Name} family): {Safetensors.OneLine(e.Message)}", e);
        }
    }
}
