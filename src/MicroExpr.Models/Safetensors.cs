using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using MicroExpr.IO;

namespace MicroExpr.Models;

/// <summary>One named array of a safetensors file, as float32.</summary>
public sealed record NamedArray(string Name, int[] Shape, float[] Data);

/// <summary>
/// The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON header
/// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}, then the raw
/// little-endian data. Reads F32, F16 and BF16 (converted to float32); writes F32. Writes are atomic
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
            long bytes = 4L * a.Data.Length;
            header[a.Name] = new Dictionary<string, object> { ["dtype"] = "F32", ["shape"] = a.Shape, ["data_offsets"] = new[] { offset, offset + bytes } };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        int pad = (8 - json.Length % 8) % 8; // keep the data 8-byte aligned, as the reference writer does
        var headerBytes = new byte[json.Length + pad];
        json.CopyTo(headerBytes, 0);
        for (int i = json.Length; i < headerBytes.Length; i++) headerBytes[i] = (byte)' ';

        AtomicFile.Write(path, fs =>
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)headerBytes.Length);
            fs.Write(len);
            fs.Write(headerBytes);
            foreach (var a in list) fs.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.Data.AsSpan()));
        }, 1 << 20);
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
                    "F32" => 4,
                    "F16" or "BF16" => 2,
                    _ => throw new InvalidDataException($"{path}: tensor '{prop.Name}' has dtype {dtype}; supported: F32, F16, BF16"),
                };
                if (offs.Length != 2 || offs[1] - offs[0] != n * elem || dataStart + offs[1] > fs.Length)
                    throw new InvalidDataException($"{path}: tensor '{prop.Name}' has data offsets [{string.Join(", ", offs)}] that do not fit shape [{string.Join(", ", shape)}] {dtype}");
                var raw = new byte[offs[1] - offs[0]];
                fs.Position = dataStart + offs[0];
                fs.ReadExactly(raw);
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
