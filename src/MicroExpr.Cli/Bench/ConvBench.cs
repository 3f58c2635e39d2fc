using MicroExpr.Cli.Args;
using MicroExpr.Kernels;
using MicroExpr.Bench;

namespace MicroExpr.Cli.Bench;

/// <summary>
/// <c>bench conv2d</c> and <c>bench conv3d</c>: time <see cref="ConvSimd.Forward"/> (bias added) and, with --backward,
/// the backward (<see cref="ConvSimd.BackwardData"/> + <see cref="ConvSimd.BackwardWeight"/> with db) and one
/// forward + backward. FLOPs: 2·N·Cout·P·Cin·k/G for the forward (P output positions, k kernel taps), the backward
/// counted as twice the forward, forward + backward as three times.
/// </summary>
internal static unsafe class ConvBench
{
    // The options conv2d and conv3d share (declared before the specs: static initialisers run in text order).
    static readonly OptionSpec Cin = new("cin", OptionKind.Int, "input channels", "64", 1);
    static readonly OptionSpec Cout = new("cout", OptionKind.Int, "output channels", "64", 1);
    static readonly OptionSpec Size = new("size", OptionKind.Int, "input height = width", "28", 1);
    static readonly OptionSpec Stride = new("stride", OptionKind.Int, "stride", "1", 1);
    static readonly OptionSpec Pad = new("pad", OptionKind.Int, "zero padding", "1", 0);
    static readonly OptionSpec Backward = new("backward", OptionKind.Switch, "also time the backward (dx, dw, db) and forward + backward");
    static readonly OptionSpec Algo = new("algo", OptionKind.Text,
        "auto, winograd, implicit or im2col: the CPU algorithm to time (auto: the engine's choice; e.g. --compare algo=winograd,implicit)", "auto");

    public static CommandSpec Spec2d { get; } = new("bench conv2d",
        "Time the SIMD 2-d convolution (on Vector512: 3x3 stride 1 by Winograd F(2x2,3x3), other kernels an implicit GEMM over stride phases; else im2col + packed GEMM; 1x1 is a plain GEMM), NCHW, fp32; GFLOP/s count the direct convolution's FLOPs.",
        [
            .. BenchOptions.Common,
            new("batch", OptionKind.Int, "samples N (B*T frames)", "64", 1),
            Cin, Cout, Size,
            new("kernel", OptionKind.Int, "kernel height = width", "3", 1),
            Stride, Pad,
            new("dilation", OptionKind.Int, "dilation", "1", 1),
            new("groups", OptionKind.Int, "groups (cin = cout = groups is depthwise)", "1", 1),
            Backward, Algo,
        ],
        "Peer figures (libtorch 2.10 with oneDNN, performance.md) exist for 3x3 [64,64,28,28]->64 (forward, and\n" +
        "forward + backward), 3x3 [64,128,14,14]->128 and the stem 7x7/2 [64,3,112,112]->64 (--size 112 --kernel 7\n" +
        "--stride 2 --pad 3 --cin 3), at 1 and 2 threads.");

    public static CommandSpec Spec3d { get; } = new("bench conv3d",
        "Time the SIMD 3-d convolution (on Vector512: kd x 3 x 3 stride 1 by Winograd F(2x2,3x3) per depth tap, others an implicit GEMM over stride phases; else im2col + packed GEMM), NCDHW, fp32; GFLOP/s count the direct convolution's FLOPs.",
        [
            .. BenchOptions.Common,
            new("batch", OptionKind.Int, "samples N (clips)", "8", 1),
            Cin, Cout,
            new("depth", OptionKind.Int, "input depth (frames)", "8", 1),
            Size,
            new("kernel", OptionKind.Int, "kernel depth = height = width", "3", 1),
            Stride, Pad, Backward, Algo,
        ],
        "The peer figure (libtorch 2.10, performance.md) is 3x3x3 [8,64,8,28,28]->64 at 1 and 2 threads.");

