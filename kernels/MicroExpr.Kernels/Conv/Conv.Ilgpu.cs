using ILGPU;
using ILGPU.Runtime;

namespace MicroExpr.Kernels;

/// <summary>
/// Convolutions on an ILGPU accelerator (2-d and 3-d, groups, stride, padding, dilation; shapes and the GEMM view in
/// <see cref="ConvGeometry"/>) as one tiled implicit GEMM: the im2col matrix is never stored, its tiles are gathered
/// from x (or dy) straight into shared memory. Per group g (grid z), with P = Do·Ho·Wo and Pin = D·H·W:
/// <list type="bullet">
/// <item>forward: y_g[Coutg, N·P] = W_g[Coutg, Kg]·col_g[Kg, N·P] (+ b, ReLU), col from x;</item>
/// <item>backward data: dx_g[Cg, N·Pin] = W_gᵀ (as [Cg, Coutg·kvol])·dcol[Coutg·kvol, N·Pin], where dcol gathers
/// dy[n, co, o] at o = (i + p − k·d) / s when that is a whole in-range position (else 0): a gather, no scatter, no atomics;</item>
/// <item>backward weight: dW_g[Coutg, Kg] = dy_g[Coutg, N·P]·col_gᵀ[N·P, Kg], the deep K = N·P cut into S slices (grid z =
/// g·S + s) written to a scratch [S, Cout·Kg] and added in slice order by a second kernel (deterministic); db by one thread
/// per channel, in order.</item>
/// </list>
/// Tiles as <see cref="GemmKernels"/>' v1: BM×BK of A and BK×BN of B in shared memory (BK = 16), BM = 4·groupY,
/// BN = 4·groupX, a 4×4 register block per thread; out-of-range elements load as zero and stores are guarded.
/// One instance owns its scratch: use it from one stream at a time.
/// </summary>
public sealed class ConvKernels : IDisposable
{
    /// <summary>K-step of the shared-memory tiles: the GEMM's, since the tiles are multiplied by <see cref="GemmTile.MultiplyAdd"/>.</summary>
    public const int TileK = GemmKernels.TileK;
    private const int Block = 4;

    /// <summary>Default reduction depth per dW slice: K = N·P is cut into slices of at least this many positions (at most 64 slices).</summary>
    public const int DefaultWeightSlice = 4096;

    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvArgs> _gemm;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ConvArgs> _sliceSum;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ConvArgs> _bias;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvArgs> _direct;
    private readonly Scratch _scratch;
    private readonly int _group;

    /// <summary>
    /// Default group: 16×16 threads (64×64 output tile) on a GPU; 8×4 (16×32 tile) on ILGPU's CPU accelerator, where
    /// every thread of a group is an OS thread.
    /// </summary>
    public ConvKernels(Accelerator accelerator)
        : this(accelerator, accelerator.AcceleratorType == AcceleratorType.CPU ? 8 : 16, accelerator.AcceleratorType == AcceleratorType.CPU ? 4 : 16) { }

    /// <param name="accelerator">Where the kernels run.</param>
    /// <param name="groupX">Threads per group along the GEMM's columns (output tile 4·groupX wide).</param>
    /// <param name="groupY">Threads per group along the GEMM's rows (output tile 4·groupY tall).</param>
    /// <param name="weightSlice">dW reduction depth per slice (tests make it small to reach the sliced path).</param>
    public ConvKernels(Accelerator accelerator, int groupX, int groupY, int weightSlice = DefaultWeightSlice)
    {
        if (weightSlice < 1) throw new ArgumentOutOfRangeException(nameof(weightSlice), "conv: the dW slice depth must be ≥ 1");
        WeightSlice = weightSlice;
        KernelChecks.GroupSize(accelerator, groupX * groupY, "conv");
        Accelerator = accelerator;
        GroupX = groupX;
        GroupY = groupY;
        _group = KernelGrid.PreferredGroupSize(accelerator);
        _gemm = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvArgs>(ImplicitGemmKernel);
        _sliceSum = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ConvArgs>(SliceSumKernel);
        _bias = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ConvArgs>(BiasGradKernel);
        _direct = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvArgs>(DirectBackwardDataKernel);
        _scratch = new Scratch(accelerator);
    }

