using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using MicroExpr.Tensors.Cpu;

namespace MicroExpr.Benchmarks;

/// <summary>
/// Fused CPU attention, forward and backward, at 2 threads. Throughput: forward 4·BH·N²·D flop,
/// backward 10·BH·N²·D flop (recompute of S plus dP, dV, dK, dQ). Run with
/// `dotnet run -c Release --project benchmarks/MicroExpr.Benchmarks -- --filter '*AttentionBench*'`.
/// </summary>
[MemoryDiagnoser]
public unsafe class AttentionBench
{
    [Params(2)] public int Threads;

    [ParamsSource(nameof(Shapes))] public (int Bh, int N, int D) Shape;

    public static IEnumerable<(int, int, int)> Shapes => new[] { (192, 50, 64), (12, 197, 64), (12, 1024, 64) };

    float* _q, _k, _v, _o, _lse, _dO, _dq, _dk, _dv;

    static float* Alloc(long count, int seed)
    {
        var p = (float*)NativeMemory.AlignedAlloc((nuint)(count * sizeof(float)), 64);
        var rng = new Random(seed);
        for (long i = 0; i < count; i++) p[i] = (float)(rng.NextDouble() * 2 - 1);
        return p;
    }

    [GlobalSetup]
    public void Setup()
    {
        long n = (long)Shape.Bh * Shape.N * Shape.D;
        _q = Alloc(n, 1); _k = Alloc(n, 2); _v = Alloc(n, 3); _dO = Alloc(n, 4);
        _o = Alloc(n, 5); _dq = Alloc(n, 6); _dk = Alloc(n, 7); _dv = Alloc(n, 8);
        _lse = Alloc((long)Shape.Bh * Shape.N, 9);
        Forward(); // a consistent O and lse for the backward
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var p in new[] { (nint)_q, (nint)_k, (nint)_v, (nint)_o, (nint)_lse, (nint)_dO, (nint)_dq, (nint)_dk, (nint)_dv })
            NativeMemory.AlignedFree((void*)p);
    }

    float Scale => 1f / MathF.Sqrt(Shape.D);

    [Benchmark]
    public void Forward() =>
        AttentionSimd.Forward(_o, _lse, _q, _k, _v, Shape.Bh, Shape.N, Shape.N, Shape.D, Scale, Threads);

    [Benchmark]
    public void Backward() =>
        AttentionSimd.Backward(_dq, _dk, _dv, _q, _k, _v, _o, _dO, _lse, Shape.Bh, Shape.N, Shape.N, Shape.D, Scale, Threads);
}
