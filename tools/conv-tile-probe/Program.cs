// The conv tile probe (issue 11): sweeps the implicit phase GEMM's register tile over one sample's strips and channel
// blocks, as ConvSimd.ImplicitPlane does (no phase split, no copy into y), with B read through tap offsets, and times
// variants of the offsets and of the tile alternately in one process, as GFLOP of useful work (2·Cout·Cin·k·Do·Ho·Wo)
// per thread CPU-second (clock_gettime CLOCK_THREAD_CPUTIME_ID): on a loaded shared machine only ratios within one run
// mean anything. Kernel6x32 is a copy of the 6×32 tile that kernels/MicroExpr.Kernels/Conv/Conv.Simd.Implicit.cs used
// until its Kernel8x32 (the probe's Kernel8x32, kept in step with it; the copies only add NoInlining) replaced it. The buffers hold random numbers; the variants that move the offsets
// compute wrong numbers with the same work. A calibration first: a register-only FMA loop (the in-process peak) and a
// GEMM-like 6x32 on packed, L1-hot A and B.
//
//   dotnet run -c Release --project tools/conv-tile-probe -- [rounds=7] [CPU-seconds per timing=0.25] [variants=0,1,2,3,4,5,6]
//
// Variants: 0 the real offsets off[k] (the baseline); 1 off[k] rounded down to a multiple of 16 floats (every B load
// 64-byte aligned; kx taps then share lines, a smaller footprint); 2 that plus one float (every load split, the same
// footprint as 1: 2 against 1 is the split-load cost alone); 3 every off[k] = 0 (B hot in L1 and aligned: the tile's
// own ceiling); 4 the aligned layout of kw shifted copies (copy kx holds the planes shifted by kx, rows padded to 16
// floats, planes to 16: every load aligned, a 3x footprint and the wider grid); 5 the 8x32 tile on the real offsets;
// 6 the 8x32 tile with off[k] = 0. Results: the remarks of kernels/MicroExpr.Kernels/Conv/Conv.Simd.cs.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

internal static unsafe class Program
{
    private const int Strip = 32;
    private static readonly string[] Names = ["real off[k]", "off & ~15", "(off & ~15) + 1", "off = 0", "kw copies, aligned", "8x32, real", "8x32, off = 0"];

    [DllImport("libc")] private static extern int clock_gettime(int clock, out Timespec ts);
    private struct Timespec { public long S, Ns; }
    private static double CpuNow() { clock_gettime(3, out var t); return t.S + t.Ns * 1e-9; }

    private sealed record Case(string Name, int Cg, int Coutg, int Kd, int Kh, int Kw, int Do, int Ho, int Wo)
    {
        public double Flops => 2.0 * Coutg * Cg * Kd * Kh * Kw * Do * Ho * Wo;
    }

    private sealed class Layout
    {
        public float* Xph, Cs, W;
        public int* Off;
        public int Ldc, Kg, Coutg, Rows;
    }

    private static float* Alloc(long n)
    {
        var p = (float*)NativeMemory.AlignedAlloc((nuint)(n * 4), 64);
        var r = new Random(1);
        for (long i = 0; i < n; i++) p[i] = (float)(r.NextDouble() - 0.5);
        return p;
    }

    /// <summary>xph, off[k] and the grid outputs of one sample for a variant (see the header); stride 1, padding k/2.</summary>
    private static Layout Build(Case c, int variant, float* w)
    {
        int dph = c.Do + c.Kd - 1, hph = c.Ho + c.Kh - 1, wph = c.Wo + c.Kw - 1, kg = c.Cg * c.Kd * c.Kh * c.Kw;
        bool copies = variant == 4;
        int row = copies ? (wph + 15) / 16 * 16 : wph;
        int plane = dph * hph * row;
        if (copies) plane = (plane + 15) / 16 * 16;
        int q = (c.Do - 1) * hph * row + (c.Ho - 1) * row + c.Wo, ldc = (q + Strip - 1) / Strip * Strip;
        long copy = ((long)c.Cg * plane + ldc + 64 + 15) / 16 * 16;
        int* off = (int*)NativeMemory.AlignedAlloc((nuint)(kg * 4), 64);
        int k = 0;
        for (int ch = 0; ch < c.Cg; ch++)
            for (int kz = 0; kz < c.Kd; kz++)
                for (int ky = 0; ky < c.Kh; ky++)
                    for (int kx = 0; kx < c.Kw; kx++, k++)
                    {
                        int o = ch * plane + kz * hph * row + ky * row;
                        off[k] = variant switch
                        {
                            0 or 5 => o + kx,
                            1 => (o + kx) & ~15,
                            2 => ((o + kx) & ~15) + 1,
                            4 => (int)(kx * copy) + o,
                            _ => 0,
                        };
                    }
        return new Layout
        {
            Xph = Alloc((copies ? c.Kw : 1) * copy + ldc + 64), Off = off, Cs = Alloc((long)c.Coutg * ldc + 8L * ldc), W = w,
            Ldc = ldc, Kg = kg, Coutg = c.Coutg, Rows = variant >= 5 ? 8 : 6,
        };
    }

