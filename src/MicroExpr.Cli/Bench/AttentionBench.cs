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
        ],
        "FLOPs are counted as 4*BH*N^2*D forward and 10*BH*N^2*D backward (matrix products only).\n" +
        "The peer figure (libtorch, 72 GFLOP/s) is the forward at 192 x 50 x 64 on 2 threads.");

    public static void Run(ParsedArgs args, BenchSettings s, Progress progress, BenchOutcome outcome)
    {
        int bh = args.Int("bh", 192), n = args.Int("n", 50), d = args.Int("d", 64), heads = args.Int("packed", 0);
        if (heads > 0 && bh % heads != 0) throw new CliUsageException($"--packed {heads}: BH = {bh} is not a multiple of the head count");
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
}
