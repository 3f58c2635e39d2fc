using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using MicroExpr.Data;
using MicroExpr.Models;
using MicroExpr.Training;

namespace MicroExpr.Cli.Explain;

/// <summary>
/// Writes one clip's attention (<see cref="ClipAttention"/>) as PNGs, <c>attention.json</c> and one self-contained
/// <c>attention.html</c> (the PNGs inlined as data URIs) for <c>attention-map</c> and <c>predict --explain</c>:
/// <list type="bullet">
/// <item><c>layers-motion.png</c> / <c>layers-face.png</c>: for the apex frame, one row per layer, one panel per head —
/// the class token's attention over the patches — and a last row with the rollout; over the frame's motion image and over
/// its RGB face crop (when the cache or the frames give one).</item>
/// <item><c>rollout-frames.png</c>: the rollout of every frame, over its motion image (and face crop).</item>
/// <item><c>temporal.png</c>: the weights over frames per temporal layer and their rollout (models that attend across frames).</item>
/// <item><c>attention.json</c>: the numbers drawn — per frame, layer and head the class token's full row (all N tokens,
/// so it sums to 1), per frame the rollout's class-token row, and the temporal weights.</item>
/// </list>
/// The apex frame is the one whose motion image has the largest energy (Σ of squares over its pixels and channels): the
/// frame of largest motion, as the apex is estimated where a data set has none (the middle frame when only RGB frames are at hand).
/// </summary>
internal static class AttentionMapReport
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Writes the files into <paramref name="dir"/> (created when missing); returns the HTML page's path.</summary>
    public static string Write(string dir, ClipAttention att, IReadOnlyDictionary<CacheInputs, ClipTensor> display, IReadOnlyList<string> classes,
        float[] probs, string clipName)
    {
        Directory.CreateDirectory(dir);
        int t = att.Frames, g = att.Grid;
        display.TryGetValue(CacheInputs.Motion, out var motion);
        display.TryGetValue(CacheInputs.Rgb, out var rgb);
        // Without motion frames (a cache of RGB frames only) the middle frame stands for the apex.
        int apex = motion != null ? Apex(motion) : t / 2;
        var backgrounds = new List<(string Name, ClipTensor Frames)>();
        if (motion != null) backgrounds.Add(("motion", motion));
        if (rgb != null) backgrounds.Add(("face", rgb));
        if (backgrounds.Count == 0) backgrounds.Add(("input", display.Values.First()));

        var files = new List<(string File, string Caption)>();
        foreach (var (bgName, bg) in backgrounds)
        {
            var panels = new AttentionPlots.Panel?[att.Layers + 1, att.Heads];
            var frameMaps = att.Spatial[apex];
            for (int l = 0; l < att.Layers; l++)
                for (int h = 0; h < att.Heads; h++) panels[l, h] = Panel(bg, apex, frameMaps.ClassTokenRow(l, h), g);
            panels[att.Layers, 0] = Panel(bg, apex, frameMaps.ClassTokenRollout(), g);
            string file = $"layers-{bgName}.png";
            AttentionPlots.Grid(Path.Combine(dir, file), $"{att.Model}: class token -> patches, frame t{apex} of {t} ({bgName})",
                [.. Enumerable.Range(0, att.Layers).Select(l => $"layer {l}"), "rollout"], [.. Enumerable.Range(0, att.Heads).Select(h => $"head {h}")], panels);
            files.Add((file, $"Frame t{apex}{(motion != null ? " (largest motion)" : " (the middle frame)")}, over its {bgName switch { "face" => "RGB face crop", "motion" => "motion image", _ => "model input" }}: each layer's heads, then the rollout."));
        }
        {
            var panels = new AttentionPlots.Panel?[backgrounds.Count, t];
            for (int r = 0; r < backgrounds.Count; r++)
                for (int f = 0; f < t; f++) panels[r, f] = Panel(backgrounds[r].Frames, f, att.Spatial[f].ClassTokenRollout(), g);
            AttentionPlots.Grid(Path.Combine(dir, "rollout-frames.png"), $"{att.Model}: rollout of every frame",
                [.. backgrounds.Select(b => b.Name)], [.. Enumerable.Range(0, t).Select(f => $"t{f}")], panels);
            files.Add(("rollout-frames.png", "The rollout's class-token row of every frame."));
        }
        if (att.Temporal is { } temporal)
        {
            var rows = Enumerable.Range(0, temporal.Layers.Count).Select(att.TemporalWeights).Append(att.TemporalWeights(-1)).ToList();
            AttentionPlots.Bars(Path.Combine(dir, "temporal.png"), $"{att.Model}: weights over frames",
                [.. Enumerable.Range(0, temporal.Layers.Count).Select(l => $"temporal {l}"), "rollout"], rows);
            files.Add(("temporal.png", att.TemporalClassToken
                ? "The clip class token's attention over the frame features, mean over heads, per temporal layer and rolled out."
                : "How much the clip feature (the mean of the frames' class tokens) reads from each frame through temporal attention: column means of the head-mean T×T matrix, per layer and rolled out."));
        }
        WriteJson(Path.Combine(dir, "attention.json"), att, apex, clipName);
        string page = Path.Combine(dir, "attention.html");
        File.WriteAllText(page, Html(dir, att, files, classes, probs, clipName, apex));
        return page;
    }

    /// <summary>The frame of largest motion energy.</summary>
    internal static int Apex(ClipTensor motion)
    {
        int per = motion.C * motion.H * motion.W, best = 0;
        double bestEnergy = -1;
        for (int f = 0; f < motion.T; f++)
        {
            double e = 0;
            for (int i = 0; i < per; i++) e += (double)motion.Data[f * per + i] * motion.Data[f * per + i];
            if (e > bestEnergy) (best, bestEnergy) = (f, e);
        }
        return best;
    }

    static AttentionPlots.Panel Panel(ClipTensor frames, int f, double[] map, int grid)
    {
        int per = frames.C * frames.H * frames.W;
        return new AttentionPlots.Panel(frames.Data[(f * per)..((f + 1) * per)], frames.H, map, grid, Magnitude: frames.Kind == CacheInputs.Motion);
    }

    static void WriteJson(string path, ClipAttention att, int apex, string clip)
    {
        using var stream = File.Create(path);
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = false });
        w.WriteStartObject();
        w.WriteString("model", att.Model);
        w.WriteString("clip", clip);
        w.WriteNumber("frames", att.Frames);
        w.WriteNumber("grid", att.Grid);
        w.WriteNumber("layers", att.Layers);
        w.WriteNumber("heads", att.Heads);
        w.WriteNumber("apex", apex);
        w.WriteStartArray("class_rows"); // [frame][layer][head][N]: the class token's row over all N tokens (token 0 itself)
        foreach (var frame in att.Spatial)
        {
            w.WriteStartArray();
            for (int l = 0; l < frame.Layers.Count; l++)
            {
                w.WriteStartArray();
                for (int h = 0; h < frame.Heads; h++) Numbers(w, Enumerable.Range(0, frame.Tokens).Select(j => frame[l, h, 0, j]));
                w.WriteEndArray();
            }
            w.WriteEndArray();
        }
        w.WriteEndArray();
        w.WriteStartArray("rollout_rows"); // [frame][N]: row 0 of the rollout
        foreach (var frame in att.Spatial) Numbers(w, frame.Rollout()[..frame.Tokens]);
        w.WriteEndArray();
        if (att.Temporal is { } temporal)
        {
            w.WriteBoolean("temporal_class_token", att.TemporalClassToken);
            w.WriteStartArray("temporal_weights"); // [layer][T], then the rollout's
            for (int l = 0; l < temporal.Layers.Count; l++) Numbers(w, att.TemporalWeights(l));
            w.WriteEndArray();
            w.WriteStartArray("temporal_rollout");
            foreach (var x in att.TemporalWeights(-1)) w.WriteNumberValue(x);
            w.WriteEndArray();
        }
        w.WriteEndObject();
    }

    static void Numbers(Utf8JsonWriter w, IEnumerable<double> xs)
    {
        w.WriteStartArray();
        foreach (var x in xs) w.WriteNumberValue(Math.Round(x, 9));
        w.WriteEndArray();
    }

    static string Html(string dir, ClipAttention att, List<(string File, string Caption)> files, IReadOnlyList<string> classes, float[] probs,
        string clip, int apex)
    {
        string E(string s) => WebUtility.HtmlEncode(s);
        var sb = new StringBuilder();
        sb.Append("""
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Attention maps</title>
            <style>
            body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; line-height: 1.4; }
            h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
            figure { margin: 1em 0; } figcaption { color: #555; font-size: .9em; }
            table { border-collapse: collapse; font-size: .85em; } td, th { padding: .2em .6em; border: 1px solid #e4e4e4; text-align: right; }
            th { background: #fafafa; font-weight: normal; color: #666; } img { max-width: 100%; }
            </style></head><body>
            """);
        int best = Array.IndexOf(probs, probs.Max());
        sb.Append($"<h1>What {E(att.Model)} looks at in {E(clip)}</h1>");
        sb.Append($"<p>Predicted <b>{E(classes[best])}</b> (" +
                  string.Join(", ", classes.Select((c, i) => $"{E(c)} {probs[i].ToString("0.000", Inv)}")) + $"). {att.Frames} frames, " +
                  $"{att.Grid}×{att.Grid} patches + a class token, {att.Layers} layer(s) × {att.Heads} head(s).</p>");
        sb.Append("<p>Each panel lays one map over the image (a motion image drawn as its magnitude, bright where the face moves) in colour, " +
                  "scaled from the map's own minimum to its maximum and blended more strongly the more peaked the map is; the label in its corner is " +
                  "the map's peak against uniform attention (x1.0: uniform). A layer's map is the class token's attention row P[0, 1..N−1] = softmax(q₀·kⱼ/√D) over the patches; " +
                  "the rollout (Abnar and Zuidema, 2020) multiplies the layers' head-mean attention, each mixed half and half with the identity " +
                  "for the residual stream and renormalised, Â = ½·mean<sub>h</sub>P + ½·I, R = Â<sub>L</sub>⋯Â<sub>1</sub>, and draws R's class-token row. " +
                  "Every row of P and of R sums to 1 over all N tokens; the part a row keeps on the class token itself has no place on the image and is in the table below.</p>");
        foreach (var (file, caption) in files)
        {
            string data = Convert.ToBase64String(File.ReadAllBytes(Path.Combine(dir, file)));
            sb.Append($"<figure><img alt=\"{E(file)}\" src=\"data:image/png;base64,{data}\"><figcaption>{E(file)}: {E(caption)}</figcaption></figure>");
        }
        sb.Append($"<h2>The class token's share on itself, frame t{apex}</h2><table><tr><th>layer</th>");
        for (int h = 0; h < att.Heads; h++) sb.Append($"<th>head {h}</th>");
        sb.Append("</tr>");
        var frame = att.Spatial[apex];
        for (int l = 0; l < att.Layers; l++)
        {
            sb.Append($"<tr><td>{l}</td>");
            for (int h = 0; h < att.Heads; h++) sb.Append($"<td>{frame[l, h, 0, 0].ToString("0.000", Inv)}</td>");
            sb.Append("</tr>");
        }
        sb.Append($"<tr><td>rollout</td><td colspan=\"{att.Heads}\">{frame.Rollout()[0].ToString("0.000", Inv)}</td></tr></table>");
        if (att.Temporal != null)
        {
            sb.Append("<h2>Weights over frames</h2><table><tr><th></th>");
            for (int f = 0; f < att.Frames; f++) sb.Append($"<th>t{f}</th>");
            sb.Append("</tr>");
            for (int l = -1; l < att.Temporal.Layers.Count; l++)
            {
                var wts = att.TemporalWeights(l);
                sb.Append($"<tr><td>{(l < 0 ? "rollout" : $"temporal {l}")}</td>");
                foreach (var x in wts) sb.Append($"<td>{x.ToString("0.000", Inv)}</td>");
                sb.Append("</tr>");
            }
            sb.Append("</table>");
        }
        sb.Append("<p style=\"color:#777;font-size:.85em\">Written by <code>microexpr attention-map</code> (src/MicroExpr.Cli/Explain/AttentionMapReport.cs); " +
                  "the maps are recomputed from each block's own q and k (src/MicroExpr.Models/AttentionMaps.cs, ClipAttention.cs).</p></body></html>");
        return sb.ToString();
    }
}
