using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Text;

namespace MicroExpr.Models.PyTorch;

/// <summary>
/// One tensor of a PyTorch checkpoint, made contiguous: floating types as float32 (<see cref="Floats"/>; F16, BF16 and
/// F64 converted), integer and boolean types as int64 (<see cref="Integers"/>). <see cref="DType"/> is the stored type.
/// </summary>
public sealed record PthTensor(string Name, string DType, int[] Shape, float[]? Floats, long[]? Integers)
{
    public bool IsFloat => Floats != null;
}

/// <summary>What a checkpoint holds: its tensors, in file order, and a line for every other value (epoch, arch, …).</summary>
public sealed record PthCheckpoint(IReadOnlyList<PthTensor> Tensors, IReadOnlyList<string> OtherEntries, string? StrippedPrefix);

/// <summary>
/// Reads PyTorch checkpoints (<c>.pth</c>/<c>.pt</c>) safely, without Python and without running anything the file
/// asks for. Since PyTorch 1.6 <c>torch.save</c> writes a zip: <c>NAME/data.pkl</c> (the pickled object, protocol 2),
/// <c>NAME/data/KEY</c> (one entry of raw little-endian bytes per storage), <c>NAME/version</c>, <c>NAME/byteorder</c>.
/// The pickle goes through <see cref="RestrictedUnpickler"/>, which accepts only what a state dict needs and refuses
/// anything else by name. Every size the file claims is checked against the bytes really there before anything is
/// allocated: a storage's numel × element size against its entry, each view's offset + Σ (size − 1)·stride against
/// its storage, with checked arithmetic. The legacy format (before 1.6: a bare pickle starting with a magic number) is
/// recognised and refused with a line saying how to re-save the file.
/// </summary>
public static class PyTorchCheckpoint
{
    /// <summary>Largest <c>data.pkl</c> accepted (a state dict's pickle is a few hundred bytes per tensor).</summary>
    public const long MaxPickleBytes = 256L << 20;

    /// <summary>Wrapper names a training script puts around the state dict; stripped when every tensor name has one.</summary>
    private static readonly string[] Wrappers = ["state_dict.", "model.", "module.", "net."];

