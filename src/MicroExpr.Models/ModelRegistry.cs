using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
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
        new(FdpConfig.FamilyName, typeof(FdpConfig), (c, rng) => new FdpModel((FdpConfig)c, rng),
            [() => FdpPresets.Released, () => FdpPresets.Tiny]),
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

    /// <summary>
    /// A preset's config with some fields changed (<c>--set KEY=VALUE[,KEY=VALUE…]</c>): KEY is a field of the family's
    /// config record, matched ignoring case, '-' and '_' (compact-weight = CompactWeight); VALUE is a number, true/false or an
    /// enum value (case and '-' ignored: symmetric-kl = SymmetricKl). The changed config is what the checkpoints save, so
    /// evaluate, predict and resume rebuild the same model. A key the config lacks, a value of the wrong kind, or an attempt
    /// to change the name is an <see cref="ArgumentException"/> naming the key and listing the fields.
    /// </summary>
    public static IMerModelConfig Preset(string name, string? settings)
    {
        var config = Preset(name);
        if (string.IsNullOrWhiteSpace(settings)) return config;
        var node = JsonNode.Parse(ConfigToJson(config))!.AsObject();
        var fields = node.Select(p => p.Key).Where(k => k != nameof(IMerModelConfig.Name)).ToList();
        foreach (var pair in settings.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = pair.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0 || eq == pair.Length - 1) throw new ArgumentException($"--set {pair}: expected KEY=VALUE (e.g. compact-weight=0.1)");
            string key = pair[..eq].Trim(), value = pair[(eq + 1)..].Trim();
            string field = fields.FirstOrDefault(f => Plain(f) == Plain(key))
                ?? throw new ArgumentException($"--set {key}: {name} has no such field; its fields: {string.Join(", ", fields.Select(Kebab))}");
            node[field] = node[field]?.GetValueKind() switch
            {
                JsonValueKind.Number => double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) && double.IsFinite(x)
                    ? JsonValue.Create(x)
                    : throw new ArgumentException($"--set {key}={value}: expected a number"),
                JsonValueKind.True or JsonValueKind.False => bool.TryParse(value, out var flag)
                    ? JsonValue.Create(flag)
                    : throw new ArgumentException($"--set {key}={value}: expected true or false"),
                JsonValueKind.String => JsonValue.Create(value.Replace("-", "", StringComparison.Ordinal).Replace("_", "", StringComparison.Ordinal)),
                _ => throw new ArgumentException($"--set {key}: this field cannot be set from the command line"),
            };
        }
        try
        {
            return (IMerModelConfig?)JsonSerializer.Deserialize(node.ToJsonString(), config.GetType())
                ?? throw new ArgumentException($"--set {settings}: gives no config");
        }
        catch (Exception e) when (e is JsonException or NotSupportedException or FormatException or InvalidOperationException)
        {
            throw new ArgumentException($"--set {settings}: not a valid {name} config ({Safetensors.OneLine(e.Message)})", e);
        }
    }

    static string Plain(string key) => key.Replace("-", "", StringComparison.Ordinal).Replace("_", "", StringComparison.Ordinal).ToLowerInvariant();

    /// <summary>CompactWeight → compact-weight.</summary>
    static string Kebab(string field) => string.Concat(field.Select((ch, i) => char.IsUpper(ch) ? (i > 0 ? "-" : "") + char.ToLowerInvariant(ch) : ch.ToString()));

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
