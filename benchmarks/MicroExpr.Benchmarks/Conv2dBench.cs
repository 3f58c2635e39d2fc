using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using MicroExpr.Kernels;
using MicroExpr.Tensors.Cpu;

namespace MicroExpr.Benchmarks;

/// <summary>
/// ConvSimd on the shapes (64 frames): 3×3 [64, 64, 28, 28] → 64, 3×3 [64, 128, 14, 14] → 128 and the ResNet stem
/// 7×7/2 [64, 3, 112, 112] → 64; forward, and backward (dx + dw + db) for the first; 2 threads, 64-byte aligned native buffers.
/// FLOPs per forward: 2·N·Cout·Ho·Wo·Cin·kh·kw (backward twice that).
/// </summary>
[MemoryDiagnoser]
public unsafe class Conv2dBench
{
    private const int Threads = 2;
    private ConvGeometry _g;
    private float* _x, _w, _b, _y, _dy, _dx, _dw, _db;

    [Params("3x3 64@28", "3x3 128@14", "stem 7x7/2")]
    public string Shape { get; set; } = "3x3 64@28";

    [GlobalSetup]
    public void Setup()
    {
        _g = Shape switch
        {
            "3x3 128@14" => ConvGeometry.Create2d(64, 128, 128, 1, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1),
            "stem 7x7/2" => ConvGeometry.Create2d(64, 3, 64, 1, 112, 112, 7, 7, 2, 2, 3, 3, 1, 1),
            _ => ConvGeometry.Create2d(64, 64, 64, 1, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1),
        };
        var rng = new Random(42);
        float* Alloc(long n, float lo, float hi)
        {
            var p = (float*)NativeMemory.AlignedAlloc((nuint)n * sizeof(float), 64);
            for (long i = 0; i < n; i++) p[i] = lo + (hi - lo) * (float)rng.NextDouble();
            return p;
        }
        _x = Alloc(_g.XLength, -1f, 1f);
        _w = Alloc(_g.WLength, -0.1f, 0.1f);
        _b = Alloc(_g.Cout, -1f, 1f);
        _y = Alloc(_g.YLength, 0f, 0f);
        _dy = Alloc(_g.YLength, -1f, 1f);
        _dx = Alloc(_g.XLength, 0f, 0f);
        _dw = Alloc(_g.WLength, 0f, 0f);
        _db = Alloc(_g.Cout, 0f, 0f);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var p in new[] { _x, _w, _b, _y, _dy, _dx, _dw, _db }) NativeMemory.AlignedFree(p);
    }

    [Benchmark]
    public void Forward() => ConvSimd.Forward(_y, _x, _w, _b, _g, false, Threads);

    [Benchmark]
    public void Backward()
    {
        ConvSimd.BackwardData(_dx, _dy, _w, _g, Threads);
        ConvSimd.BackwardWeight(_dw, _db, _dy, _x, _g, Threads);
    }
}
