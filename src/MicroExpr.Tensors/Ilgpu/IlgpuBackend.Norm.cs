using ILGPU;
using MicroExpr.Kernels;

namespace MicroExpr.Tensors.Ilgpu;

public sealed partial class IlgpuBackend
{
    private BatchNormIlgpu? batchNorm;

    private BatchNormIlgpu BatchNormK => batchNorm ??= new BatchNormIlgpu(Accelerator, KernelGrid.PreferredGroupSize(Accelerator));

    private static ArrayView<float>? VN(Storage? s) => s is null ? null : V(s);

    public void BatchNormTrainForward(Storage y, Storage mean, Storage var, Storage x, Storage? gamma, Storage? beta, int n, int c, int s, float eps)
    {
        BatchNormK.TrainForward(stream, V(y), V(mean), V(var), V(x), VN(gamma), VN(beta), n, c, s, eps);
    }

    public void BatchNormApply(Storage y, Storage x, Storage mean, Storage var, Storage? gamma, Storage? beta, int n, int c, int s, float eps)
    {
        BatchNormK.Apply(stream, V(y), V(x), V(mean), V(var), VN(gamma), VN(beta), n, c, s, eps);
    }

    public void BatchNormBackward(Storage dx, Storage dgamma, Storage dbeta, Storage dy, Storage x, Storage mean, Storage var, Storage? gamma,
        int n, int c, int s, float eps, bool training)
    {
        BatchNormK.Backward(stream, V(dx), V(dgamma), V(dbeta), V(dy), V(x), V(mean), V(var), VN(gamma), n, c, s, eps, training);
    }
}
