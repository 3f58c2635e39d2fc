using System.Diagnostics;
using System.Text;
using System.Text.Json;
using MicroExpr.Data;
using MicroExpr.Data.Annotations;
using MicroExpr.Data.Cache;
using MicroExpr.Data.Xlsx;
using MicroExpr.Models;
using MicroExpr.Tensors;

namespace MicroExpr.Tests.Hardening;

/// <summary>
/// Seeded mutation fuzzing of every file the engine reads from users: xlsx, safetensors, manifest CSV, index.json and
/// clip tensor files. Each mutant (truncation, byte flips, huge or negative numbers in headers and offsets, deep nesting,
/// duplicated segments) must either be read or be refused with an <see cref="InvalidDataException"/> (or
/// <see cref="FileNotFoundException"/> for a reference to a missing file) whose one-line message names the file; no other
/// exception type may escape, and no single read may allocate more than <see cref="HeapBound"/> on the managed heap.
/// About 1,500 mutants, a few seconds in all.
/// </summary>
public class FuzzTests
{
    /// <summary>Bytes one read of one small mutant may allocate (an upper bound of the heap it can grow).</summary>
    const long HeapBound = 256L << 20;

    string dir = "";

    [SetUp]
    public void SetUp() => dir = Directory.CreateTempSubdirectory("mx-fuzz-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(dir, true);

    static readonly string[] HugeNumbers = ["99999999999999999999", "-1", "2147483648", "-9223372036854775808", "1e308", "0.5", "4294967296", "0"];

    /// <summary>One seeded mutation of <paramref name="src"/>; text-aware ones apply when the bytes are text.</summary>
    static byte[] Mutate(byte[] src, Random rng, bool text)
    {
        var b = src.ToList();
        int kind = rng.Next(text ? 7 : 4);
        switch (kind)
        {
            case 0: // truncate
                return src.AsSpan(0, rng.Next(src.Length)).ToArray();
            case 1: // flip 1..20 bytes
                for (int i = 0, n = 1 + rng.Next(20); i < n; i++) b[rng.Next(b.Count)] ^= (byte)(1 + rng.Next(255));
                return b.ToArray();
            case 2: // duplicate a segment
            {
                int at = rng.Next(b.Count), len = Math.Min(1 + rng.Next(64), b.Count - at);
                b.InsertRange(rng.Next(b.Count), b.GetRange(at, len));
                return b.ToArray();
            }
            case 3: // overwrite 8 bytes with a huge or negative little-endian integer (lengths, offsets, shapes)
            {
                int at = rng.Next(Math.Max(1, b.Count - 8));
                long v = rng.Next(4) switch { 0 => long.MaxValue, 1 => -1, 2 => int.MaxValue, _ => 1L << 40 };
                var bytes = BitConverter.GetBytes(v);
                for (int i = 0; i < 8 && at + i < b.Count; i++) b[at + i] = bytes[i];
                return b.ToArray();
            }
        }
        string s = Encoding.UTF8.GetString(src);
        switch (kind)
        {
            case 4: // replace a run of digits by a huge, negative or fractional number
            {
                var runs = System.Text.RegularExpressions.Regex.Matches(s, "[0-9]+");
                if (runs.Count == 0) return src;
                var m = runs[rng.Next(runs.Count)];
                s = s[..m.Index] + HugeNumbers[rng.Next(HugeNumbers.Length)] + s[(m.Index + m.Length)..];
                break;
            }
            case 5: // deep nesting
            {
                int at = rng.Next(s.Length), depth = 50 + rng.Next(5000);
                string open = rng.Next(2) == 0 ? "[" : "{\"a\":";
                s = s[..at] + string.Concat(Enumerable.Repeat(open, depth)) + s[at..];
                break;
            }
            default: // cut out a random span of text (a key, a quote, a closing tag)
            {
                int at = rng.Next(s.Length), len = Math.Min(1 + rng.Next(16), s.Length - at);
                s = s.Remove(at, len);
                break;
            }
        }
        return Encoding.UTF8.GetBytes(s);
    }

    /// <summary>Runs <paramref name="read"/> on a mutant and checks what came out.</summary>
    static void Check(string file, string names, Action read, string what, int seed)
    {
        Exception? caught = null;
        long bytes = HostileFiles.Allocated(() =>
        {
            try { read(); }
            catch (Exception e) { caught = e; }
        });
        Assert.That(bytes, Is.LessThan(HeapBound), $"{what} mutant {seed}: allocated {bytes >> 20} MiB");
        if (caught is null) return;
        Assert.That(caught is InvalidDataException or FileNotFoundException, $"{what} mutant {seed}: {caught.GetType().Name} escaped: {caught}");
        Assert.That(caught.Message, Does.Contain(names), $"{what} mutant {seed}: the message does not name the file");
        Assert.That(caught.Message, Does.Not.Contain("\n"), $"{what} mutant {seed}: not one line");
        _ = file;
    }

    static void Run(string what, int count, byte[] valid, bool text, string path, string names, Action read, Action? before = null)
    {
        var rng = new Random(what.Length * 7919 + count);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < count; i++)
        {
            File.WriteAllBytes(path, Mutate(valid, rng, text));
            before?.Invoke();
            Check(path, names, read, what, i);
        }
        TestContext.Out.WriteLine($"{what}: {count} mutants in {sw.Elapsed.TotalSeconds:F2} s");
    }

