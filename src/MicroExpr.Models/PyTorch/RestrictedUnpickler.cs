using System.Buffers.Binary;
using System.Text;

namespace MicroExpr.Models.PyTorch;

/// <summary>A Python global the unpickler accepted: <c>module.name</c>.</summary>
internal sealed record PyGlobal(string Module, string Name)
{
    public override string ToString() => $"{Module}.{Name}";
}

/// <summary>A Python tuple (immutable, positional).</summary>
internal sealed record PyTuple(object?[] Items);

/// <summary>A Python dict, in insertion order (an OrderedDict or a plain dict; both keep order since Python 3.7).</summary>
internal sealed class PyDict
{
    public List<KeyValuePair<object?, object?>> Items { get; } = [];
}

/// <summary>A storage reference: the persistent id <c>('storage', torch.FloatStorage, key, location, numel)</c>.</summary>
internal sealed record StorageRef(string TypeName, string Key, string Location, long Numel);

/// <summary>A tensor view over a storage: <c>torch._utils._rebuild_tensor_v2(storage, offset, size, stride, …)</c>.</summary>
internal sealed record TensorRef(StorageRef Storage, long Offset, long[] Size, long[] Stride);

/// <summary>
/// A pickle reader that understands only what a PyTorch state dict needs, and refuses anything else by name:
/// it never imports a module, never calls a function and never builds an arbitrary object. Accepted globals:
/// <c>collections.OrderedDict</c>, <c>torch._utils._rebuild_tensor_v2</c>, <c>torch._utils._rebuild_parameter</c>
/// and the storage types (<c>torch.FloatStorage</c>, …); REDUCE only of the first three; BUILD only of an
/// OrderedDict's state (the <c>_metadata</c> that <c>nn.Module.state_dict()</c> attaches); persistent ids only of the
/// form <c>('storage', type, key, location, numel)</c>. Protocols 2 to 5 (torch.save writes 2). Sizes are bounded by
/// the input: every string, list and memo entry comes out of the pickle's own bytes.
/// </summary>
internal sealed class RestrictedUnpickler
{
    /// <summary>The storage types a persistent id may name, with their element size in bytes.</summary>
    public static readonly IReadOnlyDictionary<string, (string DType, int Bytes)> StorageTypes = new Dictionary<string, (string, int)>
    {
        ["FloatStorage"] = ("F32", 4), ["DoubleStorage"] = ("F64", 8), ["HalfStorage"] = ("F16", 2),
        ["BFloat16Storage"] = ("BF16", 2), ["LongStorage"] = ("I64", 8), ["IntStorage"] = ("I32", 4),
        ["ShortStorage"] = ("I16", 2), ["CharStorage"] = ("I8", 1), ["ByteStorage"] = ("U8", 1), ["BoolStorage"] = ("BOOL", 1),
    };

    private static readonly HashSet<string> Callables =
        ["collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter"];

    private const int MaxStack = 1_000_000;

    private readonly byte[] data;
    private readonly string source;
    private int pos;
    private readonly List<object?> stack = [];
    private readonly List<int> marks = [];
    private readonly Dictionary<long, object?> memo = [];

    private sealed class Mark;
    private static readonly Mark MarkObject = new();

    private RestrictedUnpickler(byte[] data, string source)
    {
        this.data = data;
        this.source = source;
    }

    /// <summary>Reads one pickled object; <paramref name="source"/> names the file (and entry) in every error.</summary>
    public static object? Load(byte[] data, string source) => new RestrictedUnpickler(data, source).Run();

    private InvalidDataException Bad(string what) => new($"{source}: {what}");

    private InvalidDataException Refused(string what) =>
        new($"{source}: refused to load: {what}. A PyTorch state dict needs only tensors, OrderedDicts and storages; " +
            "this file asks for more, so it may run code when opened with torch.load. Nothing from it was executed.");

