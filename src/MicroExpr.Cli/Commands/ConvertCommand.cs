using System.Globalization;
using MicroExpr.Cli.Args;
using MicroExpr.Models;
using MicroExpr.Models.PyTorch;

namespace MicroExpr.Cli.Commands;

/// <summary><c>microexpr convert IN.pth OUT.safetensors</c>: a PyTorch checkpoint, read safely, as safetensors.</summary>
internal static class ConvertCommand
{
    public static CommandSpec Spec { get; } = new("convert",
        "Convert a PyTorch checkpoint (.pth/.pt, read without Python and without running anything in it) to safetensors.",
        [
            new("naming", OptionKind.Text, "auto (pytorch-pretrained-vit names such as B_16_imagenet1k.pth's are mapped onto timm's, q/k/v fused) | keep", "auto"),
        ],
        "usage: microexpr convert IN.pth OUT.safetensors [--naming auto|keep]\n" +
        "The checkpoint's pickle is read by a restricted unpickler that accepts only what a state dict needs (tensors,\n" +
        "OrderedDicts, PyTorch's storage types) and refuses anything else by name: a file that asks for os.system, or any\n" +
        "other callable, is refused and nothing in it runs. Floating tensors are written as float32 (F16, BF16 and F64\n" +
        "converted); integer tensors (e.g. BatchNorm's num_batches_tracked) are listed and not written. Wrappers such as\n" +
        "'state_dict.' or 'module.' are stripped when every name has them. The result is read by ViT imports in timm's\n" +
        "naming.");

    public static int Run(IReadOnlyList<string> args)
    {
        var positional = args.TakeWhile(a => !a.StartsWith('-')).ToList();
        if (!ArgParser.ParseOrHelp(Spec, args.Skip(positional.Count).ToList(), out var p)) return Entry.Ok;
        if (positional.Count != 2)
            throw new CliUsageException($"convert expects IN and OUT (got {positional.Count} positional argument{(positional.Count == 1 ? "" : "s")}); see 'microexpr convert --help'");
        string input = positional[0], output = positional[1];
        string naming = (p.Text("naming") ?? "auto").ToLowerInvariant();
        if (naming is not ("auto" or "keep")) throw new CliUsageException($"option --naming expects auto or keep, got '{naming}'");
        if (!output.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            throw new CliUsageException($"OUT must end in .safetensors, got '{output}'");
        if (Path.GetFullPath(input) == Path.GetFullPath(output)) throw new CliUsageException("IN and OUT are the same file");

        var read = PretrainedFile.Read(input, mapNames: naming == "auto");
        string? dir = Path.GetDirectoryName(Path.GetFullPath(output));
        if (dir != null && !Directory.Exists(dir)) throw new CliUsageException($"OUT: folder {dir} does not exist");
        Safetensors.Write(output, read.Arrays, new Dictionary<string, string> { ["format"] = "pt", ["converted_from"] = Path.GetFileName(input) });

        long values = read.Arrays.Sum(a => (long)a.Data.Length);
        Console.Error.WriteLine($"convert: {read.Arrays.Count} tensors ({values.ToString("N0", CultureInfo.InvariantCulture)} values) → {output}; naming: {Describe(read.Naming)}");
        foreach (var note in read.Notes) Console.Error.WriteLine($"  {note}");
        foreach (var t in read.NonFloat) Console.Error.WriteLine($"  not written ({t.DType}, safetensors output is float32 only): {t.Name}");
        return Entry.Ok;
    }

    private static string Describe(VitNamingKind k) => k switch
    {
        VitNamingKind.PytorchPretrainedVit => "pytorch-pretrained-vit",
        VitNamingKind.Timm => "timm",
        _ => "not a ViT naming (names kept)",
    };
}