    [Test]
    public void XlsxMutants()
    {
        string valid = Path.Combine(dir, "valid.xlsx");
        XlsxWriter.Write(valid, "Sheet1", [["Subject", "Filename", "OnsetFrame", "Estimated Emotion"], ["01", "EP02_01f", "46", "happiness"], ["02", "EP03", "12.5", "R12 & <b>"]]);
        string shared = Path.Combine(dir, "shared.xlsx");
        HostileFiles.Xlsx(shared, HostileFiles.Sheet("<row r=\"1\"><c r=\"A1\" t=\"s\"><v>0</v></c><c r=\"B1\" t=\"s\"><v>1</v></c></row><row r=\"2\"><c r=\"A2\"><v>7</v></c></row>"),
            $"<sst xmlns=\"{HostileFiles.Ns}\"><si><t>Subject</t></si><si><r><t>File</t></r><r><t>name</t></r></si></sst>");
        string path = Path.Combine(dir, "mutant.xlsx");
        foreach (var source in new[] { valid, shared })
            Run("xlsx bytes", 250, File.ReadAllBytes(source), false, path, path, () => { XlsxReader.SheetNames(path); XlsxReader.ReadSheet(path); });

        // Structure-aware: valid zips of mutated XML parts.
        var rng = new Random(5);
        string sheet = HostileFiles.Sheet("<row r=\"1\"><c r=\"A1\" t=\"s\"><v>0</v></c><c r=\"C1\" t=\"inlineStr\"><is><t>x</t></is></c></row><row r=\"2\"><c r=\"B2\"><v>3.5</v></c></row>");
        string sst = $"<sst xmlns=\"{HostileFiles.Ns}\"><si><t>Subject</t></si></sst>";
        for (int i = 0; i < 250; i++)
        {
            int part = rng.Next(3);
            string Mut(string s) => Encoding.UTF8.GetString(Mutate(Encoding.UTF8.GetBytes(s), rng, true));
            HostileFiles.Xlsx(path, part == 0 ? Mut(sheet) : sheet, part == 1 ? Mut(sst) : sst, part == 2 ? Mut(HostileFiles.Workbook) : HostileFiles.Workbook);
            Check(path, path, () => XlsxReader.ReadSheet(path), "xlsx parts", i);
        }
    }