    public Accelerator Accelerator { get; }
    public int GroupX { get; }
    public int GroupY { get; }
    public int WeightSlice { get; }

    /// <summary>y = f(conv(x, w) + b); pass an empty view for no bias.</summary>
    public void Forward(AcceleratorStream stream, ArrayView<float> y, ArrayView<float> x, ArrayView<float> w, ArrayView<float> b,
        in ConvGeometry g, bool relu)
    {
        if (g.N == 0) return;
        Check(y, g.YLength, "y"); Check(x, g.XLength, "x"); Check(w, g.WLength, "w");
        bool bias = b.Length > 0;
        if (bias) Check(b, g.Cout, "b");
        var args = new ConvArgs { G = g, Pass = ConvPass.Forward, M = g.Coutg, Cols = g.N * g.P, K = g.Kg, Relu = relu ? 1 : 0, Bias = bias ? 1 : 0, Slices = 1 };
        Launch(stream, y, x, w, bias ? b : y, args, g.Groups);
    }

    /// <summary>
    /// Input channels per group up to which backward data runs as <see cref="DirectBackwardDataKernel"/> (one thread per dx
    /// element, no shared memory) instead of the tiled GEMM, whose BM-row tile would be at least 3/4 empty rows there.
    /// </summary>
    public const int DirectBackwardDataMaxChannels = Block - 1;

    /// <summary>
    /// dx overwritten from dy and w. With at most <see cref="DirectBackwardDataMaxChannels"/> input channels per group
    /// (FDP's rank-scorer Conv3d and its stem's first conv: 1) the direct kernel, which sums the same products in the same
    /// k = (co, tap) order: on ILGPU's CPU accelerator
    /// the tiled launch's group barriers (two per 16-deep K tile, per 32-column tile of N·Pin) made the rank scorer's
    /// backward data half of an fdp-tiny training step (its K = 8·72 = 576 over N·8192 columns and one useful row).
    /// </summary>
    public void BackwardData(AcceleratorStream stream, ArrayView<float> dx, ArrayView<float> dy, ArrayView<float> w, in ConvGeometry g)
    {
        if (g.N == 0) return;
        Check(dx, g.XLength, "dx"); Check(dy, g.YLength, "dy"); Check(w, g.WLength, "w");
        var args = new ConvArgs { G = g, Pass = ConvPass.BackwardData, M = g.Cg, Cols = g.N * g.Pin, K = g.Coutg * g.KVol, Slices = 1 };
        if (g.Cg <= DirectBackwardDataMaxChannels)
        {
            _direct(stream, KernelGrid.For((int)g.XLength, _group, KernelGrid.MaxGroups(Accelerator)), dx, dy, w, args);
            return;
        }
        Launch(stream, dx, dy, w, dx, args, g.Groups);
    }

    /// <summary>dw (and db unless empty) overwritten from dy and x.</summary>
    public void BackwardWeight(AcceleratorStream stream, ArrayView<float> dw, ArrayView<float> db, ArrayView<float> dy, ArrayView<float> x,
        in ConvGeometry g)
    {
        Check(dw, g.WLength, "dw");
        if (db.Length > 0) Check(db, g.Cout, "db");
        Check(dy, g.YLength, "dy"); Check(x, g.XLength, "x");
        long depth = (long)g.N * g.P;
        int slices = (int)Math.Clamp(depth / WeightSlice, 1, 64);
        var args = new ConvArgs { G = g, Pass = ConvPass.BackwardWeight, M = g.Coutg, Cols = g.Kg, K = (int)depth, Slices = slices };
        if (slices == 1)
            Launch(stream, dw, dy, x, dw, args, g.Groups);
        else
        {
            var partial = _scratch.Get(slices * g.WLength);
            Launch(stream, partial, dy, x, dw, args, g.Groups * slices);
            _sliceSum(stream, KernelGrid.For((int)g.WLength, _group, KernelGrid.MaxGroups(Accelerator)), dw, partial, args);
        }
        if (db.Length > 0)
            _bias(stream, KernelGrid.For(g.Cout, _group, KernelGrid.MaxGroups(Accelerator)), db, dy, args);
    }

