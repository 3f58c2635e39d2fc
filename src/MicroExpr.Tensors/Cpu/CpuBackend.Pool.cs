using MicroExpr.Kernels;

namespace MicroExpr.Tensors.Cpu;

public sealed unsafe partial class CpuBackend
{
    private static int* PI(Storage s) => (int*)P(s);

    /// <summary>Planes per thread chunk.</summary>
    private static int PlaneGrain(int planeElements) => Math.Max(1, ParallelGrain / Math.Max(1, planeElements));

    public void MaxPool(Storage y, Storage indices, Storage x, in PoolGeometry g)
    {
        float* yp = P(y), xp = P(x);
        int* ip = PI(indices);
        var geo = g;
        CpuThreads.For(g.Planes, PlaneGrain(g.InPlane), (p0, p1) => PoolCpu.MaxPool(yp, ip, xp, geo, p0, p1));
    }

    public void MaxPoolBackward(Storage dx, Storage dy, Storage indices, in PoolGeometry g)
    {
        float* dxp = P(dx), dyp = P(dy);
        int* ip = PI(indices);
        int m = g.OutPlane, n = g.InPlane;
        CpuThreads.For(g.Planes, PlaneGrain(n), (p0, p1) => PoolCpu.ScatterAdd(dxp, dyp, ip, m, n, p0, p1));
    }

    public void AvgPool(Storage y, Storage x, in PoolGeometry g)
    {
        float* yp = P(y), xp = P(x);
        var geo = g;
        CpuThreads.For(g.Planes, PlaneGrain(g.InPlane), (p0, p1) => PoolCpu.AvgPool(yp, xp, geo, false, p0, p1));
    }

    public void AvgPoolBackward(Storage dx, Storage dy, in PoolGeometry g)
    {
        float* dxp = P(dx), dyp = P(dy);
        var geo = g;
        CpuThreads.For(g.Planes, PlaneGrain(g.InPlane), (p0, p1) => PoolCpu.AvgPool(dyp, dxp, geo, true, p0, p1));
    }

    public void MaxUnpool(Storage y, Storage x, Storage indices, int planes, int m, int n)
    {
        float* yp = P(y), xp = P(x);
        int* ip = PI(indices);
        CpuThreads.For(planes, PlaneGrain(n), (p0, p1) => PoolCpu.Scatter(yp, xp, ip, m, n, p0, p1));
    }

    public void MaxUnpoolBackward(Storage dx, Storage dy, Storage indices, int planes, int m, int n)
    {
        float* dxp = P(dx), dyp = P(dy);
        int* ip = PI(indices);
        CpuThreads.For(planes, PlaneGrain(m), (p0, p1) => PoolCpu.Gather(dxp, dyp, ip, m, n, p0, p1));
    }
}
