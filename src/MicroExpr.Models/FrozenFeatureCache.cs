using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace MicroExpr.Models;

/// <summary>
/// Class tokens of a frozen ViT, computed once per frame and reused: SLSTT's released recipe freezes every ViT block and the
/// patch and position embeddings (only the final LayerNorm, the LSTM and the head train), so a frame's class token before
/// that LayerNorm is the same in every epoch and, with the same pretrained weights, in every fold. <see cref="SlsttModel"/>
/// uses this cache on its own, and only while none of its spatial parameters before the final LayerNorm requires a gradient
/// (the freeze; a trainable ViT never touches it), so no trainer change is needed and the results are those of the full
/// forward. An entry's key is the SHA-256 of the frozen weights with the shape-fixing config fields (computed once per model)
/// and the SHA-256 of the frame's input floats, so folds sharing the pretrained weights share entries, a randomly
/// initialised fold never hits another's, and an augmented frame is simply another entry. Held in memory for the process
/// (a run), up to <see cref="MaxBytes"/> (then further frames are computed, not stored). Rejected alternatives: features
/// written into the cache folder (they depend on the weights, not only on the data), and keying by clip identity (needs
/// the trainer to pass it, and breaks under augmentation).
/// </summary>
public static class FrozenFeatureCache
{
    static readonly ConcurrentDictionary<(string Weights, string Frame), float[]> Entries = new();
    static long bytes, hits, misses;

    /// <summary>On by default; off forces the full forward (tests compare the two).</summary>
    public static bool Enabled { get; set; } = true;

    /// <summary>Bytes of features kept at most (default 2 GiB: about 700,000 frames of ViT-B/16).</summary>
    public static long MaxBytes { get; set; } = 2L << 30;

    public static long Hits => Interlocked.Read(ref hits);
    public static long Misses => Interlocked.Read(ref misses);
    public static int Count => Entries.Count;

    public static void Clear()
    {
        Entries.Clear();
        Interlocked.Exchange(ref bytes, 0);
        Interlocked.Exchange(ref hits, 0);
        Interlocked.Exchange(ref misses, 0);
    }

    internal static bool TryGet(string weights, string frame, out float[] feature)
    {
        bool found = Entries.TryGetValue((weights, frame), out feature!);
        Interlocked.Increment(ref found ? ref hits : ref misses);
        return found;
    }

    internal static void Add(string weights, string frame, float[] feature)
    {
        if (Interlocked.Read(ref bytes) + 4L * feature.Length > MaxBytes) return;
        if (Entries.TryAdd((weights, frame), feature)) Interlocked.Add(ref bytes, 4L * feature.Length);
    }

    /// <summary>SHA-256 of a span of floats, hex.</summary>
    internal static string Hash(ReadOnlySpan<float> values) => Convert.ToHexString(SHA256.HashData(MemoryMarshal.AsBytes(values)));
}
