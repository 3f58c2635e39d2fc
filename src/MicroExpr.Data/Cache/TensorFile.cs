using System.Buffers.Binary;
using System.Globalization;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;
using MicroExpr.IO;

namespace MicroExpr.Data.Cache;

/// <summary>What a tensor file's header holds: the shape [T, C, H, W] and the checksum of its data.</summary>
public readonly record struct TensorFileInfo(int T, int C, int H, int W, ulong Checksum)
{
    /// <summary>The checksum as the index stores it: "xxh3:" and 16 hex digits.</summary>
    public string ChecksumText => TensorFile.FormatChecksum(Checksum);
}

/// <summary>
/// One clip's tensor on disk: 8 bytes "MXCLIP02", int32 T, C, H, W, uint64 XXH3-64 of the data bytes (all
/// little-endian), then T·C·H·W float32 in [T, C, H, W] order. Written to a temporary file in the same folder and
/// renamed (<see cref="AtomicFile"/>), so a file under its final name is complete; the checksum catches a file changed
/// or damaged afterwards. Files of the first format ("MXCLIP01", no checksum) read as not complete: a rerun of
/// preprocess recomputes them.
/// </summary>
public static class TensorFile
{
    static readonly byte[] Magic = Encoding.ASCII.GetBytes("MXCLIP02");
    public const int HeaderBytes = 32;
    public const string TempSuffix = AtomicFile.TempSuffix;

    /// <summary>"xxh3:0123456789abcdef".</summary>
    public static string FormatChecksum(ulong checksum) => "xxh3:" + checksum.ToString("x16", CultureInfo.InvariantCulture);

    /// <summary>XXH3-64 of the values' bytes (little-endian float32), seed 0.</summary>
    public static ulong Checksum(ReadOnlySpan<float> data) => XxHash3.HashToUInt64(MemoryMarshal.AsBytes(data));

    /// <summary>Writes the tensor atomically and returns its header (shape and checksum).</summary>
    public static TensorFileInfo Write(string path, ReadOnlySpan<float> data, int t, int c, int h, int w)
    {
        if ((long)t * c * h * w != data.Length) throw new ArgumentException($"tensor of {data.Length} values is not [{t}, {c}, {h}, {w}]");
        ulong sum = Checksum(data);
        Span<byte> header = stackalloc byte[HeaderBytes];
        Magic.CopyTo(header);
        BinaryPrimitives.WriteInt32LittleEndian(header[8..], t);
        BinaryPrimitives.WriteInt32LittleEndian(header[12..], c);
        BinaryPrimitives.WriteInt32LittleEndian(header[16..], h);
        BinaryPrimitives.WriteInt32LittleEndian(header[20..], w);
        BinaryPrimitives.WriteUInt64LittleEndian(header[24..], sum);
        using var file = AtomicFile.Create(path);
        file.Stream.Write(header);
        file.Stream.Write(MemoryMarshal.AsBytes(data));
        file.Commit();
        return new TensorFileInfo(t, c, h, w, sum);
    }

    /// <summary>
    /// The header of a file, or null when the file is missing, short, of another format, or its length does not
    /// match the shape. Reads only the header: <see cref="Verify"/> also checks the data.
    /// </summary>
    public static TensorFileInfo? Header(string path)
    {
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            return Header(fs);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    static TensorFileInfo? Header(FileStream fs)
    {
        Span<byte> header = stackalloc byte[HeaderBytes];
        if (fs.Read(header) != HeaderBytes || !header[..8].SequenceEqual(Magic)) return null;
        int t = BinaryPrimitives.ReadInt32LittleEndian(header[8..]), c = BinaryPrimitives.ReadInt32LittleEndian(header[12..]),
            h = BinaryPrimitives.ReadInt32LittleEndian(header[16..]), w = BinaryPrimitives.ReadInt32LittleEndian(header[20..]);
        if (t < 1 || c < 1 || h < 1 || w < 1) return null;
        long count = (long)t * c * h * w;
        if (count > Array.MaxLength || fs.Length != HeaderBytes + 4 * count) return null;
        return new TensorFileInfo(t, c, h, w, BinaryPrimitives.ReadUInt64LittleEndian(header[24..]));
    }

    /// <summary>The header when the file is complete and its data matches its checksum; null otherwise (a rerun recomputes it).</summary>
    public static TensorFileInfo? Verify(string path)
    {
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            if (Header(fs) is not { } info) return null;
            var hash = new XxHash3();
            var buffer = new byte[1 << 16];
            int n;
            while ((n = fs.Read(buffer)) > 0) hash.Append(buffer.AsSpan(0, n));
            return hash.GetCurrentHashAsUInt64() == info.Checksum ? info : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// Reads a tensor file. Throws <see cref="InvalidDataException"/> naming the file when it is not one, when its data
    /// does not match its checksum, or when a value is not finite (NaN, ±∞: no model can learn from it).
    /// </summary>
    public static float[] Read(string path, out TensorFileInfo info)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: cached tensor not found (was the cache folder changed? rerun preprocess)", path);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        info = Header(fs) ?? throw new InvalidDataException($"{path}: not a complete MicroExpr tensor file (bad header or length); rerun preprocess to rebuild it");
        var data = new float[(long)info.T * info.C * info.H * info.W];
        fs.ReadExactly(MemoryMarshal.AsBytes(data.AsSpan()));
        if (Checksum(data) != info.Checksum)
            throw new InvalidDataException($"{path}: checksum mismatch (the file was changed or damaged after preprocessing); rerun preprocess, which recomputes it");
        int bad = IndexOfNonFinite(data);
        if (bad >= 0)
        {
            int plane = info.H * info.W, frame = info.C * plane;
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                $"{path}: value {data[bad]} at [t {bad / frame}, c {bad % frame / plane}, y {bad % plane / info.W}, x {bad % info.W}] is not finite; the clip cannot be trained on (check its source and rerun preprocess)"));
        }
        return data;
    }

    /// <summary>Reads a tensor file (see <see cref="Read(string, out TensorFileInfo)"/>).</summary>
    public static float[] Read(string path, out int t, out int c, out int h, out int w)
    {
        var data = Read(path, out TensorFileInfo info);
        (t, c, h, w) = (info.T, info.C, info.H, info.W);
        return data;
    }

    /// <summary>The index of the first NaN or infinity, or -1.</summary>
    public static int IndexOfNonFinite(ReadOnlySpan<float> data)
    {
        for (int i = 0; i < data.Length; i++)
            if (!float.IsFinite(data[i])) return i;
        return -1;
    }
}