    /// <summary>Every strip of the grid by every block of output channels, as ConvSimd.ImplicitPlane (a short last block
    /// goes through a 6×32 scratch tile there; here it is stored straight into the spare rows of Cs).</summary>
    private static void Sweep(Layout l)
    {
        int kg = l.Kg, ldc = l.Ldc;
        for (int q0 = 0; q0 < ldc; q0 += Strip)
            for (int co = 0; co < l.Coutg; co += l.Rows)
            {
                int rows = Math.Min(l.Rows, l.Coutg - co);
                if (l.Rows == 8) Kernel8x32(kg, l.W + (long)co * kg, kg, l.Off, l.Xph + q0, l.Cs + q0 + (long)co * ldc, ldc, rows);
                else Kernel6x32(kg, l.W + (long)co * kg, kg, l.Off, l.Xph + q0, l.Cs + q0 + (long)co * ldc, ldc, rows);
            }
    }

    private static string Stats(List<double> v)
    {
        var s = v.OrderBy(x => x).ToArray();
        return $"{s[0]:F3}-{s[^1]:F3} (median {s[s.Length / 2]:F3})";
    }

    private static void Main(string[] args)
    {
        int rounds = args.Length > 0 ? int.Parse(args[0]) : 7;
        double target = args.Length > 1 ? double.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 0.25;
        int[] variants = args.Length > 2 ? args[2].Split(',').Select(int.Parse).ToArray() : [0, 1, 2, 3, 4, 5, 6];
        if (!Avx512F.IsSupported) { Console.WriteLine("needs AVX-512"); return; }
        Calibrate(rounds);
        Case[] cases =
        [
            new("conv2d 3x3 [64, 28, 28] -> 64", 64, 64, 1, 3, 3, 1, 28, 28),
            new("conv2d 3x3 [128, 14, 14] -> 128", 128, 128, 1, 3, 3, 1, 14, 14),
            new("conv3d 3x3x3 [64, 8, 28, 28] -> 64", 64, 64, 3, 3, 3, 8, 28, 28),
        ];
        foreach (var c in cases)
        {
            float* w = Alloc((long)c.Coutg * c.Cg * c.Kd * c.Kh * c.Kw);
            var ls = variants.Select(v => Build(c, v, w)).ToArray();
            foreach (var l in ls) { Sweep(l); Sweep(l); }
            double t0 = CpuNow();
            Sweep(ls[0]);
            int reps = Math.Max(1, (int)(target / (CpuNow() - t0)));
            var gf = ls.Select(_ => new List<double>()).ToArray();
            var ratio = ls.Select(_ => new List<double>()).ToArray();
            for (int r = 0; r < rounds; r++)
            {
                for (int i = 0; i < ls.Length; i++)
                {
                    double s = CpuNow();
                    for (int j = 0; j < reps; j++) Sweep(ls[i]);
                    gf[i].Add(c.Flops * reps / (CpuNow() - s) / 1e9);
                }
                for (int i = 0; i < ls.Length; i++) ratio[i].Add(gf[i][^1] / gf[0][^1]);
            }
            Console.WriteLine($"{c.Name}: {reps} sweeps per timing, {rounds} rounds; useful GFLOP per CPU-second, ratio to variant {variants[0]} in the same round");
            for (int i = 0; i < ls.Length; i++)
                Console.WriteLine($"  {variants[i]} {Names[variants[i]],-20} grid {ls[i].Ldc,5}  {Stats(gf[i])}   ratio {Stats(ratio[i])}");
        }
    }

