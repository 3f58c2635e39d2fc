using System.Runtime.InteropServices;
using System.Text;
using MicroExpr.IO;

namespace MicroExpr.Data.Cache;

/// <summary>
/// One clip's tensor on disk: 8 bytes "MXCLIP01", int32 T, C, H, W (little-endian), then T·C·H·W float32 in [T, C, H, W]
/// order. Written to a temporary file in the same folder and renamed, so a file under its final name is always complete.
/// </summary>
public static class TensorFile
{
    static readonly byte[] Magic = Encoding.ASCII.GetBytes("MXCLIP01");
    public const int HeaderBytes = 24;
    public const string TempSuffix = AtomicFile.TempSuffix;

    public static void Write(string path, ReadOnlySpan<float> data, int t, int c, int h, int w)
    {
        if ((long)t * c * h * w != data.Length) throw new ArgumentException($"tensor of {data.Length} values is not [{t}, {c}, {h}, {w}]");
        Span<byte> header = stackalloc byte[HeaderBytes];
        Magic.CopyTo(header);
        BitConverter.TryWriteBytes(header[8..], t);
        BitConverter.TryWriteBytes(header[12..], c);
        BitConverter.TryWriteBytes(header[16..], h);
        BitConverter.TryWriteBytes(header[20..], w);
        using var file = AtomicFile.Create(path);
        file.Stream.Write(header);
        file.Stream.Write(MemoryMarshal.AsBytes(data));
        file.Commit();
    }

    /// <summary>The shape stored in a file's header, or null when the file is missing, short or not a tensor file.</summary>
    public static (int T, int C, int H, int W)? Shape(string path)
    {
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            Span<byte> header = stackalloc byte[HeaderBytes];
            if (fs.Read(header) != HeaderBytes || !header[..8].SequenceEqual(Magic)) return null;
            int t = BitConverter.ToInt32(header[8..]), c = BitConverter.ToInt32(header[12..]), h = BitConverter.ToInt32(header[16..]), w = BitConverter.ToInt32(header[20..]);
            if (t < 1 || c < 1 || h < 1 || w < 1 || fs.Length != HeaderBytes + 4L * t * c * h * w) return null;
            return (t, c, h, w);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Reads a tensor file; throws <see cref="InvalidDataException"/> naming the file when it is not one.</summary>
    public static float[] Read(string path, out int t, out int c, out int h, out int w)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: cached tensor not found (was the cache folder changed? rerun preprocess)", path);
        var shape = Shape(path) ?? throw new InvalidDataException($"{path}: not a complete MicroExpr tensor file (bad header or length); rerun preprocess to rebuild it");
        (t, c, h, w) = shape;
        var data = new float[t * c * h * w];
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        fs.Seek(HeaderBytes, SeekOrigin.Begin);
        fs.ReadExactly(MemoryMarshal.AsBytes(data.AsSpan()));
        return data;
    }
}
