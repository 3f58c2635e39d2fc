namespace MicroExpr.Data.Faces;

/// <summary>A dlib model file that is truncated, corrupt or not the expected kind; the message names the file, the byte and the field.</summary>
public sealed class DlibFormatException(string message) : IOException(message);

/// <summary>
/// Reads dlib's portable serialisation (dlib/serialize.h, 19.24) from an in-memory file.
/// <list type="bullet">
/// <item>Integers: one control byte, then its low 4 bits' count n (1..8) of little-endian magnitude bytes; for signed
/// types bit 0x80 of the control byte is the sign. Bits 0x70 are always zero.</item>
/// <item>Floating point (float_details): the mantissa as a signed integer (int64), then the exponent as a signed
/// integer (int16); the value is mantissa·2^exponent, with exponents 32000, 32001, 32002 meaning +∞, −∞ and NaN. dlib
/// converts with <c>ldexp((float)mantissa, exponent)</c>, reproduced here in float.</item>
/// <item><c>std::vector</c>: its size as unsigned long, then the elements; <c>matrix</c>: −rows and −columns as signed
/// longs (positive in an older format), then the elements row by row.</item>
/// </list>
/// Every read checks the remaining length and throws <see cref="DlibFormatException"/> naming <paramref name="file"/>,
/// the offset and what was being read.
/// </summary>
internal ref struct DlibDecoder(ReadOnlySpan<byte> data, string file)
{
    readonly ReadOnlySpan<byte> data = data;
    readonly string file = file;
    int pos;

    /// <summary>Where in the model the next reads are ("level 3 tree 17"), added to error messages; set once per block so
    /// that no string is built per value.</summary>
    public string? Context;

    public readonly int Position => pos;
    public readonly int Remaining => data.Length - pos;

    public readonly DlibFormatException Error(string what) =>
        new($"{file}: {what}{(Context is null ? "" : " of " + Context)} (at byte {pos} of {data.Length})");

    /// <summary>An unsigned integer of at most 8 bytes (dlib's unsigned long, uint64).</summary>
    public ulong ReadUnsigned(string what)
    {
        if (pos >= data.Length) throw Error($"truncated: the file ends where {what} should be");
        byte control = data[pos];
        if ((control & 0x70) != 0) throw Error($"corrupt {what}: control byte 0x{control:x2} is not a dlib integer");
        int n = control & 0x8F;
        if (n == 0 || n > 8) throw Error($"corrupt {what}: control byte 0x{control:x2} (unsigned integer of {n} bytes)");
        if (data.Length - pos - 1 < n) throw Error($"truncated: the file ends inside {what}");
        ulong v = 0;
        for (int i = n; i >= 1; i--) v = (v << 8) | data[pos + i];
        pos += n + 1;
        return v;
    }

    /// <summary>A signed integer of at most <paramref name="maxBytes"/> bytes (int: 4, long: 8, int16: 2).</summary>
    public long ReadSigned(string what, int maxBytes = 8)
    {
        if (pos >= data.Length) throw Error($"truncated: the file ends where {what} should be");
        byte control = data[pos];
        if ((control & 0x70) != 0) throw Error($"corrupt {what}: control byte 0x{control:x2} is not a dlib integer");
        int n = control & 0x0F;
        if (n == 0 || n > maxBytes) throw Error($"corrupt {what}: control byte 0x{control:x2} (signed integer of {n} bytes, at most {maxBytes})");
        if (data.Length - pos - 1 < n) throw Error($"truncated: the file ends inside {what}");
        ulong v = 0;
        for (int i = n; i >= 1; i--) v = (v << 8) | data[pos + i];
        pos += n + 1;
        long s = unchecked((long)v);
        return (control & 0x80) != 0 ? -s : s;
    }

    /// <summary>A float (float_details: mantissa, exponent), converted as dlib does: ldexp((float)mantissa, exponent).</summary>
    public float ReadFloat(string what)
    {
        long mantissa = ReadSigned(what, 8);
        long exponent = ReadSigned(what, 2);
        return exponent switch
        {
            32000 => float.PositiveInfinity,
            32001 => float.NegativeInfinity,
            > 32001 => float.NaN,
            _ => MathF.ScaleB(mantissa, (int)exponent),
        };
    }

    /// <summary>A container length, refused when above <paramref name="max"/> (a corrupt length would otherwise allocate without bound).</summary>
    public int ReadCount(string what, int max)
    {
        int at = pos;
        ulong n = ReadUnsigned(what);
        if (n > (ulong)max)
        {
            pos = at;
            throw Error($"corrupt {what}: {n} is more than {max}");
        }
        return (int)n;
    }

    /// <summary>A column vector <c>matrix&lt;float,0,1&gt;</c>; returns its values.</summary>
    public float[] ReadFloatColumn(string what, int maxRows)
    {
        int at = pos;
        long nr = ReadSigned(what), nc = ReadSigned(what);
        if (nr < 0 || nc < 0) { nr = -nr; nc = -nc; }
        if (nc != 1 && !(nr == 0 && nc == 0))
        {
            pos = at;
            throw Error($"corrupt {what}: a {nr}x{nc} matrix where a column vector was expected");
        }
        if (nr > maxRows)
        {
            pos = at;
            throw Error($"corrupt {what}: {nr} rows, more than {maxRows}");
        }
        var v = new float[nr];
        for (int i = 0; i < v.Length; i++) v[i] = ReadFloat(what);
        return v;
    }
}
