using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using MicroExpr.IO;

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

        AtomicFile.Write(path, fs =>
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
            throw new InvalidDataException($"{path}: the safetensors header is not valid JSON: {OneLine(e.Message)}", e);
        }
        using (doc)
        try
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{path}: the safetensors header is a JSON {doc.RootElement.ValueKind}, expected an object of tensors");
            long dataLength = fs.Length - dataStart;
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var ranges = new List<(long Begin, long End, string Name)>();
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(prop.Name)) throw new InvalidDataException($"{path}: tensor '{prop.Name}' appears twice in the header");
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: __metadata__ is not an object of strings");
                    foreach (var m in prop.Value.EnumerateObject())
                        metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()!
                            : throw new InvalidDataException($"{path}: __metadata__ field '{m.Name}' is a {m.Value.ValueKind}, expected a string");
                    continue;
                }
                var (dtype, shape, offs) = Entry(path, prop);
                long n = 1;
                foreach (int d in shape)
                {
                    n *= d; // each factor ≤ int.MaxValue and n ≤ Array.MaxLength before it: no overflow
                    if (n > Array.MaxLength) throw new InvalidDataException($"{path}: tensor '{prop.Name}' has shape [{string.Join(", ", shape)}]: more values than an array holds");
                }
                int elem = dtype switch
                {
                    "F32" or "I32" => 4,
                    "I64" => 8,
                    "F16" or "BF16" => 2,
                    _ => throw new InvalidDataException($"{path}: tensor '{prop.Name}' has dtype {dtype}; supported: F32, F16, BF16, I32, I64"),
                };
                if (offs[0] < 0 || offs[0] > offs[1] || offs[1] > dataLength || offs[1] - offs[0] != n * elem)
                    throw new InvalidDataException($"{path}: tensor '{prop.Name}' has data offsets [{string.Join(", ", offs)}] that do not fit shape [{string.Join(", ", shape)}] {dtype} in {dataLength} data bytes (need 0 ≤ begin ≤ end ≤ data length, end − begin = {n}·{elem})");
                ranges.Add((offs[0], offs[1], prop.Name));
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
            ranges.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
            for (int i = 1; i < ranges.Count; i++)
                if (ranges[i].Begin < ranges[i - 1].End)
                    throw new InvalidDataException($"{path}: tensors '{ranges[i - 1].Name}' and '{ranges[i].Name}' overlap in the data (bytes [{ranges[i - 1].Begin}, {ranges[i - 1].End}) and [{ranges[i].Begin}, {ranges[i].End}))");
        }
        catch (InvalidOperationException e)
        {
            throw new InvalidDataException($"{path}: the safetensors header is not valid UTF-8 JSON text ({OneLine(e.Message)})", e);
        }
        return (arrays, metadata);
    }

    /// <summary>A parser's message on one line: System.Text.Json quotes the offending bytes, control characters included.</summary>
    internal static string OneLine(string message) => string.Concat(message.Select(ch => char.IsControl(ch) ? ' ' : ch));

    /// <summary>One header entry's dtype, shape (each dimension a non-negative int32) and [begin, end] offsets, or a message naming the field.</summary>
    static (string Dtype, int[] Shape, long[] Offsets) Entry(string path, JsonProperty prop)
    {
        string where = $"{path}: tensor '{prop.Name}'";
        var v = prop.Value;
        if (v.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{where}: header entry is a {v.ValueKind}, expected an object with dtype, shape and data_offsets");
        if (!v.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String) throw new InvalidDataException($"{where}: 'dtype' is missing or not a string");
        if (!v.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array) throw new InvalidDataException($"{where}: 'shape' is missing or not an array");
        if (!v.TryGetProperty("data_offsets", out var of) || of.ValueKind != JsonValueKind.Array || of.GetArrayLength() != 2)
            throw new InvalidDataException($"{where}: 'data_offsets' is missing or not an array [begin, end]");
        if (sh.GetArrayLength() > 16) throw new InvalidDataException($"{where}: 'shape' has {sh.GetArrayLength()} dimensions (at most 16)");
        var shape = new int[sh.GetArrayLength()];
        int k = 0;
        foreach (var e in sh.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out int d) || d < 0)
                throw new InvalidDataException($"{where}: shape value {e.GetRawText()} is not an integer in 0..{int.MaxValue}");
            shape[k++] = d;
        }
        var offs = new long[2];
        k = 0;
        foreach (var e in of.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out long o))
                throw new InvalidDataException($"{where}: data offset {e.GetRawText()} is not an integer");
            offs[k++] = o;
        }
        return (dt.GetString()!, shape, offs);
    }
}
