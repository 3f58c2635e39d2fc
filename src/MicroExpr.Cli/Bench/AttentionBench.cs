using MicroExpr.Cli.Args;
using MicroExpr.Tensors.Cpu;
using MicroExpr.Bench;

namespace MicroExpr.Cli.Bench;

/// <summary>
/// <c>bench attention</c>: times the fused attention <see cref="AttentionSimd.Forward"/> (and, with --backward,
/// <see cref="AttentionSimd.Backward"/>) on Q, K, V of shape [BH, N, D] (self-attention: Nq = Nk = N), scale 1/√D.
/// FLOPs: forward 4·BH·N²·D (Q·Kᵀ and P·V, 2·N²·D each); backward 10·BH·N²·D (recompute Q·Kᵀ, then dV, dP, dQ, dK).
/// Softmax exponentials are not counted. With <c>--packed H</c> the operands are laid out as the model's
/// <see cref="MicroExpr.Tensors.Tensor.SelfAttention"/> reads them: q, k, v inside one qkv [BH/H, N, 3·H·D] buffer
/// (row stride 3·H·D), o written as [BH/H, N, H·D].
/// </summary>
internal static unsafe class AttentionBench
{
    public static CommandSpec Spec { get; } = new("bench attention",
        "Time the fused SIMD attention O = softmax(Q K^T * scale) V over [BH, N, D], scale 1/sqrt(D).",
        [
            .. BenchOptions.Common,
            new("bh", OptionKind.Int, "batch x heads (independent attention problems)", "192", 1),
            new("n", OptionKind.Int, "tokens (queries = keys)", "50", 1),
            new("d", OptionKind.Int, "head dimension", "64", 1),
            new("backward", OptionKind.Switch, "also time the backward pass"),
            new("packed", OptionKind.Int, "H: read q, k, v out of a packed qkv [BH/H, N, 3*H*D] and write o as [BH/H, N, H*D] (the model's layout); 0 = contiguous [BH, N, D]", "0", 0),
            KernelVersions.Option("v1 (naive), v2 (online softmax), v3 (SIMD tiles), v4 (ILGPU)"),
        ],
        "FLOPs are counted as 4*BH*N^2*D forward and 10*BH*N^2*D backward (matrix products only).\n" +
        "The peer figure (libtorch, 72 GFLOP/s) is the forward at 192 x 50 x 64 on 2 threads.");

