using MicroExpr.Nn;
using MicroExpr.Tensors;

namespace MicroExpr.Models;

/// <summary>
/// A module's parameters and buffers to and from safetensors arrays, by dtype: float32 tensors as F32, int32 as I32,
/// int64 (BatchNorm's <c>num_batches_tracked</c>) as I64.
/// </summary>
public static class StateDict
{
    /// <summary>The array of one tensor under a name.</summary>
    public static NamedArray ToArray(string name, Tensor t) => t.DType switch
    {
        DType.Int32 => NamedArray.Int32(name, t.Shape, t.ToInt32Array()),
        DType.Int64 => NamedArray.Int64(name, t.Shape, t.ToInt64Array()),
        _ => new NamedArray(name, t.Shape, t.ToArray()),
    };

    /// <summary>Every parameter and buffer of the module, named with the prefix.</summary>
    public static IEnumerable<NamedArray> Arrays(Module module, string prefix = "") =>
        module.NamedState().Select(s => ToArray(prefix + s.Name, s.Value));

    /// <summary>
    /// Uploads an array into a tensor of the same shape; an integer array into an integer tensor, a float one into a
    /// float tensor. Throws one line naming the file and the array on a mismatch.
    /// </summary>
    public static void Load(Tensor t, NamedArray a, string file)
    {
        if (!ShapeUtil.SameShape(a.Shape, t.Shape))
            throw new InvalidDataException($"{file}: '{a.Name}' has shape {ShapeUtil.Format(a.Shape)}, the model has {ShapeUtil.Format(t.Shape)}");
        switch (t.DType)
        {
            case DType.Float32 when a.Integers is null:
                t.Backend.Upload(t.Storage, a.Data);
                break;
            case DType.Int64 when a.Integers is not null:
                t.SetInt64(a.Integers);
                break;
            case DType.Int32 when a.Integers is not null:
                t.SetInt32(a.Integers.Select(v => checked((int)v)).ToArray());
                break;
            default:
                throw new InvalidDataException($"{file}: '{a.Name}' is {a.Dtype}; the model's tensor is {t.DType}");
        }
    }
}