    private void Launch(AcceleratorStream stream, ArrayView<float> c, ArrayView<float> a, ArrayView<float> b, ArrayView<float> bias,
        ConvArgs args, int z)
    {
        int bm = Block * GroupY, bn = Block * GroupX;
        var grid = new Index3D((args.Cols + bn - 1) / bn, (args.M + bm - 1) / bm, z);
        var config = new KernelConfig(grid, new Index3D(GroupX, GroupY, 1), SharedMemoryConfig.RequestDynamic<float>(TileK * (bm + bn)));
        _gemm(stream, config, c, a, b, bias, args);
    }

    private static void Check(ArrayView<float> v, long needed, string name) => KernelChecks.Length(v, needed, name, "conv");

    /// <summary>
    /// The im2col entry of group grp at row k = (c, kz, ky, kx), column col = (n, oz, oy, ox):
    /// x[n, grp·Cg + c, oz·sd − pd + kz·dd, …], 0 outside the input.
    /// </summary>
    private static float Im2col(ArrayView<float> x, ConvGeometry g, int grp, int k, int col)
    {
        int p = g.Do * g.Ho * g.Wo, kvol = g.Kd * g.Kh * g.Kw, khw = g.Kh * g.Kw, hwo = g.Ho * g.Wo;
        int n = col / p, o = col - n * p;
        int oz = o / hwo, r = o - oz * hwo, oy = r / g.Wo, ox = r - oy * g.Wo;
        int c = k / kvol, t = k - c * kvol, kz = t / khw, t2 = t - kz * khw, ky = t2 / g.Kw, kx = t2 - ky * g.Kw;
        int iz = oz * g.Sd - g.Pd + kz * g.Dd, iy = oy * g.Sh - g.Ph + ky * g.Dh, ix = ox * g.Sw - g.Pw + kx * g.Dw;
        if (iz < 0 || iz >= g.D || iy < 0 || iy >= g.H || ix < 0 || ix >= g.W) return 0f;
        long cin = grp * (g.Cin / g.Groups) + c;
        return x[(((n * (long)g.Cin + cin) * g.D + iz) * g.H + iy) * g.W + ix];
    }

    /// <summary>Output index along one axis fed by input index i through tap k: (i + pad − k·dil) / stride when whole and in range, else −1.</summary>
    private static int Source(int i, int k, int stride, int pad, int dil, int outSize)
    {
        int v = i + pad - k * dil;
        if (v < 0) return -1;
        int o = v / stride;
        return o * stride != v || o >= outSize ? -1 : o;
    }

    /// <summary>A(m, k) of the implicit GEMM of each mode.</summary>
    private static float LoadA(ArrayView<float> a, ArrayView<float> b, ConvArgs p, int grp, int slice, int m, int k)
    {
        var g = p.G;
        int coutg = g.Cout / g.Groups, cg = g.Cin / g.Groups, kvol = g.Kd * g.Kh * g.Kw;
        if (p.Pass == ConvPass.Forward) return b[(long)(grp * coutg + m) * (cg * kvol) + k];                  // W_g[co, k]
        if (p.Pass == ConvPass.BackwardData)
        {
            int co = k / kvol, t = k - co * kvol;                                             // W_g[co, c=m, t]
            return b[((long)(grp * coutg + co) * cg + m) * kvol + t];
        }
        int pp = g.Do * g.Ho * g.Wo, n = k / pp, o = k - n * pp;                               // dy[n, co=m, o]
        return a[((long)n * g.Cout + grp * coutg + m) * pp + o];
    }

