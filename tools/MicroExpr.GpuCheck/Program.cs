using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using MicroExpr.Kernels;
using MicroExpr.Tensors.Cpu;
using MicroExpr.Bench;

namespace MicroExpr.GpuCheck;

/// <summary>
/// Checks every ILGPU kernel against its CPU reference, then times it (llm.c dev/cuda style harness); then times a training
/// step of the bench model and of slstt-b16 (<see cref="TrainStepSuite"/>).
/// Options: <see cref="Usage"/> (--help). --device cpu runs the train step only (the kernel suites need an ILGPU accelerator);
/// --quick is for ILGPU's CPU accelerator, which takes minutes for one slstt-bench step: small kernel shapes, and the train step
/// on slstt-tiny.
/// Kernel timing: warm-up, then the median of ≥ 20 samples; each sample is a batch of launches (sized to take ≥ ~1 ms)
/// between two accelerator.Synchronize() calls.
/// </summary>
public static class Program
{
    private const string Usage = """
        usage: MicroExpr.GpuCheck [--device cuda|ilgpu-cpu|cpu] [--kernels | --train-step] [--quick] [--json] [--runs N]
                                  [--train-models preset:BxT,...] [--steps N] [--warmup N] [--budget-s S] [--threads N]
          --device        cuda (default), ilgpu-cpu (ILGPU's CPU accelerator: slow, use --quick) or cpu (SIMD CPU backend: train step only)
          --kernels       only the kernel suites;  --train-step  only the train step (default: both, kernels first)
          --quick         small kernel shapes; train step on slstt-tiny:2x2, 1 warm-up and 2 timed steps
          --json          also print one JSON line per result
          --runs N        timing samples per kernel (>= 20, default 25)
          --train-models  preset:BxT list (default slstt-bench:8x8,slstt-b16:32x8)
          --steps N       timed training steps (default 20);  --warmup N  warm-up steps at least (default 3, and 2 s)
          --budget-s S    per model, time fewer steps (not under 5) if they would take over S s (default 150; 0: off)
          --threads N     threads of the SIMD CPU backend (default: all logical cores)
        """;

    public static int Main(string[] args)
    {
        string device = "cuda";
        bool quick = false, json = false, kernelsOnly = false, trainOnly = false;
        int runs = 25, steps = -1, warmupSteps = -1;
        double budget = 150;
        string? trainModels = null;
        try
        {
            for (int i = 0; i < args.Length; i++)
            {
                switch (args[i])
                {
                    case "--device" when i + 1 < args.Length: device = args[++i]; break;
                    case "--quick": quick = true; break;
                    case "--json": json = true; break;
                    case "--kernels": kernelsOnly = true; break;
                    case "--train-step": trainOnly = true; break;
                    case "--runs" when i + 1 < args.Length: runs = Math.Max(20, int.Parse(args[++i], CultureInfo.InvariantCulture)); break;
                    case "--steps" when i + 1 < args.Length: steps = Math.Max(1, int.Parse(args[++i], CultureInfo.InvariantCulture)); break;
                    case "--warmup" when i + 1 < args.Length: warmupSteps = Math.Max(0, int.Parse(args[++i], CultureInfo.InvariantCulture)); break;
                    case "--budget-s" when i + 1 < args.Length: budget = Math.Max(0, double.Parse(args[++i], CultureInfo.InvariantCulture)); break;
                    case "--threads" when i + 1 < args.Length: CpuThreads.Count = Math.Max(1, int.Parse(args[++i], CultureInfo.InvariantCulture)); break;
                    case "--train-models" when i + 1 < args.Length: trainModels = args[++i]; break;
                    case "-h" or "--help":
                        Console.WriteLine(Usage);
                        return 0;
                    default:
                        Console.Error.WriteLine($"error: unknown argument '{args[i]}' (try --help)");
                        return 2;
                }
            }
        }
        catch (FormatException e)
        {
            Console.Error.WriteLine($"error: {e.Message} (try --help)");
            return 2;
        }
        if (device is not ("cuda" or "ilgpu-cpu" or "cpu"))
        {
            Console.Error.WriteLine($"error: unknown device '{device}' (cuda, ilgpu-cpu or cpu)");
            return 2;
        }
        if (kernelsOnly && trainOnly)
        {
            Console.Error.WriteLine("error: --kernels and --train-step exclude each other (give neither for both)");
            return 2;
        }
        if (kernelsOnly && device == "cpu")
        {
            Console.Error.WriteLine("error: the kernel suites need an ILGPU accelerator (--device cuda or ilgpu-cpu)");
            return 2;
        }
        IReadOnlyList<TrainModel> models;
        try { models = trainModels is null ? TrainModel.Defaults(quick) : TrainModel.Parse(trainModels); }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }

