using SkiaSharp;

namespace MicroExpr.Training;

/// <summary>
/// Attention drawn over images (<c>microexpr attention-map</c>): grids of panels, each an image [3, S, S] in grey with a
/// map over its G × G patch grid laid on top in colour, and bar strips of weights over frames. SkiaSharp, as
/// <see cref="Plots"/>, with its embedded font.
/// <para>Choices: the background is drawn in grey so the colour is the map's alone (a motion image as its magnitude
/// √Σ_c x_c², so moving regions are bright; an RGB image as its channel mean). Each map is scaled from its own minimum to
/// its own maximum, v = (p − min)/(max − min), bilinearly upsampled from the patch grid, and blended with alpha
/// 0.7·v·(max − min)/max: a peaked map is drawn strongly where it peaks, a nearly uniform one (an untrained model, a
/// layer that spreads its attention) barely tints the image instead of having its noise stretched to full colour. Each
/// panel is labelled with its peak against uniform attention, max·(G²): "x1.0" is uniform. Rejected: one colour scale for
/// all panels, under which the deeper layers' flatter maps vanish next to the first layer's peaks; and max-only scaling,
/// which paints a uniform map solid.</para>
/// </summary>
public static class AttentionPlots
{
    /// <summary>
    /// One panel: an image [C, S, S] (any range: stretched for display; <paramref name="Magnitude"/>: a motion image, drawn as
    /// √Σ_c x_c²) and, optionally, a map over a Grid × Grid patch grid.
    /// </summary>
    public sealed record Panel(float[] Image, int Size, double[]? Map, int Grid, bool Magnitude = false);

    /// <summary>Side of one panel in pixels.</summary>
    public const int Cell = 112;