    /// <summary>B(k, col) of the implicit GEMM of each mode.</summary>
    private static float LoadB(ArrayView<float> a, ArrayView<float> b, ConvArgs p, int grp, int k, int col)
    {
        var g = p.G;
        if (p.Pass == ConvPass.Forward) return Im2col(a, g, grp, k, col);
        if (p.Pass == ConvPass.BackwardWeight) return Im2col(b, g, grp, col, k);
        // Backward data: dcol[(co, t), (n, i)] = dy[n, co, o(i, t)].
        int kvol = g.Kd * g.Kh * g.Kw, khw = g.Kh * g.Kw, pin = g.D * g.H * g.W, hw = g.H * g.W;
        int co = k / kvol, t = k - co * kvol, kz = t / khw, t2 = t - kz * khw, ky = t2 / g.Kw, kx = t2 - ky * g.Kw;
        int n = col / pin, i = col - n * pin, iz = i / hw, r = i - iz * hw, iy = r / g.W, ix = r - iy * g.W;
        int oz = Source(iz, kz, g.Sd, g.Pd, g.Dd, g.Do);
        int oy = Source(iy, ky, g.Sh, g.Ph, g.Dh, g.Ho);
        int ox = Source(ix, kx, g.Sw, g.Pw, g.Dw, g.Wo);
        if (oz < 0 || oy < 0 || ox < 0) return 0f;
        long cout = grp * (g.Cout / g.Groups) + co;
        return a[(((n * (long)g.Cout + cout) * g.Do + oz) * g.Ho + oy) * g.Wo + ox];
    }

    /// <summary>Stores C(m, col) of each mode (forward adds the bias and applies ReLU; dW slices go to their partial).</summary>
    private static void StoreC(ArrayView<float> c, ArrayView<float> bias, ConvArgs p, int grp, int slice, int m, int col, float acc)
    {
        if (m >= p.M || col >= p.Cols) return;
        var g = p.G;
        if (p.Pass == ConvPass.Forward)
        {
            int pp = g.Do * g.Ho * g.Wo, n = col / pp, o = col - n * pp, co = grp * (g.Cout / g.Groups) + m;
            float v = p.Bias != 0 ? acc + bias[co] : acc;
            if (p.Relu != 0 && v < 0f) v = 0f;
            c[((long)n * g.Cout + co) * pp + o] = v;
        }
        else if (p.Pass == ConvPass.BackwardData)
        {
            int pin = g.D * g.H * g.W, n = col / pin, i = col - n * pin;
            c[((long)n * g.Cin + grp * (g.Cin / g.Groups) + m) * pin + i] = acc;
        }
        else
        {
            long wlen = (long)g.Cout * p.Cols;
            c[slice * wlen + (long)(grp * (g.Cout / g.Groups) + m) * p.Cols + col] = acc;
        }
    }

    /// <summary>One group per BM×BN tile of one group's (and, for dW, one K slice's) implicit GEMM.</summary>
    internal static void ImplicitGemmKernel(ArrayView<float> c, ArrayView<float> a, ArrayView<float> b, ArrayView<float> bias, ConvArgs p)
    {
        int tx = Group.IdxX, ty = Group.IdxY, gx = Group.DimX, gy = Group.DimY;
        int threads = gx * gy, tid = ty * gx + tx;
        int bm = Block * gy, bn = Block * gx;
        var smem = SharedMemory.GetDynamic<float>();
        var aS = smem.SubView(0, TileK * bm);
        var bS = smem.SubView(TileK * bm, TileK * bn);
        int row0 = Grid.IdxY * bm, col0 = Grid.IdxX * bn;
        int z = Grid.IdxZ, grp = z / p.Slices, slice = z - grp * p.Slices;
        int kPer = (p.K + p.Slices - 1) / p.Slices;
        int kBegin = slice * kPer, kEnd = kBegin + kPer < p.K ? kBegin + kPer : p.K;

        var acc = RegisterBlock.Zero;
        for (int k0 = kBegin; k0 < kEnd; k0 += TileK)
        {
            for (int l = tid; l < TileK * bm; l += threads)
            {
                int mm = l / TileK, kk = l - mm * TileK;
                int gm = row0 + mm, gk = k0 + kk;
                aS[kk * bm + mm] = gm < p.M && gk < kEnd ? LoadA(a, b, p, grp, slice, gm, gk) : 0f;
            }
            for (int l = tid; l < TileK * bn; l += threads)
            {
                int kk = l / bn, nn = l - kk * bn;
                int gn = col0 + nn, gk = k0 + kk;
                bS[kk * bn + nn] = gn < p.Cols && gk < kEnd ? LoadB(a, b, p, grp, gk, gn) : 0f;
            }
            Group.Barrier();
            acc = GemmTile.MultiplyAdd(acc, aS, bS, bm, bn, ty, tx, gy, gx);
            Group.Barrier();
        }
        StoreRow(c, bias, p, grp, slice, row0 + ty, col0 + tx, gx, acc.R0);
        StoreRow(c, bias, p, grp, slice, row0 + ty + gy, col0 + tx, gx, acc.R1);
        StoreRow(c, bias, p, grp, slice, row0 + ty + 2 * gy, col0 + tx, gx, acc.R2);
        StoreRow(c, bias, p, grp, slice, row0 + ty + 3 * gy, col0 + tx, gx, acc.R3);
    }

