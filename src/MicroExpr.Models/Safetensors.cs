using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace MicroExpr.Models;

/// <summary>
/// One named array of a safetensors file: float32 values in <see cref="Data"/> (F32, F16, BF16 are read as float32), or,
/// for an integer array (<see cref="Dtype"/> I32 or I64), the values in <see cref="Integers"/> and an empty Data.
/// </summary>
public sealed record NamedArray(string Name, int[] Shape, float[] Data)
{
    /// <summary>"F32" (float data), "I32" or "I64" (integer data).</summary>
    public string Dtype { get; init; } = "F32";

    /// <summary>The values of an I32 or I64 array (null for float arrays).</summary>
    public long[]? Integers { get; init; }

    public static NamedArray Int32(string name, int[] shape, ReadOnlySpan<int> values)
    {
        var v = new long[values.Length];
        for (int i = 0; i < v.Length; i++) v[i] = values[i];
        return new NamedArray(name, shape, []) { Dtype = "I32", Integers = v };
    }

    public static NamedArray Int64(string name, int[] shape, long[] values) => new(name, shape, []) { Dtype = "I64", Integers = values };
}

/// <summary>
/// The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON header
/// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}, then the raw
/// little-endian data. Reads F32, F16 and BF16 (converted to float32) and I32, I64 (integers); writes F32, I32 and I64.
/// Writes are atomic
/// (temporary file, then rename).
/// </summary>
public static class Safetensors
{
    public static void Write(string path, IEnumerable<NamedArray> arrays, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = arrays.ToList();
        var header = new Dictionary<string, object>();
        if (metadata is { Count: > 0 }) header["__metadata__"] = metadata;
        long offset = 0;
        foreach (var a in list)
        {
            long bytes = a.Dtype switch
            {
                "F32" => 4L * a.Data.Length,
                "I32" => 4L * a.Integers!.Length,
                "I64" => 8L * a.Integers!.Length,
                _ => throw new ArgumentException($"{path}: array '{a.Name}' has dtype {a.Dtype}; writable: F32, I32, I64"),
            };
            header[a.Name] = new Dictionary<string, object> { ["dtype"] = a.Dtype, ["shape"] = a.Shape, ["data_offsets"] = new[] { offset, offset + bytes } };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        int pad = (8 - json.Length % 8) % 8; // keep the data 8-byte aligned, as the reference writer does
        var headerBytes = new byte[json.Length + pad];
        json.CopyTo(headerBytes, 0);
        for (int i = json.Length; i < headerBytes.Length; i++) headerBytes[i] = (byte)' ';

        string tmp = path + ".tmp";
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)headerBytes.Length);
            fs.Write(len);
            fs.Write(headerBytes);
            foreach (var a in list)
            {
                if (a.Dtype == "F32") fs.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.Data.AsSpan()));
                else if (a.Dtype == "I64") fs.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.Integers!.AsSpan()));
                else
                {
                    var i32 = new byte[4 * a.Integers!.Length];
                    for (int i = 0; i < a.Integers.Length; i++) BinaryPrimitives.WriteInt32LittleEndian(i32.AsSpan(4 * i), checked((int)a.Integers[i]));
                    fs.Write(i32);
                }
            }
            fs.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
    }

    public static (List<NamedArray> Arrays, Dictionary<string, string> Metadata) Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        using var fs = File.OpenRead(path);
        Span<byte> len = stackalloc byte[8];
        if (fs.Read(len) != 8) throw new InvalidDataException($"{path}: too short for a safetensors file");
        ulong headerLen = BinaryPrimitives.ReadUInt64LittleEndian(len);
        if (headerLen > 100_000_000 || (long)headerLen > fs.Length - 8) throw new InvalidDataException($"{path}: not a safetensors file (header length {headerLen})");
        var headerBytes = new byte[headerLen];
        fs.ReadExactly(headerBytes);
        long dataStart = 8 + (long)headerLen;
        var metadata = new Dictionary<string, string>();
        var arrays = new List<NamedArray>();
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(headerBytes);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: the safetensors header is not valid JSON: {e.Message}", e);
        }
        using (doc)
        {
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__")
                {
                    foreach (var m in prop.Value.EnumerateObject()) metadata[m.Name] = m.Value.GetString() ?? "";
                    continue;
                }
                string dtype = prop.Value.GetProperty("dtype").GetString() ?? "";
                var shape = prop.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
                var offs = prop.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                long n = shape.Aggregate(1L, (a, b) => a * b);
                int elem = dtype switch
                {
                    "F32" or "I32" => 4,
                    "I64" => 8,
                    "F16" or "BF16" => 2,
                    _ => throw new InvalidDataException($"{path}: tensor '{prop.Name}' has dtype {dtype}; supported: F32, F16, BF16, I32, I64"),
                };
                if (offs.Length != 2 || offs[1] - offs[0] != n * elem || dataStart + offs[1] > fs.Length)
                    throw new InvalidDataException($"{path}: tensor '{prop.Name}' has data offsets [{string.Join(", ", offs)}] that do not fit shape [{string.Join(", ", shape)}] {dtype}");
                var raw = new byte[offs[1] - offs[0]];
                fs.Position = dataStart + offs[0];
                fs.ReadExactly(raw);
                if (dtype is "I32" or "I64")
                {
                    var ints = new long[n];
                    for (long i = 0; i < n; i++)
                        ints[i] = dtype == "I64" ? BinaryPrimitives.ReadInt64LittleEndian(raw.AsSpan((int)(8 * i))) : BinaryPrimitives.ReadInt32LittleEndian(raw.AsSpan((int)(4 * i)));
                    arrays.Add(new NamedArray(prop.Name, shape, []) { Dtype = dtype, Integers = ints });
                    continue;
                }
                var data = new float[n];
                if (dtype == "F32") Buffer.BlockCopy(raw, 0, data, 0, raw.Length);
                else if (dtype == "F16")
                    for (long i = 0; i < n; i++) data[i] = (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(raw.AsSpan((int)(2 * i))));
                else
                    for (long i = 0; i < n; i++) data[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(raw.AsSpan((int)(2 * i))) << 16);
                arrays.Add(new NamedArray(prop.Name, shape, data));
            }
        }
        return (arrays, metadata);
    }
}
