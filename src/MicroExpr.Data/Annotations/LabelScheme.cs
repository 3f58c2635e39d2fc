namespace MicroExpr.Data.Annotations;

/// <summary>Which classes a data set's emotions map to.</summary>
public enum ClassScheme
{
    /// <summary>The data set's usual classes (CASME II 5, SAMM 5, SMIC 3, CAS(ME)³ 4; see <see cref="LabelMaps"/>).</summary>
    Native,
    /// <summary>MEGC2019's three classes: 0 negative, 1 positive, 2 surprise.</summary>
    Three,
}

/// <summary>
/// Emotion name → class, per data set and scheme. Emotion names are matched case-insensitively after trimming, with
/// common spellings folded together (happy → happiness, sad → sadness, other → others). An emotion not in the map is
/// "outside the mapping": the reader skips the row and says so.
/// <list type="bullet">
/// <item>CASME II native: happiness, surprise, disgust, repression, others (sadness and fear, 6 clips, dropped).</item>
/// <item>SAMM native: anger, contempt, happiness, surprise, others (disgust, fear, sadness dropped: under 10 clips each).</item>
/// <item>SMIC-HS: negative, positive, surprise (both schemes).</item>
/// <item>CAS(ME)³ native: negative (anger, disgust, fear, sadness), positive (happiness), surprise, others.</item>
/// <item>Three (MEGC2019): CASME II disgust, repression → negative, happiness → positive, surprise → surprise;
/// SAMM anger, contempt, disgust, fear, sadness → negative; CAS(ME)³ as its native map without others.</item>
/// </list>
/// </summary>
public static class LabelMaps
{
    public static readonly string[] ThreeClasses = ["negative", "positive", "surprise"];

    public static (string[] Classes, Dictionary<string, int> Map) For(string dataset, ClassScheme scheme)
    {
        (string[] classes, (string Emotion, string Class)[] pairs) = (dataset, scheme) switch
        {
            ("casme2", ClassScheme.Native) => (["happiness", "surprise", "disgust", "repression", "others"],
                new[] { ("happiness", "happiness"), ("surprise", "surprise"), ("disgust", "disgust"), ("repression", "repression"), ("others", "others") }),
            ("casme2", ClassScheme.Three) => (ThreeClasses,
                new[] { ("disgust", "negative"), ("repression", "negative"), ("happiness", "positive"), ("surprise", "surprise") }),
            ("samm", ClassScheme.Native) => (["anger", "contempt", "happiness", "surprise", "others"],
                new[] { ("anger", "anger"), ("contempt", "contempt"), ("happiness", "happiness"), ("surprise", "surprise"), ("others", "others") }),
            ("samm", ClassScheme.Three) => (ThreeClasses,
                new[] { ("anger", "negative"), ("contempt", "negative"), ("disgust", "negative"), ("fear", "negative"), ("sadness", "negative"),
                        ("happiness", "positive"), ("surprise", "surprise") }),
            ("smic", _) => (ThreeClasses,
                new[] { ("negative", "negative"), ("positive", "positive"), ("surprise", "surprise") }),
            ("casme3", ClassScheme.Native) => (["negative", "positive", "surprise", "others"],
                new[] { ("anger", "negative"), ("disgust", "negative"), ("fear", "negative"), ("sadness", "negative"),
                        ("happiness", "positive"), ("surprise", "surprise"), ("others", "others") }),
            ("casme3", ClassScheme.Three) => (ThreeClasses,
                new[] { ("anger", "negative"), ("disgust", "negative"), ("fear", "negative"), ("sadness", "negative"),
                        ("happiness", "positive"), ("surprise", "surprise") }),
            _ => throw new ArgumentException($"no label map for data set '{dataset}'"),
        };
        var map = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (emotion, cls) in pairs) map[emotion] = Array.IndexOf(classes, cls);
        return (classes, map);
    }

    /// <summary>Lower case, trimmed, common spellings folded: "Happy" → "happiness", "sad" → "sadness", "Other" → "others".</summary>
    public static string Normalise(string emotion)
    {
        string e = emotion.Trim().ToLowerInvariant();
        return e switch
        {
            "happy" or "happiness" => "happiness",
            "sad" or "sadness" => "sadness",
            "other" or "others" => "others",
            "surprised" or "surprise" => "surprise",
            "disgusted" or "disgust" => "disgust",
            "fearful" or "fear" => "fear",
            "angry" or "anger" => "anger",
            "ne" or "neg" or "negative" => "negative",
            "po" or "pos" or "positive" => "positive",
            "sur" => "surprise",
            _ => e,
        };
    }
}