    private static void Calibrate(int rounds)
    {
        const int kc = 128;
        float* pa = Alloc(6 * kc), pb = Alloc(32 * kc), pc = Alloc(6 * 32);
        for (int i = 0; i < 3; i++) { Peak(1000); Packed(kc, pa, pb, pc); }
        var peak = new List<double>();
        var packed = new List<double>();
        for (int r = 0; r < rounds; r++)
        {
            const long it = 4_000_000;
            double s = CpuNow();
            Peak(it);
            peak.Add(it * 12 * 32 / (CpuNow() - s) / 1e9);
            const int reps = 40000;
            s = CpuNow();
            for (int j = 0; j < reps; j++) Packed(kc, pa, pb, pc);
            packed.Add((double)reps * kc * 12 * 32 / (CpuNow() - s) / 1e9);
        }
        Console.WriteLine($"calibration, GFLOP per CPU-second: FMA loop {Stats(peak)}; packed 6x32, kc = {kc}, L1-hot {Stats(packed)}");
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static Vector512<float> Peak(long n)
    {
        var x = Vector512.Create(1.0001f); var y = Vector512.Create(0.9999f);
        var c0 = Vector512<float>.Zero; var c1 = c0; var c2 = c0; var c3 = c0; var c4 = c0; var c5 = c0;
        var c6 = c0; var c7 = c0; var c8 = c0; var c9 = c0; var c10 = c0; var c11 = c0;
        for (long i = 0; i < n; i++)
        {
            c0 = Avx512F.FusedMultiplyAdd(x, y, c0); c1 = Avx512F.FusedMultiplyAdd(x, y, c1);
            c2 = Avx512F.FusedMultiplyAdd(x, y, c2); c3 = Avx512F.FusedMultiplyAdd(x, y, c3);
            c4 = Avx512F.FusedMultiplyAdd(x, y, c4); c5 = Avx512F.FusedMultiplyAdd(x, y, c5);
            c6 = Avx512F.FusedMultiplyAdd(x, y, c6); c7 = Avx512F.FusedMultiplyAdd(x, y, c7);
            c8 = Avx512F.FusedMultiplyAdd(x, y, c8); c9 = Avx512F.FusedMultiplyAdd(x, y, c9);
            c10 = Avx512F.FusedMultiplyAdd(x, y, c10); c11 = Avx512F.FusedMultiplyAdd(x, y, c11);
        }
        return c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void Packed(int kc, float* pa, float* pb, float* c)
    {
        var c0_0 = Vector512<float>.Zero; var c0_1 = c0_0; var c1_0 = c0_0; var c1_1 = c0_0; var c2_0 = c0_0; var c2_1 = c0_0;
        var c3_0 = c0_0; var c3_1 = c0_0; var c4_0 = c0_0; var c4_1 = c0_0; var c5_0 = c0_0; var c5_1 = c0_0;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(pb); var b1 = Vector512.Load(pb + 16);
            var a0 = Vector512.Create(pa[0]); c0_0 = Avx512F.FusedMultiplyAdd(a0, b0, c0_0); c0_1 = Avx512F.FusedMultiplyAdd(a0, b1, c0_1);
            var a1 = Vector512.Create(pa[1]); c1_0 = Avx512F.FusedMultiplyAdd(a1, b0, c1_0); c1_1 = Avx512F.FusedMultiplyAdd(a1, b1, c1_1);
            var a2 = Vector512.Create(pa[2]); c2_0 = Avx512F.FusedMultiplyAdd(a2, b0, c2_0); c2_1 = Avx512F.FusedMultiplyAdd(a2, b1, c2_1);
            var a3 = Vector512.Create(pa[3]); c3_0 = Avx512F.FusedMultiplyAdd(a3, b0, c3_0); c3_1 = Avx512F.FusedMultiplyAdd(a3, b1, c3_1);
            var a4 = Vector512.Create(pa[4]); c4_0 = Avx512F.FusedMultiplyAdd(a4, b0, c4_0); c4_1 = Avx512F.FusedMultiplyAdd(a4, b1, c4_1);
            var a5 = Vector512.Create(pa[5]); c5_0 = Avx512F.FusedMultiplyAdd(a5, b0, c5_0); c5_1 = Avx512F.FusedMultiplyAdd(a5, b1, c5_1);
            pa += 6; pb += 32;
        }
        Vector512.Store(c0_0, c); Vector512.Store(c0_1, c + 16); Vector512.Store(c1_0, c + 32); Vector512.Store(c1_1, c + 48);
        Vector512.Store(c2_0, c + 64); Vector512.Store(c2_1, c + 80); Vector512.Store(c3_0, c + 96); Vector512.Store(c3_1, c + 112);
        Vector512.Store(c4_0, c + 128); Vector512.Store(c4_1, c + 144); Vector512.Store(c5_0, c + 160); Vector512.Store(c5_1, c + 176);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void Kernel6x32(int kc, float* a, nint lda, int* off, float* b, float* c, nint ldc, int rows)
    {
        float* a0p = a;
        float* a1p = a + Math.Min(1, rows - 1) * lda;
        float* a2p = a + Math.Min(2, rows - 1) * lda;
        float* a3p = a + Math.Min(3, rows - 1) * lda;
        float* a4p = a + Math.Min(4, rows - 1) * lda;
        float* a5p = a + Math.Min(5, rows - 1) * lda;
        var c0_0 = Vector512<float>.Zero; var c0_1 = Vector512<float>.Zero;
        var c1_0 = Vector512<float>.Zero; var c1_1 = Vector512<float>.Zero;
        var c2_0 = Vector512<float>.Zero; var c2_1 = Vector512<float>.Zero;
        var c3_0 = Vector512<float>.Zero; var c3_1 = Vector512<float>.Zero;
        var c4_0 = Vector512<float>.Zero; var c4_1 = Vector512<float>.Zero;
        var c5_0 = Vector512<float>.Zero; var c5_1 = Vector512<float>.Zero;
        for (int p = 0; p < kc; p++)
        {
            float* pb = b + off[p];
            var b0 = Vector512.Load(pb);
            var b1 = Vector512.Load(pb + 16);
            var a0 = Vector512.Create(a0p[p]);
            c0_0 = Avx512F.FusedMultiplyAdd(a0, b0, c0_0);
            c0_1 = Avx512F.FusedMultiplyAdd(a0, b1, c0_1);
            var a1 = Vector512.Create(a1p[p]);
            c1_0 = Avx512F.FusedMultiplyAdd(a1, b0, c1_0);
            c1_1 = Avx512F.FusedMultiplyAdd(a1, b1, c1_1);
            var a2 = Vector512.Create(a2p[p]);
            c2_0 = Avx512F.FusedMultiplyAdd(a2, b0, c2_0);
            c2_1 = Avx512F.FusedMultiplyAdd(a2, b1, c2_1);
            var a3 = Vector512.Create(a3p[p]);
            c3_0 = Avx512F.FusedMultiplyAdd(a3, b0, c3_0);
            c3_1 = Avx512F.FusedMultiplyAdd(a3, b1, c3_1);
            var a4 = Vector512.Create(a4p[p]);
            c4_0 = Avx512F.FusedMultiplyAdd(a4, b0, c4_0);
            c4_1 = Avx512F.FusedMultiplyAdd(a4, b1, c4_1);
            var a5 = Vector512.Create(a5p[p]);
            c5_0 = Avx512F.FusedMultiplyAdd(a5, b0, c5_0);
            c5_1 = Avx512F.FusedMultiplyAdd(a5, b1, c5_1);
        }
        Vector512.Store(c0_0, c); Vector512.Store(c0_1, c + 16);
        if (rows > 1) { Vector512.Store(c1_0, c + ldc); Vector512.Store(c1_1, c + ldc + 16); }
        if (rows > 2) { Vector512.Store(c2_0, c + 2 * ldc); Vector512.Store(c2_1, c + 2 * ldc + 16); }
        if (rows > 3) { Vector512.Store(c3_0, c + 3 * ldc); Vector512.Store(c3_1, c + 3 * ldc + 16); }
        if (rows > 4) { Vector512.Store(c4_0, c + 4 * ldc); Vector512.Store(c4_1, c + 4 * ldc + 16); }
        if (rows > 5) { Vector512.Store(c5_0, c + 5 * ldc); Vector512.Store(c5_1, c + 5 * ldc + 16); }
    }
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void Kernel8x32(int kc, float* a, nint lda, int* off, float* b, float* c, nint ldc, int rows)
    {
        float* a0p = a;
        float* a1p = a + Math.Min(1, rows - 1) * lda;
        float* a2p = a + Math.Min(2, rows - 1) * lda;
        float* a3p = a + Math.Min(3, rows - 1) * lda;
        float* a4p = a + Math.Min(4, rows - 1) * lda;
        float* a5p = a + Math.Min(5, rows - 1) * lda;
        float* a6p = a + Math.Min(6, rows - 1) * lda;
        float* a7p = a + Math.Min(7, rows - 1) * lda;
        var c0_0 = Vector512<float>.Zero; var c0_1 = Vector512<float>.Zero;
        var c1_0 = Vector512<float>.Zero; var c1_1 = Vector512<float>.Zero;
        var c2_0 = Vector512<float>.Zero; var c2_1 = Vector512<float>.Zero;
        var c3_0 = Vector512<float>.Zero; var c3_1 = Vector512<float>.Zero;
        var c4_0 = Vector512<float>.Zero; var c4_1 = Vector512<float>.Zero;
        var c5_0 = Vector512<float>.Zero; var c5_1 = Vector512<float>.Zero;
        var c6_0 = Vector512<float>.Zero; var c6_1 = Vector512<float>.Zero;
        var c7_0 = Vector512<float>.Zero; var c7_1 = Vector512<float>.Zero;
        for (int p = 0; p < kc; p++)
        {
            float* pb = b + off[p];
            var b0 = Vector512.Load(pb);
            var b1 = Vector512.Load(pb + 16);
            var a0 = Vector512.Create(a0p[p]);
            c0_0 = Avx512F.FusedMultiplyAdd(a0, b0, c0_0);
            c0_1 = Avx512F.FusedMultiplyAdd(a0, b1, c0_1);
            var a1 = Vector512.Create(a1p[p]);
            c1_0 = Avx512F.FusedMultiplyAdd(a1, b0, c1_0);
            c1_1 = Avx512F.FusedMultiplyAdd(a1, b1, c1_1);
            var a2 = Vector512.Create(a2p[p]);
            c2_0 = Avx512F.FusedMultiplyAdd(a2, b0, c2_0);
            c2_1 = Avx512F.FusedMultiplyAdd(a2, b1, c2_1);
            var a3 = Vector512.Create(a3p[p]);
            c3_0 = Avx512F.FusedMultiplyAdd(a3, b0, c3_0);
            c3_1 = Avx512F.FusedMultiplyAdd(a3, b1, c3_1);
            var a4 = Vector512.Create(a4p[p]);
            c4_0 = Avx512F.FusedMultiplyAdd(a4, b0, c4_0);
            c4_1 = Avx512F.FusedMultiplyAdd(a4, b1, c4_1);
            var a5 = Vector512.Create(a5p[p]);
            c5_0 = Avx512F.FusedMultiplyAdd(a5, b0, c5_0);
            c5_1 = Avx512F.FusedMultiplyAdd(a5, b1, c5_1);
            var a6 = Vector512.Create(a6p[p]);
            c6_0 = Avx512F.FusedMultiplyAdd(a6, b0, c6_0);
            c6_1 = Avx512F.FusedMultiplyAdd(a6, b1, c6_1);
            var a7 = Vector512.Create(a7p[p]);
            c7_0 = Avx512F.FusedMultiplyAdd(a7, b0, c7_0);
            c7_1 = Avx512F.FusedMultiplyAdd(a7, b1, c7_1);
        }
        Vector512.Store(c0_0, c); Vector512.Store(c0_1, c + 16);
        if (rows > 1) { Vector512.Store(c1_0, c + ldc); Vector512.Store(c1_1, c + ldc + 16); }
        if (rows > 2) { Vector512.Store(c2_0, c + 2 * ldc); Vector512.Store(c2_1, c + 2 * ldc + 16); }
        if (rows > 3) { Vector512.Store(c3_0, c + 3 * ldc); Vector512.Store(c3_1, c + 3 * ldc + 16); }
        if (rows > 4) { Vector512.Store(c4_0, c + 4 * ldc); Vector512.Store(c4_1, c + 4 * ldc + 16); }
        if (rows > 5) { Vector512.Store(c5_0, c + 5 * ldc); Vector512.Store(c5_1, c + 5 * ldc + 16); }
        if (rows > 6) { Vector512.Store(c6_0, c + 6 * ldc); Vector512.Store(c6_1, c + 6 * ldc + 16); }
        if (rows > 7) { Vector512.Store(c7_0, c + 7 * ldc); Vector512.Store(c7_1, c + 7 * ldc + 16); }
    }
}
