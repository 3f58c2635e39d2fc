using MicroExpr.Kernels;

namespace MicroExpr.Tensors.Cpu;

public sealed unsafe partial class CpuBackend
{
    private static float* PN(Storage? s) => s is null ? null : P(s);

    /// <summary>Channels per thread chunk: enough elements that a chunk is worth a thread.</summary>
    private static int ChannelGrain(int n, int s) => Math.Max(1, ParallelGrain / Math.Max(1, n * s));

    public void BatchNormTrainForward(Storage y, Storage mean, Storage var, Storage x, Storage? gamma, Storage? beta, int n, int c, int s, float eps)
    {
        float* yp = P(y), mp = P(mean), vp = P(var), xp = P(x), gp = PN(gamma), bp = PN(beta);
        CpuThreads.For(c, ChannelGrain(n, s), (c0, c1) => BatchNormSimd.TrainForward(yp, mp, vp, xp, gp, bp, n, c, s, eps, c0, c1));
    }

    public void BatchNormApply(Storage y, Storage x, Storage mean, Storage var, Storage? gamma, Storage? beta, int n, int c, int s, float eps)
    {
        float* yp = P(y), mp = P(mean), vp = P(var), xp = P(x), gp = PN(gamma), bp = PN(beta);
        CpuThreads.For(c, ChannelGrain(n, s), (c0, c1) => BatchNormSimd.Apply(yp, xp, mp, vp, gp, bp, n, c, s, eps, c0, c1));
    }

    public void BatchNormBackward(Storage dx, Storage dgamma, Storage dbeta, Storage dy, Storage x, Storage mean, Storage var, Storage? gamma,
        int n, int c, int s, float eps, bool training)
    {
        float* dxp = P(dx), dgp = P(dgamma), dbp = P(dbeta), dyp = P(dy), xp = P(x), mp = P(mean), vp = P(var), gp = PN(gamma);
        CpuThreads.For(c, ChannelGrain(n, s), (c0, c1) =>
            BatchNormSimd.Backward(dxp, dgp, dbp, dyp, xp, mp, vp, gp, n, c, s, eps, training, c0, c1));
    }
}
