using MicroExpr.Models;
using MicroExpr.Tensors;

namespace MicroExpr.Tests.Models;

public class WeightsTests
{
    private string dir = "";

    [SetUp]
    public void SetUp() => dir = Directory.CreateTempSubdirectory("weights").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(dir, true);

    [Test]
    public void CheckpointRoundTripsAndRefusesAnotherPreset()
    {
        string path = Path.Combine(dir, "ckpt.safetensors");
        using var a = new SlsttModel(SlsttPresets.Tiny, new Rng(1));
        Weights.Save(a, path, new Dictionary<string, string> { ["epoch"] = "3" });
        using var b = new SlsttModel(SlsttPresets.Tiny, new Rng(2));
        var meta = Weights.Load(b, path);
        Assert.That(meta["epoch"], Is.EqualTo("3"));
        foreach (var ((na, pa), (_, pb)) in a.NamedParameters().Zip(b.NamedParameters()))
            Assert.That(pb.ToArray(), Is.EqualTo(pa.ToArray()), na);
        Assert.That(Weights.ReadConfig(path), Is.EqualTo(SlsttPresets.Tiny));

        using var other = new SlsttModel(SlsttPresets.Tiny with { Width = 32, TemporalHidden = 32 }, new Rng(3));
        var ex = Assert.Throws<InvalidDataException>(() => Weights.Load(other, path))!;
        Assert.That(ex.Message, Does.Contain(path).And.Contain("width: 64 vs 32"));
    }

    [Test]
    public void SafetensorsReadsHalfAndBFloat16AndRejectsGarbage()
    {
        string path = Path.Combine(dir, "x.safetensors");
        Safetensors.Write(path, [new NamedArray("a", [2, 3], [1, -2, 3.5f, 0, 1e-3f, -7])]);
        var (arrays, _) = Safetensors.Read(path);
        Assert.That(arrays.Single().Data, Is.EqualTo(new[] { 1, -2, 3.5f, 0, 1e-3f, -7 }));

        // Hand-built F16 + BF16 file.
        string half = Path.Combine(dir, "h.safetensors");
        var header = "{\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[4,6]}}";
        using (var fs = File.Create(half))
        {
            fs.Write(BitConverter.GetBytes((ulong)header.Length));
            fs.Write(System.Text.Encoding.ASCII.GetBytes(header));
            fs.Write(BitConverter.GetBytes(BitConverter.HalfToUInt16Bits((Half)1.5f)));
            fs.Write(BitConverter.GetBytes(BitConverter.HalfToUInt16Bits((Half)(-0.25f))));
            fs.Write(BitConverter.GetBytes((ushort)(BitConverter.SingleToInt32Bits(-3f) >> 16)));
        }
        var r = Safetensors.Read(half).Arrays.ToDictionary(x => x.Name);
        Assert.That(r["h"].Data, Is.EqualTo(new[] { 1.5f, -0.25f }));
        Assert.That(r["b"].Data, Is.EqualTo(new[] { -3f }));

        string bad = Path.Combine(dir, "bad.safetensors");
        File.WriteAllText(bad, "not a safetensors file at all");
        Assert.That(Assert.Throws<InvalidDataException>(() => Safetensors.Read(bad))!.Message, Does.Contain(bad));
    }

    [Test]
    public void TimmVitImportReshapesPatchKernelResizesPositionsAndListsTheRest()
    {
        // A ViT in timm's naming written by the project's own writer: a 4×4 grid at patch 8 (32 px), imported at 48 px (6×6 grid).
        var cfg = SlsttPresets.Tiny with { ImageSize = 48 };
        int c = cfg.Width, p = cfg.PatchSize, g0 = 4;
        var rng = new Rng(9);
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)rng.NextNormal()).ToArray();
        using var donor = new SlsttModel(cfg, new Rng(4));
        var arrays = new List<NamedArray>();
        var conv = R(c * 3 * p * p);
        arrays.Add(new NamedArray("patch_embed.proj.weight", [c, 3, p, p], conv));
        arrays.Add(new NamedArray("pos_embed", [1, 1 + g0 * g0, c], R((1 + g0 * g0) * c)));
        foreach (var (name, t) in donor.Spatial.NamedParameters())
            if (name is not "patch_embed.proj.weight" and not "pos_embed") arrays.Add(new NamedArray(name, t.Shape, t.ToArray()));
        arrays.Add(new NamedArray("head.weight", [1000, c], R(1000 * c)));
        string path = Path.Combine(dir, "vit.safetensors");
        Safetensors.Write(path, arrays);

        using var model = new SlsttModel(cfg, new Rng(5));
        var report = Weights.ImportTimmVit(model, path);
        Assert.That(report.UnusedInFile, Is.EqualTo(new[] { "head.weight" }));
        Assert.That(report.MissingInFile, Is.Empty);
        Assert.That(model.Spatial.PatchEmbed.Proj.Weight.ToArray(), Is.EqualTo(conv), "[C,3,P,P] flattens to [C,3·P·P] in the same order");
        Assert.That(model.Spatial.PosEmbed.Shape, Is.EqualTo(new[] { 1, 37, c }));
        Assert.That(model.Spatial.Blocks[1].Mlp.Fc2.Weight.ToArray(), Is.EqualTo(donor.Spatial.Blocks[1].Mlp.Fc2.Weight.ToArray()));
        Assert.That(report.Adapted, Has.Count.EqualTo(2));
        Assert.That(report.ToString(), Does.Contain("head.weight"));
    }

    [Test]
    public void PositionResizeKeepsAConstantGridAndTheClassToken()
    {
        int c = 2;
        var src = new float[(1 + 9) * c];
        src[0] = 5; src[1] = 6;
        for (int i = 1; i < 10; i++) { src[i * c] = 1; src[i * c + 1] = -2; }
        var dst = Weights.ResizePositionEmbedding(src, [1, 10, c], [1, 26, c]);
        Assert.That(dst[0], Is.EqualTo(5f));
        Assert.That(dst[1], Is.EqualTo(6f));
        for (int i = 1; i < 26; i++) { Assert.That(dst[i * c], Is.EqualTo(1f).Within(1e-6)); Assert.That(dst[i * c + 1], Is.EqualTo(-2f).Within(1e-6)); }
    }
}
