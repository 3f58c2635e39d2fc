using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using MicroExpr.Tensors.Cpu;

namespace MicroExpr.Benchmarks;

/// <summary>SoftmaxSimd forward and backward on [rows, cols] = [9600, 50], 2 threads, 64-byte aligned native buffers.</summary>
[MemoryDiagnoser]
public unsafe class SoftmaxBench
{
    private const int Rows = 9600, Cols = 50, Threads = 2;
    private float* _x, _y, _dy, _dx;

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(42);
        float* Alloc(float lo, float hi)
        {
            var p = (float*)NativeMemory.AlignedAlloc((nuint)(Rows * Cols) * sizeof(float), 64);
            for (int i = 0; i < Rows * Cols; i++) p[i] = lo + (hi - lo) * (float)rng.NextDouble();
            return p;
        }
        _x = Alloc(-4f, 4f);
        _dy = Alloc(-1f, 1f);
        _y = Alloc(0f, 0f);
        _dx = Alloc(0f, 0f);
        Forward();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        NativeMemory.AlignedFree(_x);
        NativeMemory.AlignedFree(_dy);
        NativeMemory.AlignedFree(_y);
        NativeMemory.AlignedFree(_dx);
    }

    /// <summary>Moves 2·rows·cols·4 bytes (x in, y out).</summary>
    [Benchmark]
    public void Forward() => SoftmaxSimd.Forward(_y, _x, Rows, Cols, Threads);

    /// <summary>Moves 3·rows·cols·4 bytes (y, dy in, dx out).</summary>
    [Benchmark]
    public void Backward() => SoftmaxSimd.Backward(_dx, _y, _dy, Rows, Cols, Threads);
}