    public static void Run2d(ParsedArgs a, BenchSettings s, Progress progress, BenchOutcome outcome)
    {
        int n = a.Int("batch", 64), cin = a.Int("cin", 64), cout = a.Int("cout", 64), size = a.Int("size", 28);
        int k = a.Int("kernel", 3), stride = a.Int("stride", 1), pad = a.Int("pad", 1), dil = a.Int("dilation", 1), groups = a.Int("groups", 1);
        var g = Geometry(() => ConvGeometry.Create2d(n, cin, cout, groups, size, size, k, k, stride, stride, pad, pad, dil, dil));
        outcome.Title = $"conv2d  x[{n}, {cin}, {size}, {size}] -> {cout}, {k}x{k}/{stride}, pad {pad}, dilation {dil}, groups {groups}: y[{n}, {cout}, {g.Ho}, {g.Wo}], fp32";
        using var algo = Algorithm.Select(a.Text("algo"), g);
        outcome.Title += $", {algo.Name}";
        Time("conv2d", g, [("batch", n), ("cin", cin), ("cout", cout), ("size", size), ("kernel", k), ("stride", stride), ("pad", pad),
            ("dilation", dil), ("groups", groups)], a.Switch("backward"), s, progress, outcome);
    }

    public static void Run3d(ParsedArgs a, BenchSettings s, Progress progress, BenchOutcome outcome)
    {
        int n = a.Int("batch", 8), cin = a.Int("cin", 64), cout = a.Int("cout", 64), depth = a.Int("depth", 8), size = a.Int("size", 28);
        int k = a.Int("kernel", 3), stride = a.Int("stride", 1), pad = a.Int("pad", 1);
        var g = Geometry(() => ConvGeometry.Create(n, cin, cout, 1, (depth, size, size), (k, k, k), (stride, stride, stride), (pad, pad, pad), (1, 1, 1)));
        outcome.Title = $"conv3d  x[{n}, {cin}, {depth}, {size}, {size}] -> {cout}, {k}x{k}x{k}/{stride}, pad {pad}: y[{n}, {cout}, {g.Do}, {g.Ho}, {g.Wo}], fp32";
        using var algo = Algorithm.Select(a.Text("algo"), g);
        outcome.Title += $", {algo.Name}";
        Time("conv3d", g, [("batch", n), ("cin", cin), ("cout", cout), ("depth", depth), ("size", size), ("kernel", k), ("stride", stride),
            ("pad", pad)], a.Switch("backward"), s, progress, outcome);
    }

    /// <summary>
    /// <c>--algo</c>: the CPU algorithm forced for the timing through <see cref="ConvSimd"/>'s hooks (thread-static, read on the
    /// calling thread where each call chooses its path), restored on dispose. A forced algorithm the shape cannot take is a
    /// usage error naming what it needs.
    /// </summary>
    private sealed class Algorithm : IDisposable
    {
        readonly bool noWinograd = ConvSimd.NoWinograd, noImplicit = ConvSimd.NoImplicit;

        public string Name { get; private set; } = "";

        public static Algorithm Select(string? name, in ConvGeometry g)
        {
            var algo = new Algorithm();
            switch (name ?? "auto")
            {
                case "auto":
                    algo.Name = ConvSimd.UsesWinograd(g) ? "winograd" : ConvSimd.UsesImplicit(g) ? "implicit GEMM" : "im2col + GEMM";
                    return algo;
                case "winograd":
                    if (!ConvSimd.UsesWinograd(g))
                        throw new CliUsageException("--algo winograd: needs Vector512 and a 3x3 (or kd x 3 x 3) kernel at stride 1 and dilation 1 " +
                            $"with at least 8 channels per group in and out; got {g}");
                    algo.Name = "winograd";
                    return algo;
                case "implicit":
                    ConvSimd.NoWinograd = true;
                    if (!ConvSimd.UsesImplicit(g))
                    {
                        algo.Dispose();
                        throw new CliUsageException("--algo implicit: needs Vector512 or Vector256, a kernel that is not 1x1/1 without padding and " +
                            $"at least 8 output channels per group; got {g}");
                    }
                    algo.Name = "implicit GEMM";
                    return algo;
                case "im2col":
                    ConvSimd.NoImplicit = true;
                    algo.Name = "im2col + GEMM";
                    return algo;
                default:
                    throw new CliUsageException($"--algo {name}: expected auto, winograd, implicit or im2col");
            }
        }