    [Test]
    public void SafetensorsMutants()
    {
        string valid = Path.Combine(dir, "valid.safetensors");
        var meta = new Dictionary<string, string> { ["microexpr.config"] = JsonSerializer.Serialize(SlsttPresets.Tiny with { Width = 8, Heads = 2, Depth = 1, MlpHidden = 16, TemporalHidden = 8 }) };
        MicroExpr.Models.Safetensors.Write(valid, [new NamedArray("a", [2, 3], [1, 2, 3, 4, 5, 6]), new NamedArray("b.weight", [4], [1, 2, 3, 4]), new NamedArray("c", [0], [])], meta);
        string path = Path.Combine(dir, "mutant.safetensors");
        var bytes = File.ReadAllBytes(valid);
        Run("safetensors bytes", 300, bytes, false, path, path, () => MicroExpr.Models.Safetensors.Read(path));
        // The header alone, mutated as text, with the length prefix fixed up (or not).
        int headerLen = (int)BitConverter.ToUInt64(bytes, 0);
        string header = Encoding.UTF8.GetString(bytes, 8, headerLen);
        var data = bytes.AsSpan(8 + headerLen).ToArray();
        var rng = new Random(11);
        for (int i = 0; i < 300; i++)
        {
            string h = Encoding.UTF8.GetString(Mutate(Encoding.UTF8.GetBytes(header), rng, true));
            HostileFiles.RawSafetensors(path, h, data, rng.Next(8) == 0 ? (ulong)rng.NextInt64() : null);
            Check(path, path, () => Weights.ReadConfig(path), "safetensors header", i);
        }
    }

    [Test]
    public void ManifestMutants()
    {
        string data = Path.Combine(dir, "data");
        Directory.CreateDirectory(Path.Combine(data, "clip 1"));
        string path = Path.Combine(data, "manifest.csv");
        var valid = Encoding.UTF8.GetBytes("subject,label,path,onset,apex,offset\na,0,clip 1,1,2,3\nb,1,\"clip, 2\",,,\nc,2,clip3.png,,,\n");
        Run("manifest", 300, valid, true, path, path, () => ManifestReader.Read(path));
    }

    [Test]
    public void IndexAndClipMutants()
    {
        string cacheDir = Path.Combine(dir, "cache");
        string clipDir = Path.Combine(cacheDir, Preprocessor.ClipFolder);
        Directory.CreateDirectory(clipDir);
        var rng = new Random(3);
        var index = new CacheIndex { ClassNames = ["a", "b"], SettingsHash = "x" };
        for (int i = 0; i < 2; i++)
        {
            var values = Enumerable.Range(0, 2 * 3 * 4 * 4).Select(_ => (float)rng.NextDouble()).ToArray();
            string name = $"c{i}.mxt";
            var info = TensorFile.Write(Path.Combine(clipDir, name), values, 2, 3, 4, 4);
            index.Clips.Add(new IndexClip
            {
                Subject = $"s{i}", Label = i, Clip = $"c{i}", ActionUnits = "4+L10",
                Inputs = [new IndexInput { Kind = "motion", File = $"clips/{name}", Frames = 2, Channels = 3, Height = 4, Width = 4, Checksum = info.ChecksumText }],
            });
        }
        index.Save(cacheDir);
        string indexPath = Path.Combine(cacheDir, CacheIndex.FileName);
        var validIndex = File.ReadAllBytes(indexPath);
        void OpenAndLoad()
        {
            var cache = PreprocessedCache.Open(cacheDir);
            foreach (var c in cache.Clips) cache.Load(c);
        }
        Run("index.json", 300, validIndex, true, indexPath, cacheDir, OpenAndLoad);
        File.WriteAllBytes(indexPath, validIndex);
        string clip = Path.Combine(clipDir, "c1.mxt");
        Run("clip file", 300, File.ReadAllBytes(clip), false, clip, clip, () => TensorFile.Read(clip, out TensorFileInfo _));
    }
}