    public static void Run(ParsedArgs args, BenchSettings s, Progress progress, BenchOutcome outcome)
    {
        int bh = args.Int("bh", 192), n = args.Int("n", 50), d = args.Int("d", 64), heads = args.Int("packed", 0);
        if (heads > 0 && bh % heads != 0) throw new CliUsageException($"--packed {heads}: BH = {bh} is not a multiple of the head count");
        if (KernelVersions.Pick(args, Versions) is { } pick)
        {
            if (heads > 0) throw new CliUsageException("--version runs contiguous [BH, N, D] operands (v1 and v2 read no packed layout); drop --packed");
            RunVersions(pick, bh, n, d, s, progress, outcome);
            return;
        }
        float scale = 1f / MathF.Sqrt(d);
        string layoutName = heads > 0 ? $"packed qkv, H={heads}" : "contiguous";
        outcome.Title = $"attention  O = softmax(Q K^T / sqrt(D)) V, BH={bh} N={n} D={d}, fp32, {layoutName}";
        long size = (long)bh * n * d;
        var layout = heads > 0 ? AttentionLayout.PackedQkv(n, heads, d) : AttentionLayout.Contiguous(n, n, d);
        string suffix = heads > 0 ? ".packed" : "";
        int threads = s.Threads;

        using var mem = new NativeBuffers(s.Seed);
        // Packed: one qkv buffer; q, k and v are the same base pointer, the layout's offsets pick the thirds.
        NativeBuffer? qkv = heads > 0 ? mem.Random(3 * size) : null;
        var q = qkv ?? mem.Random(size);
        var k = qkv ?? mem.Random(size);
        var v = qkv ?? mem.Random(size);
        var o = mem.Zeros(size);
        var lse = mem.Zeros((long)bh * n);
        (string, int)[] shape = heads > 0 ? [("bh", bh), ("n", n), ("d", d), ("h", heads)] : [("bh", bh), ("n", n), ("d", d)];
        var ceiling = ReferenceFigures.ComputeCeiling(threads);
        double n2d = (double)bh * n * n * d;

        var results = outcome.Results;
        var fwd = BenchHarness.Measure("attention forward", () =>
            AttentionSimd.Forward(o.P, lse.P, q.P, k.P, v.P, bh, n, n, d, scale, layout, threads), s.Warmup, s.Runs, progress);
        results.Add(new BenchResult("attention.forward" + suffix, "forward", shape, threads, fwd, Metric.Gflops, 4 * n2d,
            "4*BH*N^2*D", ceiling, ReferenceFigures.AttentionForwardGflops(bh, n, d, threads)));

        if (args.Switch("backward"))
        {
            // O and the log-sum-exp rows come from one forward call, as in training.
            AttentionSimd.Forward(o.P, lse.P, q.P, k.P, v.P, bh, n, n, d, scale, layout, threads);
            var dO = mem.Random(size);
            // Packed: dq, dk, dv land in one dqkv buffer, as in training.
            NativeBuffer? dqkv = heads > 0 ? mem.Zeros(3 * size) : null;
            var dq = dqkv ?? mem.Zeros(size);
            var dk = dqkv ?? mem.Zeros(size);
            var dv = dqkv ?? mem.Zeros(size);
            var bwd = BenchHarness.Measure("attention backward", () =>
                AttentionSimd.Backward(dq.P, dk.P, dv.P, q.P, k.P, v.P, o.P, dO.P, lse.P, bh, n, n, d, scale, layout, threads),
                s.Warmup, s.Runs, progress);
            results.Add(new BenchResult("attention.backward" + suffix, "backward", shape, threads, bwd, Metric.Gflops, 10 * n2d,
                "10*BH*N^2*D", ceiling, null));
        }
    }

    /// <summary>The ids <c>--version</c> takes.</summary>
    public static readonly string[] Versions = ["v1", "v2", "v3", "v4"];