        public void Dispose()
        {
            ConvSimd.NoWinograd = noWinograd;
            ConvSimd.NoImplicit = noImplicit;
        }
    }

    private static ConvGeometry Geometry(Func<ConvGeometry> create)
    {
        try
        {
            return create();
        }
        catch (ArgumentException e)
        {
            throw new CliUsageException(e.Message);
        }
    }

    private static void Time(string op, ConvGeometry g, (string, int)[] shape, bool backward, BenchSettings s, Progress progress,
        BenchOutcome outcome)
    {
        int threads = s.Threads;
        using var mem = new NativeBuffers(s.Seed);
        var x = mem.Random(g.XLength);
        var w = mem.Random(g.WLength, -0.1f, 0.1f);
        var b = mem.Random(g.Cout);
        var y = mem.Zeros(g.YLength);
        var ceiling = ReferenceFigures.ComputeCeiling(threads);
        var peer = Peer(op, g, threads);
        double f = g.Flops;
        string counting = "2*N*Cout*P*Cin*k/G FLOPs";

        var fwd = BenchHarness.Measure($"{op} forward", () => ConvSimd.Forward(y.P, x.P, w.P, b.P, g, false, threads), s.Warmup, s.Runs, progress);
        outcome.Results.Add(new BenchResult($"{op}.forward", "forward", shape, threads, fwd, Metric.Gflops, f, counting, ceiling, peer.Forward));
        if (!backward) return;

        var dy = mem.Random(g.YLength);
        var dx = mem.Zeros(g.XLength);
        var dw = mem.Zeros(g.WLength);
        var db = mem.Zeros(g.Cout);
        void Backward()
        {
            ConvSimd.BackwardData(dx.P, dy.P, w.P, g, threads);
            ConvSimd.BackwardWeight(dw.P, db.P, dy.P, x.P, g, threads);
        }
        var bwd = BenchHarness.Measure($"{op} backward", Backward, s.Warmup, s.Runs, progress);
        outcome.Results.Add(new BenchResult($"{op}.backward", "backward (dx + dw + db)", shape, threads, bwd, Metric.Gflops, 2 * f,
            "2x forward FLOPs", ceiling, null));
        var both = BenchHarness.Measure($"{op} forward + backward", () =>
        {
            ConvSimd.Forward(y.P, x.P, w.P, b.P, g, false, threads);
            Backward();
        }, s.Warmup, s.Runs, progress);
        outcome.Results.Add(new BenchResult($"{op}.forward_backward", "forward + backward", shape, threads, both, Metric.Gflops, 3 * f,
            "3x forward FLOPs", ceiling, peer.Both));
    }

    /// <summary>libtorch 2.10 (oneDNN) on the reference machine at exactly these shapes (reference-figures.json, from the table).</summary>
    private static (double? Forward, double? Both) Peer(string op, ConvGeometry g, int threads)
    {
        if (g.Groups != 1 || g.Dh != 1 || g.Dw != 1 || g.Kh != g.Kw || g.Sh != g.Sw || g.Ph != g.Pw || g.H != g.W) return (null, null);
        int[] shape = op == "conv2d"
            ? [g.N, g.Cin, g.H, g.W, g.Cout, g.Kh, g.Sh, g.Ph]
            : [g.N, g.Cin, g.D, g.H, g.W, g.Cout, g.Kh, g.Sh, g.Ph];
        return (ReferenceFigures.Peer(op, shape, threads), ReferenceFigures.Peer(op + "_fwd_bwd", shape, threads));
    }
}