        var harness = new Harness(device, runs, json, warmup: quick ? 1 : 3);
        if (!trainOnly)
        {
            if (device == "cpu")
            {
                Console.WriteLine("kernel suites skipped: they need an ILGPU accelerator (--device cuda or ilgpu-cpu)");
            }
            else
            {
                int code = RunKernelSuites(harness, device, quick);
                if (code != 0) return code;
            }
        }
        if (!kernelsOnly)
        {
            // The kernel suites' context is gone by now: the engine's own (Devices) is the only one on the GPU.
            TrainStepSuite.Run(harness, device, models, warmupSteps >= 0 ? warmupSteps : quick ? 1 : 3, steps > 0 ? steps : quick ? 2 : 20,
                budget, quick);
        }
        harness.PrintTable();
        return harness.Failures == 0 ? 0 : 1;
    }

    /// <summary>Creates the accelerator, describes it, runs the smoke kernel and every kernel suite, disposes it.</summary>
    private static int RunKernelSuites(Harness harness, string device, bool quick)
    {
        Context context;
        Accelerator accelerator;
        try
        {
            if (device == "cuda")
            {
                context = Context.Create(b => b.Cuda().Optimize(OptimizationLevel.O2));
                if (context.GetCudaDevices().Count == 0)
                {
                    Console.Error.WriteLine("error: no CUDA device found (driver missing or no GPU); run with --device ilgpu-cpu --quick to use the CPU accelerator");
                    context.Dispose();
                    return 3;
                }
                accelerator = context.CreateCudaAccelerator(0);
            }
            else
            {
                // 32-lane warps like a GPU; 8 warps so that the default 256-thread GEMM group fits.
                context = Context.Create(b => b.CPU(new CPUDevice(numThreadsPerWarp: 32, numWarpsPerMultiprocessor: 8,
                    numMultiprocessors: 1)));
                accelerator = context.CreateCPUAccelerator(0);
            }
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"error: cannot create the {device} accelerator: {e.GetType().Name}: {e.Message}");
            return 3;
        }

        using (context)
        using (accelerator)
        {
            Describe(accelerator);
            if (!Smoke(accelerator)) return 4;
            harness.Attach(accelerator);
            try
            {
                Suites.Run(harness, quick);
            }
            finally
            {
                harness.ReleaseBuffers();
                harness.Attach(null);
            }
            return 0;
        }
    }

    private static void Describe(Accelerator a)
    {
        Console.WriteLine($"accelerator: {a.Name} ({a.AcceleratorType})");
        if (a is CudaAccelerator cuda)
            Console.WriteLine($"  compute capability {cuda.Architecture}, PTX ISA {cuda.InstructionSet}, driver {cuda.DriverVersion}, " +
                              $"{cuda.NumMultiprocessors} SMs");
        string memory = a.AcceleratorType == AcceleratorType.CPU ? "host memory" : $"{a.MemorySize / (1024.0 * 1024 * 1024):F1} GiB";
        Console.WriteLine($"  warp size {a.WarpSize}, max threads/group {a.MaxNumThreadsPerGroup}, shared memory/group " +
                          $"{a.MaxSharedMemoryPerGroup / 1024} KiB, memory {memory}");
    }

    private static void SmokeKernel(Index1D i, ArrayView<int> data) => data[i] = 2 * i + 1;

    /// <summary>A tiny auto-grouped kernel: data[i] = 2i + 1 for i &lt; 1000; the sum must be 1000².</summary>
    private static bool Smoke(Accelerator a)
    {
        try
        {
            var kernel = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>>(SmokeKernel);
            using var buf = a.Allocate1D<int>(1000);
            kernel(1000, buf.View);
            a.Synchronize();
            long sum = buf.GetAsArray1D().Sum(v => (long)v);
            Console.WriteLine($"smoke kernel: sum of 2i+1 over 1000 = {sum} ({(sum == 1_000_000 ? "ok" : "WRONG")})");
            return sum == 1_000_000;
        }
        catch (Exception e)
        {
            Console.WriteLine($"smoke kernel FAILED: {e.GetType().Name}: {e.Message}");
            return false;
        }
    }
}