    /// <summary>
    /// <c>--version</c>: v1 <see cref="AttentionNaive"/>, v2 <see cref="AttentionOnline"/>, v3 <see cref="AttentionSimd"/>
    /// and v4 <see cref="AttentionKernels"/> on the same q, k, v, each checked on o against <see cref="AttentionReference"/>
    /// (double accumulators; atol 1e-5, rtol 1e-4, the kernel tests' tolerance) and then timed. v4 on ILGPU's CPU accelerator is
    /// checked on the first two heads and not timed.
    /// </summary>
    static void RunVersions(string pick, int bh, int n, int d, BenchSettings s, Progress progress, BenchOutcome outcome)
    {
        float scale = 1f / MathF.Sqrt(d);
        int threads = s.Threads;
        long size = (long)bh * n * d;
        outcome.Title = $"attention versions  O = softmax(Q K^T / sqrt(D)) V, BH={bh} N={n} D={d}, fp32, contiguous";
        using var mem = new NativeBuffers(s.Seed);
        var q = mem.Random(size);
        var k = mem.Random(size);
        var v = mem.Random(size);
        var o = mem.Zeros(size);
        var lse = mem.Zeros((long)bh * n);
        var qa = new ReadOnlySpan<float>(q.P, (int)size).ToArray();
        var ka = new ReadOnlySpan<float>(k.P, (int)size).ToArray();
        var va = new ReadOnlySpan<float>(v.P, (int)size).ToArray();
        progress.Report("attention: the double reference");
        var reference = new float[size];
        AttentionReference.Forward(reference, new float[bh * n], qa, ka, va, bh, n, n, d, scale);
        progress.Clear();

        float[] Written(Action call)
        {
            new Span<float>(o.P, (int)size).Fill(float.NaN); // an element a version does not write fails the check
            call();
            return new ReadOnlySpan<float>(o.P, (int)size).ToArray();
        }
        const string Dir = "kernels/MicroExpr.Kernels/Attention/";
        var versions = new List<KernelVersion>
        {
            new()
            {
                Id = "v1", Label = "naive: N x N scores materialised, scalar", File = Dir + "Attention.Naive.cs (AttentionNaive.Forward)",
                Call = () => AttentionNaive.Forward(o.P, lse.P, q.P, k.P, v.P, bh, n, n, d, scale, threads),
                Check = () => Written(() => AttentionNaive.Forward(o.P, lse.P, q.P, k.P, v.P, bh, n, n, d, scale, threads)),
            },
            new()
            {
                Id = "v2", Label = $"online softmax, one pass over key tiles of {AttentionOnline.Tile}, scalar", File = Dir + "Attention.Online.cs (AttentionOnline.Forward)",
                Call = () => AttentionOnline.Forward(o.P, lse.P, q.P, k.P, v.P, bh, n, n, d, scale, threads),
                Check = () => Written(() => AttentionOnline.Forward(o.P, lse.P, q.P, k.P, v.P, bh, n, n, d, scale, threads)),
            },
            new()
            {
                Id = "v3", Label = "SIMD tiles: 5 query rows x packed K^T panel, online softmax", File = Dir + "Attention.Simd.cs (AttentionSimd.Forward)",
                Call = () => AttentionSimd.Forward(o.P, lse.P, q.P, k.P, v.P, bh, n, n, d, scale, threads),
                Check = () => Written(() => AttentionSimd.Forward(o.P, lse.P, q.P, k.P, v.P, bh, n, n, d, scale, threads)),
            },
        };
        var owned = new List<IDisposable>();
        try
        {
        if (pick is "all" or "v4")
        {
            var (acc, where, notTimed) = KernelVersions.Ilgpu();
            if (d > AttentionKernels.MaxD)
                throw new CliUsageException($"--d {d}: the ILGPU kernel (v4) takes D <= {AttentionKernels.MaxD}; pick --version v1, v2 or v3");
            var kernels = new AttentionKernels(acc);
            var stream = acc.DefaultStream;
            // On the CPU accelerator only the first heads are checked (a head is independent of the others).
            int checkBh = notTimed == null ? bh : Math.Min(bh, 2);
            var dq = KernelVersions.Upload(acc, qa);
            var dk = KernelVersions.Upload(acc, ka);
            var dv = KernelVersions.Upload(acc, va);
            var dOut = acc.Allocate1D<float>(size);
            var dLse = acc.Allocate1D<float>((long)bh * n);
            owned.AddRange([kernels, dq, dk, dv, dOut, dLse]);
            versions.Add(new()
            {
                Id = "v4", Label = $"ILGPU: warp per query row, 32-key tiles in shared memory ({where})", File = Dir + "Attention.Ilgpu.cs (AttentionKernels.Forward)",
                Call = () => kernels.Forward(stream, dOut.View, dLse.View, dq.View, dk.View, dv.View, bh, n, n, d, scale),
                Synchronize = stream.Synchronize,
                Check = () =>
                {
                    KernelVersions.Poison(dOut);
                    kernels.Forward(stream, dOut.View, dLse.View, dq.View, dk.View, dv.View, checkBh, n, n, d, scale);
                    return KernelVersions.Download(acc, dOut, (long)checkBh * n * d);
                },
                NotTimed = notTimed,
            });
        }
        KernelVersions.Run("attention.forward", pick, versions, reference, 1e-5, 1e-4, Metric.Gflops, 4.0 * bh * n * n * d, "4*BH*N^2*D",
            [("bh", bh), ("n", n), ("d", d)], s, progress, outcome);
        }
        finally
        {
            foreach (var x in owned) x.Dispose();
        }
    }
}