    /// <summary>A grid of panels with row labels on the left and column labels on top.</summary>
    public static void Grid(string path, string title, IReadOnlyList<string> rowLabels, IReadOnlyList<string> columnLabels, Panel?[,] panels)
    {
        const int pad = 6, top = 44, left = 96;
        int rows = panels.GetLength(0), cols = panels.GetLength(1);
        int width = left + cols * (Cell + pad) + pad, height = top + rows * (Cell + pad) + pad;
        using var surface = SKSurface.Create(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul))
            ?? throw new InvalidOperationException($"SkiaSharp could not create a {width}×{height} surface");
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        using var font = new SKFont(Plots.Typeface, 12);
        using var titleFont = new SKFont(Plots.Typeface, 14);
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        canvas.DrawText(title, pad, 18, titleFont, ink);
        for (int c = 0; c < cols && c < columnLabels.Count; c++) canvas.DrawText(columnLabels[c], left + c * (Cell + pad), top - 8, font, ink);
        for (int r = 0; r < rows; r++)
        {
            int y = top + r * (Cell + pad);
            if (r < rowLabels.Count) canvas.DrawText(rowLabels[r], pad, y + Cell / 2 + 4, font, ink);
            for (int c = 0; c < cols; c++)
                if (panels[r, c] is { } p) DrawPanel(canvas, p, left + c * (Cell + pad), y);
        }
        Save(surface, path);
    }

    /// <summary>
    /// Bars of weights over frames: one strip per row (a layer, or the rollout), one bar per frame, heights on one scale
    /// (0 to the largest weight drawn), each bar's value above it.
    /// </summary>
    public static void Bars(string path, string title, IReadOnlyList<string> rowLabels, IReadOnlyList<double[]> weights)
    {
        const int pad = 8, top = 30, left = 110, strip = 90, barWidth = 34;
        int frames = weights.Max(w => w.Length);
        int width = left + frames * (barWidth + 6) + pad, height = top + weights.Count * (strip + 22) + 16;
        using var surface = SKSurface.Create(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul))
            ?? throw new InvalidOperationException($"SkiaSharp could not create a {width}×{height} surface");
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        using var font = new SKFont(Plots.Typeface, 11);
        using var titleFont = new SKFont(Plots.Typeface, 14);
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        using var bar = new SKPaint { Color = new SKColor(0x31, 0x68, 0xAE), IsAntialias = true };
        canvas.DrawText(title, pad, 18, titleFont, ink);
        double max = Math.Max(1e-12, weights.SelectMany(w => w).Max());
        for (int r = 0; r < weights.Count; r++)
        {
            int baseY = top + r * (strip + 22) + strip;
            canvas.DrawText(rowLabels[r], pad, baseY - strip / 2, font, ink);
            canvas.DrawLine(left - 2, baseY, left + frames * (barWidth + 6), baseY, ink);
            for (int t = 0; t < weights[r].Length; t++)
            {
                double w = weights[r][t];
                float h = (float)(w / max * (strip - 14));
                float x = left + t * (barWidth + 6);
                canvas.DrawRect(x, baseY - h, barWidth, h, bar);
                canvas.DrawText(w.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture), x, baseY - h - 2, font, ink);
                canvas.DrawText($"t{t}", x + 8, baseY + 13, font, ink);
            }
        }
        Save(surface, path);
    }

    private static void DrawPanel(SKCanvas canvas, Panel p, int x0, int y0)
    {
        int s = p.Size;
        var grey = Grey(p.Image, s, p.Magnitude);
        double mapMax = p.Map is { } m ? Math.Max(1e-12, m.Max()) : 1, mapMin = p.Map?.Min() ?? 0;
        double range = Math.Max(1e-12, mapMax - mapMin), contrast = Math.Clamp((mapMax - mapMin) / mapMax, 0, 1);
        using var bmp = new SKBitmap(Cell, Cell, SKColorType.Rgba8888, SKAlphaType.Premul);
        for (int y = 0; y < Cell; y++)
            for (int x = 0; x < Cell; x++)
            {
                // Nearest image pixel; bilinear map value at the pixel centre, in patch units.
                double g = grey[Math.Min(s - 1, y * s / Cell) * s + Math.Min(s - 1, x * s / Cell)];
                double r = g, gr = g, b = g;
                if (p.Map is { } map)
                {
                    double v = (Bilinear(map, p.Grid, (x + 0.5) * p.Grid / Cell - 0.5, (y + 0.5) * p.Grid / Cell - 0.5) - mapMin) / range;
                    var (cr, cg, cb) = Colour(v);
                    double a = 0.7 * v * contrast;
                    r = (1 - a) * g + a * cr;
                    gr = (1 - a) * g + a * cg;
                    b = (1 - a) * g + a * cb;
                }
                bmp.SetPixel(x, y, new SKColor(Byte(r), Byte(gr), Byte(b)));
            }
        using var image = SKImage.FromBitmap(bmp);
        canvas.DrawImage(image, x0, y0);
        if (p.Map is { } pm)
        {
            // The peak against uniform attention over the patches (the map's values sum to at most 1).
            string label = "x" + (pm.Max() * pm.Length / Math.Max(1e-12, pm.Sum())).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture);
            using var font = new SKFont(Plots.Typeface, 10);
            using var back = new SKPaint { Color = new SKColor(255, 255, 255, 200) };
            using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
            canvas.DrawRect(x0, y0 + Cell - 13, 34, 13, back);
            canvas.DrawText(label, x0 + 2, y0 + Cell - 3, font, ink);
        }
    }

    /// <summary>The image [C, S, S] as grey in [0, 1]: channel mean (or magnitude), percentile-stretched (a flat image is mid-grey).</summary>
    private static double[] Grey(float[] img, int s, bool magnitude)
    {
        int n = s * s, channels = img.Length / n;
        var g = new double[n];
        for (int i = 0; i < n; i++)
        {
            double acc = 0;
            for (int c = 0; c < channels; c++) acc += magnitude ? (double)img[c * n + i] * img[c * n + i] : img[c * n + i];
            g[i] = magnitude ? Math.Sqrt(acc) : acc / channels;
        }
        // Stretched between the 1st and 99th percentiles: one outlying pixel (flow noise) would otherwise leave the rest black.
        var sorted = g.Order().ToArray();
        double lo = sorted[(int)(0.01 * (n - 1))], hi = sorted[(int)Math.Ceiling(0.99 * (n - 1))];
        for (int i = 0; i < n; i++) g[i] = hi > lo ? Math.Clamp((g[i] - lo) / (hi - lo), 0, 1) : 0.5;
        return g;
    }

    private static double Bilinear(double[] map, int grid, double gx, double gy)
    {
        gx = Math.Clamp(gx, 0, grid - 1);
        gy = Math.Clamp(gy, 0, grid - 1);
        int x0 = (int)gx, y0 = (int)gy, x1 = Math.Min(grid - 1, x0 + 1), y1 = Math.Min(grid - 1, y0 + 1);
        double fx = gx - x0, fy = gy - y0;
        return (1 - fy) * ((1 - fx) * map[y0 * grid + x0] + fx * map[y0 * grid + x1]) + fy * ((1 - fx) * map[y1 * grid + x0] + fx * map[y1 * grid + x1]);
    }

    /// <summary>An "inferno"-like ramp: black-violet → red → yellow, v in [0, 1].</summary>
    private static (double R, double G, double B) Colour(double v)
    {
        (double, double, double)[] stops = [(0.0, 0.0, 0.02), (0.34, 0.06, 0.43), (0.73, 0.21, 0.33), (0.98, 0.55, 0.04), (0.99, 1.0, 0.64)];
        v = Math.Clamp(v, 0, 1) * (stops.Length - 1);
        int i = Math.Min(stops.Length - 2, (int)v);
        double f = v - i;
        var (a0, a1, a2) = stops[i];
        var (b0, b1, b2) = stops[i + 1];
        return (a0 + f * (b0 - a0), a1 + f * (b1 - a1), a2 + f * (b2 - a2));
    }

    private static byte Byte(double v) => (byte)Math.Clamp((int)Math.Round(v * 255), 0, 255);

    private static void Save(SKSurface surface, string path)
    {
        using var snap = surface.Snapshot();
        using var png = snap.Encode(SKEncodedImageFormat.Png, 100);
        Plots.WriteAtomic(path, png.ToArray());
    }
}