/// <summary>One result row.</summary>
internal sealed record Result(string Name, string Shape, string Check, double MaxErr, double MedianMs, double Rate, string Unit);

/// <summary>One train-step row: check is PASS when the loss is finite and changing; clips/s at the median.</summary>
internal sealed record TrainStepResult(string Name, string Shape, string Check, double MedianMs, double MinMs, double MaxMs, double ClipsPerS, int Batch);

/// <summary>Runs checks and timings, collects the results.</summary>
internal sealed class Harness
{
    private readonly List<Result> _results = new();
    private readonly List<IDisposable> _buffers = new();
    private readonly bool _json;
    private Accelerator? _accelerator;

    private readonly int _warmup;

    public Harness(string device, int runs, bool json, int warmup)
    {
        _warmup = warmup;
        Device = device;
        Runs = runs;
        _json = json;
    }

    /// <summary>The accelerator the kernel suites run on (attached while they run).</summary>
    public Accelerator Accelerator => _accelerator ?? throw new InvalidOperationException("no ILGPU accelerator attached (kernel suites only)");
    public string Device { get; }
    public int Runs { get; }
    public int Failures { get; private set; }

    public void Attach(Accelerator? accelerator) => _accelerator = accelerator;
    public AcceleratorStream Stream => Accelerator.DefaultStream;

    public MemoryBuffer1D<float, Stride1D.Dense> Upload(float[] data)
    {
        var b = Accelerator.Allocate1D(data);
        _buffers.Add(b);
        return b;
    }

    public MemoryBuffer1D<float, Stride1D.Dense> NaNs(long n)
    {
        var a = new float[n];
        Array.Fill(a, float.NaN);
        return Upload(a);
    }

    public float[] Download(MemoryBuffer1D<float, Stride1D.Dense> b)
    {
        Accelerator.Synchronize();
        return b.GetAsArray1D();
    }

    public void ReleaseBuffers()
    {
        if (_buffers.Count == 0) return;
        Accelerator.Synchronize();
        foreach (var b in _buffers) b.Dispose();
        _buffers.Clear();
    }

    public static float[] Random(long n, int seed, float lo = -1f, float hi = 1f)
    {
        var rng = new Random(seed);
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = lo + (hi - lo) * (float)rng.NextDouble();
        return a;
    }

    /// <summary>Max |a − e| and whether every element is finite and within atol + rtol·|e|.</summary>
    public static (bool Pass, double MaxErr) Compare(float[] actual, ReadOnlySpan<float> expected, double atol, double rtol)
    {
        bool pass = actual.Length == expected.Length;
        double max = 0;
        for (int i = 0; i < Math.Min(actual.Length, expected.Length); i++)
        {
            double err = Math.Abs((double)actual[i] - expected[i]);
            if (!double.IsFinite(actual[i])) { pass = false; err = double.PositiveInfinity; }
            else if (err > atol + rtol * Math.Abs(expected[i])) pass = false;
            max = Math.Max(max, err);
        }
        return (pass, max);
    }

    public static (bool Pass, double MaxErr) Compare(float[] actual, double[] expected, double atol, double rtol) =>
        Compare(actual, Array.ConvertAll(expected, v => (float)v), atol, rtol);

