using System.Globalization;
using ScottPlot;
using SkiaSharp;

namespace MicroExpr.Training;

/// <summary>
/// PNG charts drawn with ScottPlot 5 (SkiaSharp, native assets without system dependencies). Every text uses
/// DejaVu Sans, embedded in this assembly and registered before the first plot: SkiaSharp's portable native
/// library finds no system font, so without it the charts would have no text at all.
/// </summary>
public static class Plots
{
    /// <summary>The family name every plot asks for; resolved to the embedded DejaVu Sans.</summary>
    public const string FontName = "DejaVu Sans";

    private const string FontResource = "MicroExpr.Training.Fonts.DejaVuSans.ttf";
    private static readonly Lock Gate = new();
    private static SKTypeface? _typeface;

    /// <summary>One line of a line chart: points (X[i], Y[i]); <see cref="Bold"/> draws it thick and opaque.</summary>
    public sealed record Line(string? Label, IReadOnlyList<double> X, IReadOnlyList<double> Y, bool Bold = false, string? Color = null);

    /// <summary>A measured kernel on a roofline chart: arithmetic intensity (FLOP per byte) and rate (GFLOP/s).</summary>
    public sealed record RooflinePoint(string Label, double Intensity, double Gflops);

    /// <summary>The embedded DejaVu Sans, registered with ScottPlot as the default font (idempotent, thread-safe).</summary>
    public static SKTypeface Typeface
    {
        get
        {
            lock (Gate)
            {
                if (_typeface != null) return _typeface;
                using var stream = typeof(Plots).Assembly.GetManifestResourceStream(FontResource)
                    ?? throw new InvalidOperationException($"embedded font '{FontResource}' is missing from {typeof(Plots).Assembly.GetName().Name}");
                var data = SKData.Create(stream);
                _typeface = SKTypeface.FromData(data) ?? throw new InvalidOperationException($"embedded font '{FontResource}' could not be read by SkiaSharp");
                Fonts.FontResolvers.Insert(0, new EmbeddedFontResolver(_typeface));
                Fonts.Default = FontName;
                Fonts.Sans = FontName;
                return _typeface;
            }
        }
    }

    private static Plot NewPlot()
    {
        _ = Typeface;
        var plot = new Plot();
        plot.Font.Set(FontName);
        return plot;
    }

    /// <summary>
    /// A line chart with axes, ticks, axis labels and a legend (for the lines that have a label).
    /// <paramref name="yMin"/> / <paramref name="yMax"/> fix the vertical range when given (e.g. 0..1 for accuracy);
    /// <paramref name="integerX"/> puts ticks on whole numbers only (epochs).
    /// </summary>
    public static void LineChart(string path, string title, string xLabel, string yLabel, IReadOnlyList<Line> lines,
        double? yMin = null, double? yMax = null, bool integerX = false, int width = 720, int height = 440) =>
        Save(path, width, height, LineChartPlot(title, xLabel, yLabel, lines, yMin, yMax, integerX));

    private static Plot LineChartPlot(string title, string xLabel, string yLabel, IReadOnlyList<Line> lines, double? yMin, double? yMax, bool integerX)
    {
        var plot = NewPlot();
        plot.Title(title, 15);
        plot.XLabel(xLabel, 13);
        plot.YLabel(yLabel, 13);
        if (integerX) plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        var palette = new ScottPlot.Palettes.Category10();
        int colorIndex = 0;
        bool anyPoint = false;
        foreach (var line in lines)
        {
            if (line.X.Count != line.Y.Count) throw new ArgumentException($"line '{line.Label}': {line.X.Count} x values but {line.Y.Count} y values");
            var points = Enumerable.Range(0, line.X.Count).Where(i => double.IsFinite(line.Y[i])).ToArray();
            if (points.Length == 0) continue;
            anyPoint = true;
            var color = line.Color is { } hex ? Color.FromHex(hex) : palette.GetColor(colorIndex++);
            var s = plot.Add.Scatter(points.Select(i => line.X[i]).ToArray(), points.Select(i => line.Y[i]).ToArray(), line.Bold ? color : color.WithAlpha(0.45));
            s.LineWidth = line.Bold ? 3 : 1;
            s.MarkerSize = line.Bold || points.Length == 1 ? 5 : 0;
            if (line.Label != null) s.LegendText = line.Label;
        }
        if (!anyPoint) plot.Add.Annotation("no data", Alignment.MiddleCenter);
        plot.Axes.AutoScale();
        if (yMin != null || yMax != null)
        {
            var limits = plot.Axes.GetLimits();
            plot.Axes.SetLimitsY(yMin ?? limits.Bottom, yMax ?? limits.Top);
        }
        if (lines.Any(l => l.Label != null)) plot.ShowLegend(Alignment.UpperRight);
        return plot;
    }

