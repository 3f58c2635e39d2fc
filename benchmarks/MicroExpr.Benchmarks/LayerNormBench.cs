using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using MicroExpr.Tensors.Cpu;

namespace MicroExpr.Benchmarks;

/// <summary>LayerNormSimd forward and backward on [rows, C] = [3200, 192], 2 threads, 64-byte aligned native buffers.</summary>
[MemoryDiagnoser]
public unsafe class LayerNormBench
{
    private const int Rows = 3200, C = 192, Threads = 2;
    private float* _x, _y, _dy, _dx, _gamma, _beta, _dgamma, _dbeta, _mean, _rstd;

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(42);
        float* Alloc(int n, float lo, float hi)
        {
            var p = (float*)NativeMemory.AlignedAlloc((nuint)n * sizeof(float), 64);
            for (int i = 0; i < n; i++) p[i] = lo + (hi - lo) * (float)rng.NextDouble();
            return p;
        }
        _x = Alloc(Rows * C, -1f, 1f);
        _dy = Alloc(Rows * C, -1f, 1f);
        _y = Alloc(Rows * C, 0f, 0f);
        _dx = Alloc(Rows * C, 0f, 0f);
        _gamma = Alloc(C, 0.5f, 1.5f);
        _beta = Alloc(C, -1f, 1f);
        _dgamma = Alloc(C, 0f, 0f);
        _dbeta = Alloc(C, 0f, 0f);
        _mean = Alloc(Rows, 0f, 0f);
        _rstd = Alloc(Rows, 0f, 0f);
        Forward();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var p in new[] { _x, _dy, _y, _dx, _gamma, _beta, _dgamma, _dbeta, _mean, _rstd }) NativeMemory.AlignedFree(p);
    }

    /// <summary>Moves 2·rows·C·4 bytes (x in, y out).</summary>
    [Benchmark]
    public void Forward() => LayerNormSimd.Forward(_y, _mean, _rstd, _x, _gamma, _beta, Rows, C, 1e-5f, Threads);

    /// <summary>Moves 3·rows·C·4 bytes (dy, x in, dx out).</summary>
    [Benchmark]
    public void Backward() => LayerNormSimd.Backward(_dx, _dgamma, _dbeta, _dy, _x, _mean, _rstd, _gamma, Rows, C, Threads);
}
