using MicroExpr.Cli;
using MicroExpr.Models;
using MicroExpr.Models.PyTorch;
using MicroExpr.Tensors;

namespace MicroExpr.Tests.Models;

/// <summary>
/// The safe PyTorch checkpoint reader, on files that Python's own pickle and zipfile wrote in torch.save's layout
/// (tools/pth-fixtures/make_fixtures.py; the values follow <see cref="Pattern"/>, which the script shares).
/// </summary>
public class PyTorchCheckpointTests
{
    private static string Fixture(string name) => Path.Combine(TestContext.CurrentContext.TestDirectory, "Models", "PthFixtures", name + ".pth");

    /// <summary>make_fixtures.py's pattern: v[i] = scale · ((7i + shift) mod 23 − 11).</summary>
    private static float[] Pattern(int n, double scale, int shift) =>
        Enumerable.Range(0, n).Select(i => (float)(scale * ((i * 7 + shift) % 23 - 11))).ToArray();

    private string dir = "";

    [SetUp]
    public void SetUp() => dir = Directory.CreateTempSubdirectory("pth").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(dir, true);

    [Test]
    public void ReadsAStateDictWithParametersIntegersHalvesAndStridedViews()
    {
        var ckpt = PyTorchCheckpoint.Read(Fixture("plain"));
        var t = ckpt.Tensors.ToDictionary(x => x.Name);
        Assert.That(ckpt.Tensors.Select(x => x.Name), Is.EqualTo(new[] { "linear.weight", "linear.bias", "bn.num_batches_tracked", "half", "grid", "grid_t", "grid_tail" }));
        Assert.That(t["linear.weight"].Shape, Is.EqualTo(new[] { 2, 3 }));
        Assert.That(t["linear.weight"].Floats, Is.EqualTo(Pattern(6, 0.5, 0)));
        Assert.That(t["linear.bias"].Floats, Is.EqualTo(Pattern(2, 0.125, 1)));
        Assert.That(t["bn.num_batches_tracked"].DType, Is.EqualTo("I64"));
        Assert.That(t["bn.num_batches_tracked"].Shape, Is.Empty);
        Assert.That(t["bn.num_batches_tracked"].Integers, Is.EqualTo(new long[] { 7 }));
        Assert.That(t["half"].DType, Is.EqualTo("F16"));
        Assert.That(t["half"].Floats, Is.EqualTo(new[] { 0.5f, -1.5f, 2f, 65504f }));

        var grid = Pattern(12, 0.25, 5);
        Assert.That(t["grid"].Floats, Is.EqualTo(grid));
        var transposed = new float[12];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 3; j++) transposed[i * 3 + j] = grid[j * 4 + i];
        Assert.That(t["grid_t"].Shape, Is.EqualTo(new[] { 4, 3 }));
        Assert.That(t["grid_t"].Floats, Is.EqualTo(transposed), "a non-contiguous view is read through its strides");
        Assert.That(t["grid_tail"].Floats, Is.EqualTo(grid[8..]), "a view at an offset inside a shared storage");
    }

    [Test]
    public void ATrainingCheckpointIsFlattenedItsWrappersStrippedAndItsOtherValuesListed()
    {
        var ckpt = PyTorchCheckpoint.Read(Fixture("nested"));
        Assert.That(ckpt.StrippedPrefix, Is.EqualTo("state_dict.module."));
        Assert.That(ckpt.Tensors.Select(x => x.Name), Is.EqualTo(new[] { "fc.weight", "fc.bias" }));
        Assert.That(ckpt.Tensors[0].Floats, Is.EqualTo(Pattern(4, 1.0, 2)));
        Assert.That(ckpt.OtherEntries, Is.EquivalentTo(new[] { "epoch = 3", "arch = 'vit'", "best_acc1 = 0.5" }));
    }

    [Test]
    public void PytorchPretrainedVitNamingMapsOntoTimmAndImportsIntoOurVit()
    {
        var read = PretrainedFile.Read(Fixture("pretrained_vit"));
        Assert.That(read.Naming, Is.EqualTo(VitNamingKind.PytorchPretrainedVit));
        var byName = read.Arrays.ToDictionary(a => a.Name);
        Assert.That(byName.Keys, Is.EquivalentTo(new[]
        {
            "cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias", "blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias",
            "blocks.0.attn.proj.weight", "blocks.0.attn.proj.bias", "blocks.0.norm1.weight", "blocks.0.norm1.bias", "blocks.0.mlp.fc1.weight",
            "blocks.0.mlp.fc1.bias", "blocks.0.mlp.fc2.weight", "blocks.0.mlp.fc2.bias", "blocks.0.norm2.weight", "blocks.0.norm2.bias",
            "norm.weight", "norm.bias", "head.weight", "head.bias",
        }));

        // The raw file, in its own naming, to check the fusion: qkv rows are q's rows, then k's, then v's.
        var raw = PyTorchCheckpoint.Read(Fixture("pretrained_vit")).Tensors.ToDictionary(x => x.Name);
        var expectW = raw["transformer.blocks.0.attn.proj_q.weight"].Floats!.Concat(raw["transformer.blocks.0.attn.proj_k.weight"].Floats!)
            .Concat(raw["transformer.blocks.0.attn.proj_v.weight"].Floats!).ToArray();
        Assert.That(byName["blocks.0.attn.qkv.weight"].Shape, Is.EqualTo(new[] { 12, 4 }));
        Assert.That(byName["blocks.0.attn.qkv.weight"].Data, Is.EqualTo(expectW));
        Assert.That(byName["blocks.0.attn.qkv.bias"].Data, Is.EqualTo(raw["transformer.blocks.0.attn.proj_q.bias"].Floats!
            .Concat(raw["transformer.blocks.0.attn.proj_k.bias"].Floats!).Concat(raw["transformer.blocks.0.attn.proj_v.bias"].Floats!)));
        Assert.That(byName["blocks.0.mlp.fc1.weight"].Data, Is.EqualTo(raw["transformer.blocks.0.pwff.fc1.weight"].Floats));

        // Imported into a ViT of the same shape: every spatial parameter comes from the file.
        var cfg = SlsttPresets.Tiny with { ImageSize = 4, PatchSize = 2, Width = 4, Depth = 1, Heads = 2, MlpHidden = 8, TemporalHidden = 4, TemporalHeads = 2 };
        using var model = new SlsttModel(cfg, new Rng(1));
        var report = Weights.ImportTimmVit(model, read.Arrays);
        Assert.That(report.MissingInFile, Is.Empty, report.ToString());
        Assert.That(report.UnusedInFile, Is.EquivalentTo(new[] { "head.weight", "head.bias" }));
        var qkv = model.Spatial.NamedParameters().Single(p => p.Name == "blocks.0.attn.qkv.weight").Value;
        Assert.That(qkv.ToArray(), Is.EqualTo(expectW));
        var patch = model.Spatial.NamedParameters().Single(p => p.Name == "patch_embed.proj.weight").Value;
        Assert.That(patch.ToArray(), Is.EqualTo(raw["patch_embedding.weight"].Floats), "the conv kernel [C, 3, P, P] flattens to the linear patch embedding");
    }

    [TestCase("os_system", "'os.system'")]
    [TestCase("reduce_storage_type", "REDUCE (a call) of 'torch.FloatStorage'")]
    public void HostilePicklesAreRefusedByNameAndNothingRuns(string fixture, string named)
    {
        var ex = Assert.Throws<InvalidDataException>(() => PyTorchCheckpoint.Read(Fixture(fixture)))!;
        Assert.That(ex.Message, Does.Contain("refused to load").And.Contain(named).And.Contain(fixture + ".pth"));
    }

    [TestCase("huge_storage", "claims 1000000000000000 elements")]
    [TestCase("view_out_of_bounds", "reaches past the end of its storage of 4 elements")]
    [TestCase("missing_storage", "is missing from the archive")]
    [TestCase("truncated", "truncated")]
    [TestCase("legacy", "legacy format")]
    [TestCase("big_endian", "big-endian")]
    public void BrokenOrLyingFilesGetAClearError(string fixture, string message)
    {
        var ex = Assert.Throws<InvalidDataException>(() => PyTorchCheckpoint.Read(Fixture(fixture)))!;
        Assert.That(ex.Message, Does.Contain(message).And.Contain(fixture + ".pth"));
    }

    [Test]
    public void AFileThatIsNotACheckpointSaysSo()
    {
        string path = Path.Combine(dir, "notes.pth");
        File.WriteAllText(path, "these are not weights");
        Assert.That(Assert.Throws<InvalidDataException>(() => PyTorchCheckpoint.Read(path))!.Message, Does.Contain("not a PyTorch checkpoint"));
        Assert.Throws<FileNotFoundException>(() => PyTorchCheckpoint.Read(Path.Combine(dir, "absent.pth")));
    }

    /// <summary>Seeded byte flips and truncations of a valid file: only InvalidDataException may come out, never another type.</summary>
    [Test]
    public void MutatedCheckpointsFailCleanly()
    {
        var original = File.ReadAllBytes(Fixture("plain"));
        var rng = new Random(1234);
        string path = Path.Combine(dir, "mutated.pth");
        int rejected = 0, read = 0;
        for (int round = 0; round < 300; round++)
        {
            var bytes = (byte[])original.Clone();
            if (round % 5 == 4) bytes = bytes[..rng.Next(1, bytes.Length)];
            else
                for (int k = 0, flips = 1 + rng.Next(4); k < flips; k++) bytes[rng.Next(bytes.Length)] = (byte)rng.Next(256);
            File.WriteAllBytes(path, bytes);
            try
            {
                PyTorchCheckpoint.Read(path);
                read++;
            }
            catch (InvalidDataException e)
            {
                Assert.That(e.Message, Does.Contain(path), $"round {round}");
                rejected++;
            }
        }
        Assert.That(rejected, Is.GreaterThan(0));
        TestContext.Out.WriteLine($"{rejected} rejected, {read} still readable (flips in unused bytes)");
    }

    /// <summary>The same inside the archive: seeded flips of the pickle's own bytes, re-zipped intact.</summary>
    [Test]
    public void MutatedPicklesFailCleanly()
    {
        using var source = System.IO.Compression.ZipFile.OpenRead(Fixture("plain"));
        var entries = source.Entries.ToDictionary(e => e.FullName, e =>
        {
            using var s = e.Open();
            using var m = new MemoryStream();
            s.CopyTo(m);
            return m.ToArray();
        });
        var pickle = entries["plain/data.pkl"];
        var rng = new Random(99);
        string path = Path.Combine(dir, "pickle.pth");
        int rejected = 0;
        for (int round = 0; round < 300; round++)
        {
            var bytes = (byte[])pickle.Clone();
            for (int k = 0, flips = 1 + rng.Next(3); k < flips; k++) bytes[rng.Next(bytes.Length)] = (byte)rng.Next(256);
            using (var zip = System.IO.Compression.ZipFile.Open(path, System.IO.Compression.ZipArchiveMode.Create))
                foreach (var (name, data) in entries)
                {
                    using var w = zip.CreateEntry(name, System.IO.Compression.CompressionLevel.NoCompression).Open();
                    w.Write(name == "plain/data.pkl" ? bytes : data);
                }
            try
            {
                PyTorchCheckpoint.Read(path);
            }
            catch (InvalidDataException e)
            {
                Assert.That(e.Message, Does.StartWith(path), $"round {round}");
                rejected++;
            }
            File.Delete(path);
        }
        Assert.That(rejected, Is.GreaterThan(100), "most flips of a pickle's opcodes must be caught");
    }

    [Test]
    public void ConvertWritesSafetensorsInTimmNamingAndRefusesHostileFiles()
    {
        string output = Path.Combine(dir, "vit.safetensors");
        var (code, err) = RunCli("convert", Fixture("pretrained_vit"), output);
        Assert.That(code, Is.EqualTo(Entry.Ok), err);
        Assert.That(err, Does.Contain("naming: pytorch-pretrained-vit").And.Contain("blocks.0.attn.qkv.weight [12, 4] ← proj_q, proj_k, proj_v"));
        var names = Safetensors.Read(output).Arrays.Select(a => a.Name).ToList();
        Assert.That(names, Does.Contain("blocks.0.attn.qkv.weight").And.Contain("cls_token"));

        string plainOut = Path.Combine(dir, "plain.safetensors");
        (code, err) = RunCli("convert", Fixture("plain"), plainOut);
        Assert.That(code, Is.EqualTo(Entry.Ok), err);
        Assert.That(err, Does.Contain("not written (I64, safetensors output is float32 only): bn.num_batches_tracked"));

        (code, err) = RunCli("convert", Fixture("os_system"), Path.Combine(dir, "x.safetensors"));
        Assert.That(code, Is.EqualTo(Entry.Failed));
        Assert.That(err, Does.Contain("refused to load").And.Contain("os.system"));
        Assert.That(File.Exists(Path.Combine(dir, "x.safetensors")), Is.False);

        (code, _) = RunCli("convert", Fixture("plain"));
        Assert.That(code, Is.EqualTo(Entry.Usage));
    }

    private static (int Code, string Err) RunCli(params string[] args)
    {
        var (code, _, err) = MicroExpr.Tests.Cli.ConsoleCapture.Run(() => Entry.Run(args));
        return (code, err);
    }
}
