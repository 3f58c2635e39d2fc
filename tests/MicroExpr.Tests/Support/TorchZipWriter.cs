using System.IO.Compression;
using System.Text;

namespace MicroExpr.Tests.Support;

/// <summary>
/// Writes a float32 state dict in torch.save's zip layout (PyTorch ≥ 1.6): <c>archive/data.pkl</c> (pickle protocol 2 of an
/// OrderedDict of <c>torch._utils._rebuild_tensor_v2(persistent storage id, offset, size, stride, False, OrderedDict())</c>),
/// <c>archive/data/KEY</c> (raw little-endian storages), <c>archive/byteorder</c> and <c>archive/version</c>: the layout
/// tools/pth-fixtures/make_fixtures.py writes with Python's own pickle, for tests that need a large or shaped checkpoint
/// (e.g. one in B_16_imagenet1k.pth's naming) without a committed file.
/// </summary>
internal static class TorchZipWriter
{
    public static void Write(string path, IReadOnlyList<(string Name, int[] Shape, float[] Data)> tensors)
    {
        using var pkl = new MemoryStream();
        using (var w = new BinaryWriter(pkl, Encoding.UTF8, leaveOpen: true))
        {
            void Op(char c) => w.Write((byte)c);
            void Str(string s)
            {
                var b = Encoding.UTF8.GetBytes(s);
                Op('X');
                w.Write(b.Length);
                w.Write(b);
            }
            void Global(string module, string name)
            {
                Op('c');
                w.Write(Encoding.ASCII.GetBytes(module + "\n" + name + "\n"));
            }
            void Int(int v)
            {
                Op('J');
                w.Write(v);
            }
            void Ints(IEnumerable<int> v)
            {
                Op('(');
                foreach (int x in v) Int(x);
                Op('t');
            }
            w.Write((byte)0x80);
            w.Write((byte)2);
            Global("collections", "OrderedDict");
            Op(')');
            Op('R');
            Op('(');
            for (int i = 0; i < tensors.Count; i++)
            {
                var (name, shape, data) = tensors[i];
                var stride = new int[shape.Length];
                for (int d = shape.Length - 1, s = 1; d >= 0; s *= shape[d], d--) stride[d] = s;
                Str(name);
                Global("torch._utils", "_rebuild_tensor_v2");
                Op('(');
                Op('(');
                Str("storage");
                Global("torch", "FloatStorage");
                Str(i.ToString(System.Globalization.CultureInfo.InvariantCulture));
                Str("cpu");
                Int(data.Length);
                Op('t');
                Op('Q');
                Int(0);
                Ints(shape);
                Ints(stride);
                w.Write((byte)0x89); // NEWFALSE: requires_grad
                Global("collections", "OrderedDict");
                Op(')');
                Op('R');
                Op('t');
                Op('R');
            }
            Op('u');
            Op('.');
        }
        using var fs = File.Create(path);
        using var zip = new ZipArchive(fs, ZipArchiveMode.Create);
        void Entry(string name, ReadOnlySpan<byte> bytes)
        {
            using var e = zip.CreateEntry("archive/" + name, CompressionLevel.NoCompression).Open();
            e.Write(bytes);
        }
        Entry("data.pkl", pkl.ToArray());
        Entry("byteorder", "little"u8);
        for (int i = 0; i < tensors.Count; i++)
        {
            var bytes = new byte[tensors[i].Data.Length * 4];
            Buffer.BlockCopy(tensors[i].Data, 0, bytes, 0, bytes.Length);
            Entry("data/" + i.ToString(System.Globalization.CultureInfo.InvariantCulture), bytes);
        }
        Entry("version", "3\n"u8);
    }

    /// <summary>
    /// A random-initialised ViT in pytorch-pretrained-vit's naming, B_16_imagenet1k.pth's layout (its 24×24 + 1 position
    /// embedding of 384 px, its 1000-class head <c>fc</c>), at width <paramref name="c"/>, depth <paramref name="depth"/>, MLP
    /// <paramref name="mlp"/>, patch 16. Values: seeded normal · 0.02.
    /// </summary>
    public static List<(string Name, int[] Shape, float[] Data)> PretrainedVitB16Layout(int c, int depth, int mlp, int seed, int grid = 24, int classes = 1000)
    {
        var rng = new Random(seed);
        var list = new List<(string, int[], float[])>();
        void Add(string name, params int[] shape)
        {
            int n = shape.Aggregate(1, (a, b) => a * b);
            var data = new float[n];
            for (int i = 0; i < n; i++) data[i] = (float)(0.02 * (rng.NextDouble() * 2 - 1));
            if (name.EndsWith("norm1.weight", StringComparison.Ordinal) || name.EndsWith("norm2.weight", StringComparison.Ordinal) || name == "norm.weight")
                for (int i = 0; i < n; i++) data[i] += 1;
            list.Add((name, shape, data));
        }
        Add("class_token", 1, 1, c);
        Add("positional_embedding.pos_embedding", 1, grid * grid + 1, c);
        Add("patch_embedding.weight", c, 3, 16, 16);
        Add("patch_embedding.bias", c);
        for (int b = 0; b < depth; b++)
        {
            string p = $"transformer.blocks.{b}.";
            foreach (var part in new[] { "proj_q", "proj_k", "proj_v" })
            {
                Add(p + $"attn.{part}.weight", c, c);
                Add(p + $"attn.{part}.bias", c);
            }
            Add(p + "proj.weight", c, c);
            Add(p + "proj.bias", c);
            Add(p + "norm1.weight", c);
            Add(p + "norm1.bias", c);
            Add(p + "pwff.fc1.weight", mlp, c);
            Add(p + "pwff.fc1.bias", mlp);
            Add(p + "pwff.fc2.weight", c, mlp);
            Add(p + "pwff.fc2.bias", c);
            Add(p + "norm2.weight", c);
            Add(p + "norm2.bias", c);
        }
        Add("norm.weight", c);
        Add("norm.bias", c);
        Add("fc.weight", classes, c);
        Add("fc.bias", classes);
        return list;
    }
}