    private object? Run()
    {
        while (true)
        {
            if (pos >= data.Length) throw Bad("the pickle ends without its STOP opcode (truncated file?)");
            int at = pos;
            byte op = data[pos++];
            switch (op)
            {
                case 0x80: // PROTO
                    int proto = ReadByte();
                    if (proto < 2 || proto > 5) throw Bad($"pickle protocol {proto} is not supported (PyTorch writes 2)");
                    break;
                case 0x95: Skip(8); break; // FRAME: a length hint only
                case (byte)'.': // STOP
                    if (stack.Count != 1 || marks.Count != 0) throw Bad("malformed pickle (stack not empty at STOP)");
                    return stack[0];
                case (byte)'(': marks.Add(stack.Count); Push(MarkObject); break;
                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break;
                case 0x89: Push(false); break;
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break; // BININT
                case (byte)'K': Push((long)ReadByte()); break; // BININT1
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break; // BININT2
                case 0x8a: Push(ReadLong(ReadByte())); break; // LONG1
                case 0x8b: Push(ReadLong(checked((int)BinaryPrimitives.ReadUInt32LittleEndian(Take(4))))); break; // LONG4
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break; // BINFLOAT
                case (byte)'X': Push(Utf8(ReadLength4())); break; // BINUNICODE
                case 0x8c: Push(Utf8(ReadByte())); break; // SHORT_BINUNICODE
                case 0x8d: Push(Utf8(ReadLength8())); break; // BINUNICODE8
                case (byte)'T': Push(Latin1(ReadLength4())); break; // BINSTRING
                case (byte)'U': Push(Latin1(ReadByte())); break; // SHORT_BINSTRING
                case (byte)'B': Push(Take(ReadLength4()).ToArray()); break; // BINBYTES
                case (byte)'C': Push(Take(ReadByte()).ToArray()); break; // SHORT_BINBYTES
                case 0x8e: Push(Take(ReadLength8()).ToArray()); break; // BINBYTES8
                case (byte)')': Push(new PyTuple([])); break;
                case 0x85: Push(new PyTuple([Pop()])); break;
                case 0x86: { var b = Pop(); var a = Pop(); Push(new PyTuple([a, b])); break; }
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new PyTuple([a, b, c])); break; }
                case (byte)'t': Push(new PyTuple(PopMark().ToArray())); break;
                case (byte)']': Push(new List<object?>()); break;
                case (byte)'l': Push(PopMark()); break; // LIST
                case (byte)'a': { var v = Pop(); AsList(Peek()).Add(v); break; } // APPEND
                case (byte)'e': { var items = PopMark(); AsList(Peek()).AddRange(items); break; } // APPENDS
                case (byte)'}': Push(new PyDict()); break;
                case (byte)'d': { var items = PopMark(); var d = new PyDict(); AddPairs(d, items); Push(d); break; } // DICT
                case (byte)'s': { var v = Pop(); var k = Pop(); AsDict(Peek()).Items.Add(new(k, v)); break; } // SETITEM
                case (byte)'u': { var items = PopMark(); AddPairs(AsDict(Peek()), items); break; } // SETITEMS
                case (byte)'q': memo[ReadByte()] = Peek(); break; // BINPUT
                case (byte)'r': memo[BinaryPrimitives.ReadUInt32LittleEndian(Take(4))] = Peek(); break; // LONG_BINPUT
                case 0x94: memo[memo.Count] = Peek(); break; // MEMOIZE
                case (byte)'h': Push(Memo(ReadByte())); break; // BINGET
                case (byte)'j': Push(Memo(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break; // LONG_BINGET
                case (byte)'0': Pop(); break; // POP
                case (byte)'1': PopMark(); break; // POP_MARK
                case (byte)'2': Push(Peek()); break; // DUP
                case (byte)'c': Push(Global(ReadLine(), ReadLine())); break; // GLOBAL
                case 0x93: { var name = Pop() as string; var module = Pop() as string; // STACK_GLOBAL
                    if (module == null || name == null) throw Bad("STACK_GLOBAL without two strings");
                    Push(Global(module, name)); break; }
                case (byte)'Q': Push(PersistentId(Pop())); break; // BINPERSID
                case (byte)'R': { var args = Pop(); var f = Pop(); Push(Reduce(f, args)); break; } // REDUCE
                case (byte)'b': { var state = Pop(); Build(Peek(), state); break; } // BUILD
                default:
                    throw Refused($"pickle opcode 0x{op:x2} ('{(op is >= 32 and < 127 ? (char)op : '?')}') at byte {at} " +
                                  "(object construction, external references or text-mode opcodes are not allowed)");
            }
        }
    }

    private PyGlobal Global(string module, string name)
    {
        string full = $"{module}.{name}";
        if (Callables.Contains(full)) return new PyGlobal(module, name);
        if (module == "torch" && StorageTypes.ContainsKey(name)) return new PyGlobal(module, name);
        throw Refused($"the pickle asks for the Python global '{full}'");
    }

    private object? Reduce(object? f, object? args)
    {
        if (f is not PyGlobal g || !Callables.Contains(g.ToString()))
            throw Refused($"REDUCE (a call) of '{f switch { PyGlobal pg => pg.ToString(), null => "None", _ => f.GetType().Name }}'");
        if (args is not PyTuple t) throw Bad($"REDUCE of {g} without an argument tuple");
        switch (g.Name)
        {
            case "OrderedDict":
                if (t.Items.Length != 0) throw Refused("OrderedDict called with arguments");
                return new PyDict();
            case "_rebuild_parameter":
                if (t.Items.Length < 1 || t.Items[0] is not TensorRef p) throw Bad("_rebuild_parameter without a tensor");
                return p;
            default: // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
                if (t.Items.Length < 4 || t.Items[0] is not StorageRef s) throw Bad("_rebuild_tensor_v2 without (storage, offset, size, stride)");
                return new TensorRef(s, Int(t.Items[1], "storage offset"), Ints(t.Items[2], "size"), Ints(t.Items[3], "stride"));
        }
    }