    private static void StoreRow(ArrayView<float> c, ArrayView<float> bias, ConvArgs p, int grp, int slice, int row, int col, int gx, Vec4 acc)
    {
        StoreC(c, bias, p, grp, slice, row, col, acc.X);
        StoreC(c, bias, p, grp, slice, row, col + gx, acc.Y);
        StoreC(c, bias, p, grp, slice, row, col + 2 * gx, acc.Z);
        StoreC(c, bias, p, grp, slice, row, col + 3 * gx, acc.W);
    }

    /// <summary>
    /// Backward data without tiles: dx[n, grp·Cg + m, i] = Σ_k A(m, k)·B(k, (n, i)) over k = (co, tap) in order, acc + a·b
    /// per term as the tiled kernel accumulates; one thread per dx element (grid-stride loop).
    /// </summary>
    internal static void DirectBackwardDataKernel(ArrayView<float> dx, ArrayView<float> dy, ArrayView<float> w, ConvArgs p)
    {
        var g = p.G;
        int pin = g.D * g.H * g.W, cg = g.Cin / g.Groups, stride = KernelGrid.Stride;
        long total = (long)g.N * g.Cin * pin;
        for (long e = Grid.GlobalIndex.X; e < total; e += stride)
        {
            int i = (int)(e % pin);
            long nc = e / pin;
            int cin = (int)(nc % g.Cin), n = (int)(nc / g.Cin);
            int grp = cin / cg, m = cin - grp * cg;
            int col = n * pin + i;
            float acc = 0f;
            for (int k = 0; k < p.K; k++) acc += LoadA(dy, w, p, grp, 0, m, k) * LoadB(dy, w, p, grp, k, col);
            dx[e] = acc;
        }
    }

    /// <summary>dw[i] = Σ_s partial[s, i], slices in order.</summary>
    internal static void SliceSumKernel(ArrayView<float> dw, ArrayView<float> partial, ConvArgs p)
    {
        long wlen = (long)p.G.Cout * p.Cols;
        int stride = KernelGrid.Stride;
        for (int i = Grid.GlobalIndex.X; i < wlen; i += stride)
        {
            float s = 0f;
            for (int sl = 0; sl < p.Slices; sl++) s += partial[sl * wlen + i];
            dw[i] = s;
        }
    }

    /// <summary>db[co] = Σ_n Σ_o dy[n, co, o], one thread per channel, in order.</summary>
    internal static void BiasGradKernel(ArrayView<float> db, ArrayView<float> dy, ConvArgs p)
    {
        var g = p.G;
        int pp = g.Do * g.Ho * g.Wo, stride = KernelGrid.Stride;
        for (int co = Grid.GlobalIndex.X; co < g.Cout; co += stride)
        {
            float s = 0f;
            for (int n = 0; n < g.N; n++)
            {
                long off = ((long)n * g.Cout + co) * pp;
                for (int o = 0; o < pp; o++) s += dy[off + o];
            }
            db[co] = s;
        }
    }

    public void Dispose() => _scratch.Dispose();
}

/// <summary>Which convolution pass an implicit-GEMM launch computes (what its A, B and C are).</summary>
internal enum ConvPass { Forward, BackwardData, BackwardWeight }

/// <summary>The implicit GEMM's arguments: the pass; the GEMM's M, columns and K; Relu, Bias as 0/1 (forward); dW slices.</summary>
internal struct ConvArgs
{
    public ConvGeometry G;
    public ConvPass Pass;
    public int M, Cols, K, Relu, Bias, Slices;
}
