using MicroExpr.Data.Xlsx;
using OpenCvSharp;

namespace MicroExpr.Tests.Data;

/// <summary>Fixtures the data tests make themselves: temp folders, textured frames written by OpenCV, tiny xlsx files.</summary>
internal static class DataFixtures
{
    public static string TempDir(string name) => Directory.CreateTempSubdirectory("mx-" + name + "-").FullName;

    /// <summary>A smooth random texture (8-bit gray, values spread over 0..255): blurred uniform noise, min–max stretched.</summary>
    public static Mat Texture(int h, int w, int seed, double blur = 2.0)
    {
        var m = new Mat(h, w, MatType.CV_8UC1);
        var bytes = new byte[h * w];
        new Random(seed).NextBytes(bytes);
        System.Runtime.InteropServices.Marshal.Copy(bytes, 0, m.Data, bytes.Length);
        Cv2.GaussianBlur(m, m, new Size(0, 0), blur);
        Cv2.Normalize(m, m, 0, 255, NormTypes.MinMax);
        return m;
    }

    /// <summary><paramref name="src"/> moved by (dx, dy) pixels: bilinear warpAffine, reflected border.</summary>
    public static Mat Shift(Mat src, double dx, double dy)
    {
        using var m = new Mat(2, 3, MatType.CV_64FC1);
        m.Set(0, 0, 1.0); m.Set(0, 1, 0.0); m.Set(0, 2, dx);
        m.Set(1, 0, 0.0); m.Set(1, 1, 1.0); m.Set(1, 2, dy);
        var dst = new Mat();
        Cv2.WarpAffine(src, dst, m, src.Size(), InterpolationFlags.Linear, BorderTypes.Reflect);
        return dst;
    }

    /// <summary>
    /// Writes frames numbered <paramref name="first"/>.. into <paramref name="dir"/> as <c>{prefix}{number}{ext}</c>: a
    /// texture moving right by 0.15 px per frame up to the middle, then back (a small "expression" with an apex).
    /// </summary>
    public static void WriteClip(string dir, int count, int first = 1, string prefix = "img", string ext = ".png", int size = 48, int seed = 1, string numberFormat = "0")
    {
        Directory.CreateDirectory(dir);
        using var tex = Texture(size, size, seed);
        for (int i = 0; i < count; i++)
        {
            double d = 0.15 * Math.Min(i, count - 1 - i);
            using var f = Shift(tex, d, 0);
            using var bgr = new Mat();
            Cv2.CvtColor(f, bgr, ColorConversionCodes.GRAY2BGR);
            Cv2.ImWrite(Path.Combine(dir, prefix + (first + i).ToString(numberFormat, System.Globalization.CultureInfo.InvariantCulture) + ext), bgr);
        }
    }

    public static void Xlsx(string path, params string[][] rows) => XlsxWriter.Write(path, "Sheet1", rows);
}
