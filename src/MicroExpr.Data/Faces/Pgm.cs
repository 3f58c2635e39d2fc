using System.Globalization;
using System.Text;

namespace MicroExpr.Data.Faces;

/// <summary>Binary PGM (P5, maxval 255): the exchange format of 8-bit grey images with tools/dlib-landmarks-ref.</summary>
public static class Pgm
{
    /// <summary>Writes W×H bytes (row-major) as a P5 file.</summary>
    public static void Write(string path, ReadOnlySpan<byte> grey, int width, int height)
    {
        if (grey.Length < width * height) throw new ArgumentException($"a {width}x{height} image needs {width * height} bytes, got {grey.Length}");
        using var f = File.Create(path);
        f.Write(Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"P5\n{width} {height}\n255\n")));
        f.Write(grey[..(width * height)]);
    }

    /// <summary>Reads a P5 file (comments allowed in the header); errors name the file and what was wrong.</summary>
    public static (byte[] Pixels, int Width, int Height) Read(string path)
    {
        var b = File.ReadAllBytes(path);
        int pos = 0;
        string Token(string what)
        {
            var sb = new StringBuilder();
            while (pos < b.Length)
            {
                char c = (char)b[pos++];
                if (c == '#') { while (pos < b.Length && b[pos] != '\n') pos++; continue; }
                if (char.IsWhiteSpace(c)) { if (sb.Length > 0) break; continue; }
                sb.Append(c);
            }
            if (sb.Length == 0) throw new InvalidDataException($"{path}: not a binary PGM (no {what} in the header)");
            return sb.ToString();
        }
        int Number(string what) => int.TryParse(Token(what), NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v > 0
            ? v : throw new InvalidDataException($"{path}: not a binary PGM ({what} is not a positive integer)");
        if (Token("magic number") != "P5") throw new InvalidDataException($"{path}: not a binary PGM (expected magic number P5)");
        int w = Number("width"), h = Number("height"), max = Number("maxval");
        if (max != 255) throw new InvalidDataException($"{path}: maxval {max}, only 8-bit PGM (255) is read");
        if (b.Length - pos < (long)w * h) throw new InvalidDataException($"{path}: truncated, {b.Length - pos} pixel bytes for {w}x{h}");
        return (b.AsSpan(pos, w * h).ToArray(), w, h);
    }
}