    /// <summary>Prints and records a check result (no timing).</summary>
    public void ReportCheck(string name, string shape, (bool Pass, double MaxErr) check)
    {
        if (!check.Pass) Failures++;
        Console.WriteLine($"  check {name,-22} {shape,-30} {(check.Pass ? "PASS" : "FAIL")}  max err {check.MaxErr:E2}");
        Add(new Result(name, shape, check.Pass ? "PASS" : "FAIL", check.MaxErr, double.NaN, double.NaN, ""));
    }

    /// <summary>Times <paramref name="launch"/> (median ms of ≥ 20 synchronised batches) and prints the rate.</summary>
    public void Time(string name, string shape, Action launch, double work, string unit)
    {
        for (int i = 0; i < _warmup; i++) launch();
        Accelerator.Synchronize();
        var sw = Stopwatch.StartNew();
        launch();
        Accelerator.Synchronize();
        double once = sw.Elapsed.TotalMilliseconds;
        int reps = Math.Clamp((int)Math.Ceiling(1.0 / Math.Max(once, 1e-4)), 1, 100);
        var samples = new double[Runs];
        for (int r = 0; r < Runs; r++)
        {
            Accelerator.Synchronize();
            sw.Restart();
            for (int i = 0; i < reps; i++) launch();
            Accelerator.Synchronize();
            samples[r] = sw.Elapsed.TotalMilliseconds / reps;
        }
        Array.Sort(samples);
        double ms = samples[Runs / 2];
        double rate = work / (ms * 1e-3) / 1e9;
        Console.WriteLine($"  time  {name,-22} {shape,-30} {ms,9:F4} ms  {rate,9:F1} {unit}");
        Add(new Result(name, shape, "", double.NaN, ms, rate, unit));
    }

    /// <summary>Records a train-step row (the suite prints its own lines) and prints its JSON line.</summary>
    public void ReportTrainStep(TrainStepResult r, Dictionary<string, object?>? json)
    {
        if (r.Check != "PASS") Failures++;
        _results.Add(new Result(r.Name, r.Shape, r.Check, double.NaN, double.NaN, double.NaN, ""));
        if (!double.IsNaN(r.MedianMs)) _results.Add(new Result(r.Name, r.Shape, "", double.NaN, r.MedianMs, r.ClipsPerS, "clips/s"));
        if (_json && json is not null) Console.WriteLine(JsonSerializer.Serialize(json));
    }

    private void Add(Result r)
    {
        _results.Add(r);
        if (!_json) return;
        var o = new Dictionary<string, object?>
        {
            ["device"] = Device, ["accelerator"] = Accelerator.Name, ["name"] = r.Name, ["shape"] = r.Shape,
        };
        if (r.Check != "") { o["check"] = r.Check; o["max_err"] = r.MaxErr; }
        if (!double.IsNaN(r.MedianMs))
        {
            o["median_ms"] = r.MedianMs;
            o[r.Unit == "GFLOP/s" ? "gflops" : "gbps"] = r.Rate;
        }
        Console.WriteLine(JsonSerializer.Serialize(o));
    }

    public void PrintTable()
    {
        Console.WriteLine();
        Console.WriteLine($"{"kernel",-22} {"shape",-30} {"check",-6} {"max err",9} {"median ms",10} {"rate",16}");
        foreach (var g in _results.GroupBy(r => (r.Name, r.Shape)))
        {
            var check = g.FirstOrDefault(r => r.Check != "");
            var time = g.FirstOrDefault(r => !double.IsNaN(r.MedianMs));
            Console.WriteLine($"{g.Key.Name,-22} {g.Key.Shape,-30} {check?.Check ?? "-",-6} " +
                              $"{(check is null || double.IsNaN(check.MaxErr) ? "-" : check.MaxErr.ToString("E2", CultureInfo.InvariantCulture)),9} " +
                              $"{(time is null ? "-" : time.MedianMs.ToString("F4", CultureInfo.InvariantCulture)),10} " +
                              $"{(time is null ? "-" : $"{time.Rate.ToString("F1", CultureInfo.InvariantCulture)} {time.Unit}"),16}");
        }
        Console.WriteLine(Failures == 0 ? "all checks passed" : $"{Failures} check(s) FAILED");
    }
}