    private void Build(object? target, object? state)
    {
        // OrderedDict.__reduce__ gives its __dict__ as state: for a state dict that is {'_metadata': OrderedDict(...)}.
        if (target is PyDict && state is PyDict s && s.Items.All(kv => kv.Key is "_metadata")) return;
        throw Refused($"BUILD (setting an object's state) of a {target?.GetType().Name ?? "None"}");
    }

    private StorageRef PersistentId(object? pid)
    {
        if (pid is not PyTuple { Items: [string kind, PyGlobal type, var key, string location, var numel] } || kind != "storage")
            throw Refused("a persistent id that is not ('storage', type, key, location, numel)");
        if (type.Module != "torch" || !StorageTypes.ContainsKey(type.Name)) throw Refused($"a storage of type '{type}'");
        string keyText = key switch { string k => k, long l => l.ToString(System.Globalization.CultureInfo.InvariantCulture), _ => throw Bad("a storage key that is not a string") };
        long n = Int(numel, "storage size");
        if (n < 0) throw Bad($"storage '{keyText}' has a negative size {n}");
        return new StorageRef(type.Name, keyText, location, n);
    }

    private long Int(object? v, string what) => v is long l ? l : throw Bad($"{what} is not an integer");

    private long[] Ints(object? v, string what) =>
        v is PyTuple t ? t.Items.Select(x => Int(x, what)).ToArray() : throw Bad($"{what} is not a tuple of integers");

    private object? Memo(long key) => memo.TryGetValue(key, out var v) ? v : throw Bad($"memo key {key} used before it was set");

    private static void AddPairs(PyDict d, List<object?> items)
    {
        for (int i = 0; i + 1 < items.Count; i += 2) d.Items.Add(new(items[i], items[i + 1]));
    }

    private List<object?> AsList(object? o) => o as List<object?> ?? throw Bad("APPEND to something that is not a list");

    private PyDict AsDict(object? o) => o as PyDict ?? throw Bad("SETITEM on something that is not a dict");

    private void Push(object? o)
    {
        if (stack.Count >= MaxStack) throw Bad("pickle stack too deep");
        stack.Add(o);
    }

    private object? Pop()
    {
        if (stack.Count == 0 || stack[^1] is Mark) throw Bad("malformed pickle (stack underflow)");
        var o = stack[^1];
        stack.RemoveAt(stack.Count - 1);
        return o;
    }

    private object? Peek() => stack.Count > 0 && stack[^1] is not Mark ? stack[^1] : throw Bad("malformed pickle (empty stack)");

    private List<object?> PopMark()
    {
        if (marks.Count == 0) throw Bad("malformed pickle (no MARK)");
        int m = marks[^1];
        marks.RemoveAt(marks.Count - 1);
        var items = stack.GetRange(m + 1, stack.Count - m - 1);
        stack.RemoveRange(m, stack.Count - m);
        return items;
    }

    private int ReadByte() => pos < data.Length ? data[pos++] : throw Bad("the pickle ends in the middle of an opcode (truncated file?)");

    private ReadOnlySpan<byte> Take(long n)
    {
        if (n < 0 || n > data.Length - pos) throw Bad($"the pickle claims {n} bytes where {data.Length - pos} remain (truncated or corrupt file)");
        var s = data.AsSpan(pos, (int)n);
        pos += (int)n;
        return s;
    }

    private void Skip(int n) => Take(n);

    private long ReadLength4() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));

    private long ReadLength8()
    {
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(Take(8));
        return n > int.MaxValue ? throw Bad($"the pickle claims a {n}-byte string") : (long)n;
    }

    private long ReadLong(int n)
    {
        if (n > 8) throw Bad($"an integer of {n} bytes (larger than 64 bits) is not expected in a state dict");
        var b = Take(n);
        long v = 0;
        for (int i = n - 1; i >= 0; i--) v = (v << 8) | b[i];
        if (n is > 0 and < 8 && (b[n - 1] & 0x80) != 0) v -= 1L << (8 * n); // two's complement sign
        return v;
    }

    private string Utf8(long n)
    {
        var s = Take(n);
        try
        {
            return new UTF8Encoding(false, true).GetString(s);
        }
        catch (DecoderFallbackException)
        {
            throw Bad("a string that is not valid UTF-8");
        }
    }

    private string Latin1(long n) => Encoding.Latin1.GetString(Take(n));

    private string ReadLine()
    {
        int end = Array.IndexOf(data, (byte)'\n', pos);
        if (end < 0 || end - pos > 256) throw Bad("a GLOBAL opcode without its name (truncated or corrupt file)");
        string s = Encoding.ASCII.GetString(data, pos, end - pos);
        pos = end + 1;
        return s;
    }
}
