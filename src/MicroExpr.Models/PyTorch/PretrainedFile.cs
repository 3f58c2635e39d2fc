namespace MicroExpr.Models.PyTorch;

/// <summary>A pretrained file's float tensors in timm's naming, and what was done to get there.</summary>
public sealed record PretrainedArrays(IReadOnlyList<NamedArray> Arrays, VitNamingKind Naming, IReadOnlyList<string> Notes, IReadOnlyList<PthTensor> NonFloat);

/// <summary>
/// Pretrained weights as users have them: a PyTorch checkpoint (<c>.pth</c>, <c>.pt</c>, <c>.bin</c>) read by
/// <see cref="PyTorchCheckpoint"/>, or a safetensors file; in pytorch-pretrained-vit's naming (mapped) or timm's.
/// </summary>
public static class PretrainedFile
{
    /// <summary>Reads <paramref name="path"/>; <paramref name="mapNames"/> maps a recognised non-timm ViT naming onto timm's.</summary>
    public static PretrainedArrays Read(string path, bool mapNames = true)
    {
        var notes = new List<string>();
        List<NamedArray> arrays;
        var nonFloat = new List<PthTensor>();
        if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            arrays = Safetensors.Read(path).Arrays;
        else
        {
            var ckpt = PyTorchCheckpoint.Read(path);
            if (ckpt.StrippedPrefix != null) notes.Add($"stripped the prefix '{ckpt.StrippedPrefix}' from every tensor name");
            foreach (var o in ckpt.OtherEntries) notes.Add($"not a tensor, ignored: {o}");
            arrays = [];
            foreach (var t in ckpt.Tensors)
                if (t.IsFloat) arrays.Add(new NamedArray(t.Name, t.Shape, t.Floats!));
                else nonFloat.Add(t);
        }
        var naming = VitNaming.Detect(arrays.Select(a => a.Name));
        if (mapNames && naming == VitNamingKind.PytorchPretrainedVit)
        {
            notes.Add("pytorch-pretrained-vit naming mapped onto timm's");
            arrays = VitNaming.PytorchPretrainedVitToTimm(arrays, notes);
        }
        return new PretrainedArrays(arrays, naming, notes, nonFloat);
    }
}