    public static PthCheckpoint Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        using var fs = File.OpenRead(path);
        Span<byte> head = stackalloc byte[4];
        int got = fs.Read(head);
        fs.Position = 0;
        if (got >= 2 && head[0] == 0x80 && head[1] <= 5)
            throw new InvalidDataException($"{path}: a PyTorch checkpoint in the legacy format (before PyTorch 1.6), which is not read here: " +
                                           "re-save it with a current PyTorch (torch.save(torch.load(f), g)) to get the zip format");
        if (got < 4 || head[0] != (byte)'P' || head[1] != (byte)'K')
            throw new InvalidDataException($"{path}: not a PyTorch checkpoint (a .pth/.pt file is a zip archive holding data.pkl)");
        ZipArchive zip;
        try
        {
            zip = new ZipArchive(fs, ZipArchiveMode.Read, leaveOpen: true);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: not a readable zip archive ({e.Message})", e);
        }
        using (zip)
        {
            try
            {
                return ReadZip(zip, path, fs.Length);
            }
            catch (InvalidDataException e) when (!e.Message.StartsWith(path, StringComparison.Ordinal))
            {
                throw new InvalidDataException($"{path}: damaged archive ({e.Message})", e);
            }
            catch (Exception e) when (e is IOException or ArgumentException or OverflowException or IndexOutOfRangeException
                                          or InvalidCastException or NotSupportedException)
            {
                // A corrupt archive can make System.IO.Compression or the stack machine fail in other ways: still one line.
                throw new InvalidDataException($"{path}: corrupt checkpoint ({e.GetType().Name}: {e.Message})", e);
            }
        }
    }

    private static PthCheckpoint ReadZip(ZipArchive zip, string path, long fileLength)
    {
        var pkl = zip.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1).ToList();
        if (pkl.Count != 1)
            throw new InvalidDataException($"{path}: not a PyTorch checkpoint ({(pkl.Count == 0 ? "no" : "more than one")} NAME/data.pkl entry in the archive)");
        string prefix = pkl[0].FullName[..^"data.pkl".Length];
        if (zip.GetEntry(prefix + "byteorder") is { } bo && ReadEntry(bo, 16, path) is var order && Encoding.ASCII.GetString(order).Trim() != "little")
            throw new InvalidDataException($"{path}: storages are {Encoding.ASCII.GetString(order).Trim()}-endian; only little-endian checkpoints are read");

        var root = RestrictedUnpickler.Load(ReadEntry(pkl[0], MaxPickleBytes, path), $"{path} ({pkl[0].FullName})");

        var found = new List<(string Name, TensorRef T)>();
        var other = new List<string>();
        Walk(root, "", found, other, path);
        if (found.Count == 0) throw new InvalidDataException($"{path}: the checkpoint holds no tensor");

        var storages = new Dictionary<string, byte[]>();
        long budget = 0; // elements extracted, bounded by twice the storages' elements (views may overlap, a little)
        long storageElements = 0;
        var tensors = new List<PthTensor>(found.Count);
        foreach (var (name, t) in found)
        {
            var (dtype, size) = RestrictedUnpickler.StorageTypes[t.Storage.TypeName];
            if (!storages.TryGetValue(t.Storage.Key, out var bytes))
            {
                var entry = zip.GetEntry($"{prefix}data/{t.Storage.Key}")
                            ?? throw new InvalidDataException($"{path}: tensor '{name}': its storage '{t.Storage.Key}' ({prefix}data/{t.Storage.Key}) is missing from the archive");
                long need;
                try
                {
                    need = checked(t.Storage.Numel * size);
                }
                catch (OverflowException)
                {
                    throw new InvalidDataException($"{path}: tensor '{name}': storage '{t.Storage.Key}' claims {t.Storage.Numel} elements, more than any file holds");
                }
                if (need > entry.Length || need > fileLength)
                    throw new InvalidDataException($"{path}: tensor '{name}': storage '{t.Storage.Key}' claims {t.Storage.Numel} elements ({need} bytes) " +
                                                   $"but its entry holds {entry.Length} bytes (corrupt or hostile file)");
                bytes = ReadEntry(entry, need, path, exactly: need);
                storages[t.Storage.Key] = bytes;
                storageElements += t.Storage.Numel;
            }
            var shape = CheckView(name, t, path);
            long n = shape.Aggregate(1L, (a, d) => a * d);
            budget += n;
            if (budget > 2 * storageElements + (1 << 20))
                throw new InvalidDataException($"{path}: the tensors' views add up to far more elements than their storages hold (hostile file?)");
            tensors.Add(Extract(name, dtype, shape, t, bytes, size));
        }
        string? stripped = StripWrappers(tensors);
        if (stripped != null)
            for (int i = 0; i < tensors.Count; i++) tensors[i] = tensors[i] with { Name = tensors[i].Name[stripped.Length..] };
        return new PthCheckpoint(tensors, other, stripped);
    }

    /// <summary>Flattens nested dicts into dotted names; tensors are collected, every other value is listed.</summary>
    private static void Walk(object? o, string prefix, List<(string, TensorRef)> found, List<string> other, string path)
    {
        switch (o)
        {
            case TensorRef t:
                found.Add((prefix.Length == 0 ? "tensor" : prefix, t));
                break;
            case PyDict d:
                foreach (var (k, v) in d.Items)
                {
                    string key = k switch
                    {
                        string s => s,
                        long l => l.ToString(CultureInfo.InvariantCulture),
                        _ => throw new InvalidDataException($"{path}: a dict key of type {k?.GetType().Name ?? "None"} under '{prefix}'"),
                    };
                    Walk(v, prefix.Length == 0 ? key : $"{prefix}.{key}", found, other, path);
                }
                break;
            case List<object?> or PyTuple:
                var items = o is PyTuple pt ? pt.Items : ((List<object?>)o).ToArray();
                if (items.Any(i => i is TensorRef or PyDict))
                    for (int i = 0; i < items.Length; i++) Walk(items[i], $"{prefix}.{i}".TrimStart('.'), found, other, path);
                else other.Add($"{prefix} = [{items.Length} items]");
                break;
            default:
                other.Add($"{prefix} = {Describe(o)}");
                break;
        }
    }

    private static string Describe(object? o) => o switch
    {
        null => "None",
        string s => s.Length > 60 ? $"'{s[..60]}…'" : $"'{s}'",
        double d => d.ToString("G6", CultureInfo.InvariantCulture),
        long l => l.ToString(CultureInfo.InvariantCulture),
        bool b => b ? "True" : "False",
        byte[] b => $"<{b.Length} bytes>",
        _ => o.GetType().Name,
    };

    /// <summary>The view's shape as int32, after checking offset + Σ (size − 1)·stride &lt; numel in checked arithmetic.</summary>
    private static int[] CheckView(string name, TensorRef t, string path)
    {
        if (t.Size.Length != t.Stride.Length) throw new InvalidDataException($"{path}: tensor '{name}': size and stride differ in rank");
        var shape = new int[t.Size.Length];
        try
        {
            long last = t.Offset, n = 1;
            for (int d = 0; d < shape.Length; d++)
            {
                if (t.Size[d] < 0 || t.Size[d] > int.MaxValue || t.Stride[d] < 0)
                    throw new InvalidDataException($"{path}: tensor '{name}': size {t.Size[d]} / stride {t.Stride[d]} in dimension {d} is not valid");
                shape[d] = (int)t.Size[d];
                n = checked(n * t.Size[d]);
                if (t.Size[d] > 0) last = checked(last + (t.Size[d] - 1) * t.Stride[d]);
            }
            if (n > int.MaxValue) throw new InvalidDataException($"{path}: tensor '{name}' has {n} elements, more than one array can hold");
            if (t.Offset < 0 || (n > 0 && last >= t.Storage.Numel))
                throw new InvalidDataException($"{path}: tensor '{name}' (offset {t.Offset}, size [{string.Join(", ", t.Size)}], stride [{string.Join(", ", t.Stride)}]) " +
                                               $"reaches past the end of its storage of {t.Storage.Numel} elements");
        }
        catch (OverflowException)
        {
            throw new InvalidDataException($"{path}: tensor '{name}': its size and stride overflow 64-bit arithmetic (hostile file?)");
        }
        return shape;
    }

    private static PthTensor Extract(string name, string dtype, int[] shape, TensorRef t, byte[] bytes, int size)
    {
        int n = (int)shape.Aggregate(1L, (a, d) => a * d);
        bool isFloat = dtype is "F32" or "F64" or "F16" or "BF16";
        var floats = isFloat ? new float[n] : null;
        var ints = isFloat ? null : new long[n];
        var index = new long[shape.Length];
        for (int i = 0; i < n; i++)
        {
            long e = t.Offset;
            for (int d = 0; d < shape.Length; d++) e += index[d] * t.Stride[d];
            var b = bytes.AsSpan((int)(e * size), size);
            if (isFloat)
                floats![i] = dtype switch
                {
                    "F32" => BinaryPrimitives.ReadSingleLittleEndian(b),
                    "F64" => (float)BinaryPrimitives.ReadDoubleLittleEndian(b),
                    "F16" => (float)BinaryPrimitives.ReadHalfLittleEndian(b),
                    _ => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(b) << 16),
                };
            else
                ints![i] = dtype switch
                {
                    "I64" => BinaryPrimitives.ReadInt64LittleEndian(b),
                    "I32" => BinaryPrimitives.ReadInt32LittleEndian(b),
                    "I16" => BinaryPrimitives.ReadInt16LittleEndian(b),
                    "I8" => (sbyte)b[0],
                    _ => b[0],
                };
            for (int d = shape.Length - 1; d >= 0; d--) // odometer over the view's indices, last dimension fastest
            {
                if (++index[d] < shape[d]) break;
                index[d] = 0;
            }
        }
        return new PthTensor(name, dtype, shape, floats, ints);
    }

    private static string? StripWrappers(List<PthTensor> tensors)
    {
        string stripped = "";
        bool changed = true;
        while (changed)
        {
            changed = false;
            foreach (var w in Wrappers)
                if (tensors.All(t => t.Name.Length > stripped.Length + w.Length && string.CompareOrdinal(t.Name, stripped.Length, w, 0, w.Length) == 0))
                {
                    stripped += w;
                    changed = true;
                }
        }
        return stripped.Length == 0 ? null : stripped;
    }

    /// <summary>An entry's bytes, never more than <paramref name="limit"/> (a deflated entry may claim any size).</summary>
    private static byte[] ReadEntry(ZipArchiveEntry entry, long limit, string path, long exactly = -1)
    {
        if (exactly < 0 && entry.Length > limit)
            throw new InvalidDataException($"{path}: entry {entry.FullName} is {entry.Length} bytes, more than the {limit} expected");
        using var s = entry.Open();
        var buf = new byte[exactly >= 0 ? exactly : entry.Length];
        try
        {
            s.ReadExactly(buf);
        }
        catch (Exception e) when (e is EndOfStreamException or InvalidDataException)
        {
            throw new InvalidDataException($"{path}: entry {entry.FullName} is damaged ({e.Message})", e);
        }
        return buf;
    }
}
