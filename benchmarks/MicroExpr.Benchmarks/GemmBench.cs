using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using MicroExpr.Tensors.Cpu;

namespace MicroExpr.Benchmarks;

/// <summary>
/// GemmSimd.Run throughput on square sizes and the model's shapes (C[M,N] = op(A)[M,K]·op(B)[K,N], beta = 0), 2 threads.
/// GFLOP/s = 2·M·N·K / mean time. Run: <c>dotnet run -c Release --project benchmarks/MicroExpr.Benchmarks -- --filter '*GemmBench*'</c>.
/// </summary>
[MemoryDiagnoser]
public unsafe class GemmBench
{
    /// <summary>"M×N×K" with an optional suffix: "tA" = A stored [K,M] (weight gradient Xᵀ·dY), "tB" = B stored [N,K].</summary>
    [Params("256x256x256", "512x512x512", "1024x1024x1024",
        "3200x576x192", "3200x768x192", "3200x192x768", "192x576x3200 tA", "3200x192x768 tB")]
    public string Shape { get; set; } = "1024x1024x1024";

    [Params(2)]
    public int Threads { get; set; }

    int _m, _n, _k;
    bool _ta, _tb;
    float* _a, _b, _c;

    [GlobalSetup]
    public void Setup()
    {
        var parts = Shape.Split(' ');
        var dims = parts[0].Split('x').Select(int.Parse).ToArray();
        (_m, _n, _k) = (dims[0], dims[1], dims[2]);
        _ta = parts.Length > 1 && parts[1] == "tA";
        _tb = parts.Length > 1 && parts[1] == "tB";
        _a = Alloc((long)_m * _k, 1);
        _b = Alloc((long)_k * _n, 2);
        _c = Alloc((long)_m * _n, 3);
    }

    static float* Alloc(long n, int seed)
    {
        var p = (float*)NativeMemory.AlignedAlloc((nuint)(n * sizeof(float)), 64);
        var rng = new Random(seed);
        for (long i = 0; i < n; i++) p[i] = (float)rng.NextDouble() - 0.5f;
        return p;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        NativeMemory.AlignedFree(_a);
        NativeMemory.AlignedFree(_b);
        NativeMemory.AlignedFree(_c);
    }

    [Benchmark]
    public void Gemm() => GemmSimd.Run(_c, _n, _a, _ta ? _m : _k, _ta, _b, _tb ? _k : _n, _tb, _m, _n, _k, 1f, 0f, Threads);
}

/// <summary>Batched attention-sized GEMMs: 192 × (Q[50,64]·Kᵀ[64,50]) and 192 × (P[50,50]·V[50,64]), 2 threads.</summary>
[MemoryDiagnoser]
public unsafe class GemmBatchedBench
{
    const int Batch = 192, T = 50, D = 64;
    float* _q, _k, _s, _o;

    [GlobalSetup]
    public void Setup()
    {
        _q = (float*)NativeMemory.AlignedAlloc(Batch * T * D * sizeof(float), 64);
        _k = (float*)NativeMemory.AlignedAlloc(Batch * T * D * sizeof(float), 64);
        _s = (float*)NativeMemory.AlignedAlloc(Batch * T * T * sizeof(float), 64);
        _o = (float*)NativeMemory.AlignedAlloc(Batch * T * D * sizeof(float), 64);
        var rng = new Random(1);
        for (int i = 0; i < Batch * T * D; i++) { _q[i] = (float)rng.NextDouble() - 0.5f; _k[i] = (float)rng.NextDouble() - 0.5f; }
        for (int i = 0; i < Batch * T * T; i++) _s[i] = (float)rng.NextDouble();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        NativeMemory.AlignedFree(_q);
        NativeMemory.AlignedFree(_k);
        NativeMemory.AlignedFree(_s);
        NativeMemory.AlignedFree(_o);
    }

    [Benchmark]
    public void ScoresQKt() => GemmSimd.RunBatched(Batch, _s, T * T, T, _q, T * D, D, false, _k, T * D, D, true, T, T, D, 0.125f, 0f, 2);

    [Benchmark]
    public void ProbsTimesV() => GemmSimd.RunBatched(Batch, _o, T * D, D, _s, T * T, T, false, _k, T * D, D, false, T, D, T, 1f, 0f, 2);
}