    /// <summary>
    /// Several charts side by side in one PNG, each <paramref name="width"/> / count wide; used for the loss and
    /// accuracy curves of a run.
    /// </summary>
    public static void Row(string path, int width, int height, params Plot[] plots)
    {
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul);
        using var surface = SKSurface.Create(info) ?? throw new InvalidOperationException($"SkiaSharp could not create a {width}×{height} surface");
        surface.Canvas.Clear(SKColors.White);
        int each = width / plots.Length;
        for (int i = 0; i < plots.Length; i++)
        {
            // Plot.Render clears the canvas it is given, so each plot is rendered alone and then copied in.
            using var part = SKBitmap.Decode(plots[i].GetImage(each, height).GetImageBytes(ImageFormat.Png))
                ?? throw new InvalidOperationException("SkiaSharp could not decode a rendered plot");
            surface.Canvas.DrawBitmap(part, i * each, 0);
        }
        using var image = surface.Snapshot();
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        WriteAtomic(path, png.ToArray());
    }

    /// <summary>
    /// Dynamic images in one PNG: one row per clip, the target (left) and the reconstruction (right), each [S, S] in [0, 1]
    /// drawn as grey, enlarged (nearest neighbour) to 128 px, with the clip's name above.
    /// </summary>
    public static void Reconstructions(string path, IReadOnlyList<Reconstruction> clips)
    {
        const int cell = 128, pad = 8, label = 18;
        int width = 2 * cell + 3 * pad, height = clips.Count * (cell + label + pad) + label + pad;
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul);
        using var surface = SKSurface.Create(info) ?? throw new InvalidOperationException($"SkiaSharp could not create a {width}×{height} surface");
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        using var font = new SKFont(Typeface, 12);
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        canvas.DrawText("target", pad, label - 4, font, ink);
        canvas.DrawText("reconstruction", 2 * pad + cell, label - 4, font, ink);
        for (int r = 0; r < clips.Count; r++)
        {
            var c = clips[r];
            int top = label + pad + r * (cell + label + pad);
            canvas.DrawText(c.Clip, pad, top + 12, font, ink);
            for (int k = 0; k < 2; k++)
            {
                var img = k == 0 ? c.Target : c.Predicted;
                using var bmp = new SKBitmap(c.Size, c.Size, SKColorType.Gray8, SKAlphaType.Opaque);
                for (int y = 0; y < c.Size; y++)
                    for (int x = 0; x < c.Size; x++)
                    {
                        byte v = (byte)Math.Clamp((int)Math.Round(img[y * c.Size + x] * 255), 0, 255);
                        bmp.SetPixel(x, y, new SKColor(v, v, v));
                    }
                using var image = SKImage.FromBitmap(bmp);
                canvas.DrawImage(image, SKRect.Create(pad + k * (cell + pad), top + label, cell, cell), new SKSamplingOptions(SKFilterMode.Nearest));
            }
        }
        using var snap = surface.Snapshot();
        using var png = snap.Encode(SKEncodedImageFormat.Png, 100);
        WriteAtomic(path, png.ToArray());
    }

    /// <summary>
    /// Training curves of a run in one PNG: loss per epoch (left) and accuracy per epoch (right); thin lines are
    /// folds, the bold line their mean. Accuracy lines are optional (an empty list draws loss only).
    /// </summary>
    public static void Curves(string path, IReadOnlyList<Line> loss, IReadOnlyList<Line> accuracy, string lossTitle, string accuracyTitle)
    {
        var left = LineChartPlot(lossTitle, "epoch", "cross-entropy loss", loss, 0, null, integerX: true);
        if (accuracy.Count == 0)
        {
            Save(path, 720, 440, left);
            return;
        }
        var right = LineChartPlot(accuracyTitle, "epoch", "accuracy", accuracy, 0, 1.02, integerX: true);
        Row(path, 1400, 460, left, right);
    }

    /// <summary>
    /// A heat map of counts [R, C] (row r at the top, as in a table) with the count written in every cell, row names
    /// on the left axis and column names on the bottom axis. Shading is by <paramref name="shade"/> [R, C] in [0, 1]
    /// (e.g. row-normalised counts), or by count / max count when null.
    /// </summary>
    public static void Heatmap(string path, string title, int[,] counts, IReadOnlyList<string> rowNames, IReadOnlyList<string> columnNames,
        string rowAxis, string columnAxis, double[,]? shade = null)
    {
        int rows = counts.GetLength(0), cols = counts.GetLength(1);
        if (rowNames.Count != rows || columnNames.Count != cols)
            throw new ArgumentException($"heat map of [{rows}, {cols}] counts has {rowNames.Count} row names and {columnNames.Count} column names");
        if (shade is null)
        {
            double max = Math.Max(1, counts.Cast<int>().DefaultIfEmpty(0).Max());
            shade = new double[rows, cols];
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++) shade[r, c] = counts[r, c] / max;
        }
        var plot = NewPlot();
        plot.Title(title, 15);
        // One filled square per cell, row r centred at y = R-1-r so that row 0 is at the top; shade 0 is white, 1 dark blue.
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                double v = Math.Clamp(double.IsFinite(shade[r, c]) ? shade[r, c] : 0, 0, 1);
                var cellRect = plot.Add.Rectangle(c - 0.5, c + 0.5, rows - 1 - r - 0.5, rows - 1 - r + 0.5);
                cellRect.FillColor = Shade(v);
                cellRect.LineColor = Colors.Gray;
                cellRect.LineWidth = 1;
                var t = plot.Add.Text(counts[r, c].ToString(CultureInfo.InvariantCulture), c, rows - 1 - r);
                t.LabelFontSize = 18;
                t.LabelBold = true;
                t.Alignment = Alignment.MiddleCenter;
                t.LabelFontColor = v > 0.55 ? Colors.White : Colors.Black;
            }
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, cols).Select(c => (double)c).ToArray(), columnNames.ToArray());
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, rows).Select(r => (double)(rows - 1 - r)).ToArray(), rowNames.ToArray());
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        plot.Axes.Left.MajorTickStyle.Length = 0;
        plot.Axes.Bottom.TickLabelStyle.FontSize = 13;
        plot.Axes.Left.TickLabelStyle.FontSize = 13;
        plot.XLabel(columnAxis, 13);
        plot.YLabel(rowAxis, 13);
        plot.Grid.IsVisible = false;
        plot.Axes.SetLimits(-0.5, cols - 0.5, -0.5, rows - 0.5);
        int cell = 90;
        Save(path, 200 + cols * cell, 150 + rows * cell, plot);
    }

    /// <summary>
    /// A roofline chart on log-log axes: attainable GFLOP/s = min(<paramref name="peakGflops"/>,
    /// <paramref name="bandwidthGBs"/> · I) over arithmetic intensity I (FLOP/byte), with each measured kernel as a
    /// labelled point. The intensity range spans the points and the ridge point I* = peak / bandwidth.
    /// </summary>
    public static void Roofline(string path, string title, double peakGflops, double bandwidthGBs, IReadOnlyList<RooflinePoint> points)
    {
        if (!(peakGflops > 0) || !(bandwidthGBs > 0)) throw new ArgumentException($"roofline needs a positive peak ({peakGflops}) and bandwidth ({bandwidthGBs})");
        foreach (var p in points)
            if (!(p.Intensity > 0) || !(p.Gflops > 0)) throw new ArgumentException($"roofline point '{p.Label}': intensity {p.Intensity} and GFLOP/s {p.Gflops} must be positive");
        var plot = NewPlot();
        plot.Title(title, 15);
        plot.XLabel("arithmetic intensity (FLOP / byte)", 13);
        plot.YLabel("GFLOP/s", 13);
        double ridge = peakGflops / bandwidthGBs;
        double lo = Math.Min(ridge / 8, points.Select(p => p.Intensity).DefaultIfEmpty(ridge).Min() / 2);
        double hi = Math.Max(ridge * 8, points.Select(p => p.Intensity).DefaultIfEmpty(ridge).Max() * 2);
        double[] xs = [Math.Log10(lo), Math.Log10(ridge), Math.Log10(hi)];
        double[] ys = [Math.Log10(bandwidthGBs * lo), Math.Log10(peakGflops), Math.Log10(peakGflops)];
        var roof = plot.Add.Scatter(xs, ys, Colors.Black);
        roof.LineWidth = 2;
        roof.MarkerSize = 0;
        roof.LegendText = $"roof: {bandwidthGBs.ToString("G3", CultureInfo.InvariantCulture)} GB/s, {peakGflops.ToString("G3", CultureInfo.InvariantCulture)} GFLOP/s";
        var palette = new ScottPlot.Palettes.Category10();
        for (int i = 0; i < points.Count; i++)
        {
            var p = points[i];
            var m = plot.Add.Marker(Math.Log10(p.Intensity), Math.Log10(p.Gflops), MarkerShape.FilledCircle, 9, palette.GetColor(i));
            m.LegendText = $"{p.Label}: {p.Gflops.ToString("G3", CultureInfo.InvariantCulture)} GFLOP/s";
        }
        static string Pow10(double v) => Math.Pow(10, v).ToString("G3", CultureInfo.InvariantCulture);
        static ScottPlot.TickGenerators.NumericAutomatic LogTicks() => new()
        {
            MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(), IntegerTicksOnly = true, LabelFormatter = Pow10,
        };
        plot.Axes.Bottom.TickGenerator = LogTicks();
        plot.Axes.Left.TickGenerator = LogTicks();
        plot.ShowLegend(Alignment.UpperLeft); // the roof rises from the lower left: the upper left is always empty
        Save(path, 760, 480, plot);
    }

    /// <summary>White (v = 0) to dark blue (v = 1), linear in RGB.</summary>
    private static Color Shade(double v)
    {
        static byte Mix(int a, int b, double t) => (byte)Math.Round(a + (b - a) * t);
        return new Color(Mix(247, 8, v), Mix(251, 48, v), Mix(255, 107, v));
    }

    private static void Save(string path, int width, int height, Plot plot)
    {
        var image = plot.GetImage(width, height);
        WriteAtomic(path, image.GetImageBytes(ImageFormat.Png));
    }

    internal static void WriteAtomic(string path, byte[] bytes)
    {
        // A name of its own per writer: folds run as separate processes (--fold K, e.g. a Slurm array) write the
        // run's options.json and report files concurrently; each rename is atomic and the last one wins.
        string tmp = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        File.WriteAllBytes(tmp, bytes);
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>Answers every family ScottPlot asks for with the embedded typeface (it is the only font we ship).</summary>
    private sealed class EmbeddedFontResolver(SKTypeface typeface) : IFontResolver
    {
        public SKTypeface? CreateTypeface(string fontName, bool bold, bool italic) => typeface;

        public SKTypeface? CreateTypeface(string fontName, FontWeight weight, FontSlant slant, FontSpacing spacing) => typeface;
    }
}
