using System.Text.Json;
using MicroExpr.Cli;
using MicroExpr.Models;
using MicroExpr.Tensors;

namespace MicroExpr.Tests.Cli;

/// <summary>
/// <c>--trace FILE.json</c> (<see cref="OpTrace"/>): valid trace-event JSON with one complete event per backend op of a
/// small step (as many as the profiler counted calls), phases on their own track, ILGPU device events on a stream track.
/// </summary>
[NonParallelizable]
public class TraceTests
{
    [TearDown]
    public void Off()
    {
        OpTrace.Enabled = false;
        OpProfiler.Enabled = false;
        OpProfiler.Reset();
    }

    static JsonElement[] Events(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        Assert.That(doc.RootElement.GetProperty("displayTimeUnit").GetString(), Is.EqualTo("ms"));
        return doc.RootElement.GetProperty("traceEvents").EnumerateArray().Select(e => e.Clone()).ToArray();
    }

    [TestCase("cpu")]
    [TestCase("ilgpu-cpu")]
    public void ATrainingStepGivesOneEventPerOpAndItsPhases(string deviceName)
    {
        var device = Devices.Resolve(deviceName);
        string path = Path.Combine(Path.GetTempPath(), $"trace-{Guid.NewGuid():N}.json");
        try
        {
            using var step = new ModelStep(ModelRegistry.Preset("stt-tiny"), device, batch: 2, frames: 2, train: true);
            OpProfiler.Reset();
            OpTrace.Enabled = true;
            step.Run();
            step.Synchronize();
            long calls = OpProfiler.Snapshot().Sum(s => s.Calls);
            OpTrace.Write(path, "test step");
            OpTrace.Enabled = false;

            var events = Events(path);
            var ops = events.Where(e => e.GetProperty("ph").GetString() == "X" && e.GetProperty("cat").GetString() == "op").ToList();
            Assert.That(ops, Has.Count.EqualTo(calls).And.Count.GreaterThan(20), "one event per timed backend call");
            foreach (var e in ops)
            {
                Assert.That(e.GetProperty("dur").GetDouble(), Is.GreaterThanOrEqualTo(0));
                Assert.That(e.GetProperty("ts").GetDouble(), Is.GreaterThanOrEqualTo(0));
                var args = e.GetProperty("args");
                Assert.That(args.GetProperty("bytes").GetDouble(), Is.GreaterThanOrEqualTo(0));
                Assert.That(args.GetProperty("device").GetString(), Does.StartWith(device.Name));
            }
            Assert.That(ops.Select(e => e.GetProperty("name").GetString()), Does.Contain("gemm").And.Contain("attention_backward"));
            foreach (var e in ops) CheckShapes(e);
            var names = events.Where(e => e.GetProperty("ph").GetString() == "M" && e.GetProperty("name").GetString() == "thread_name")
                .ToDictionary(e => e.GetProperty("tid").GetInt32(), e => e.GetProperty("args").GetProperty("name").GetString());
            var phases = events.Where(e => e.TryGetProperty("cat", out var c) && c.GetString() == "phase").ToList();
            Assert.That(phases.Select(e => e.GetProperty("name").GetString()), Is.EqualTo(new[] { "forward", "backward", "optimizer" }));
            Assert.That(phases.Select(e => names[e.GetProperty("tid").GetInt32()]).Distinct(), Is.EqualTo(new[] { "phases" }));
            var opTracks = ops.Select(e => names[e.GetProperty("tid").GetInt32()]).Distinct().ToList();
            if (device.Kind == DeviceKind.Cpu) Assert.That(opTracks.All(t => t!.StartsWith("thread ", StringComparison.Ordinal)), string.Join(", ", opTracks));
            else Assert.That(opTracks, Does.Contain($"{device.Name} stream"), string.Join(", ", opTracks));
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// An op event's shapes: one name per dims array on each side of "->", every dim ≥ 1, and for the primitives whose
    /// operands must agree, that they do (a GEMM's inner sizes, a Linear's, attention's per-head shapes, a row op's rows).
    /// </summary>
    static void CheckShapes(JsonElement e)
    {
        string name = e.GetProperty("name").GetString()!;
        var args = e.GetProperty("args");
        Assert.That(args.TryGetProperty("operands", out var operands), $"{name}: no operands in {args}");
        var sides = operands.GetString()!.Split("->");
        Assert.That(sides, Has.Length.EqualTo(2), name);
        int[][] Dims(string key) => args.GetProperty(key).EnumerateArray().Select(d => d.EnumerateArray().Select(x => x.GetInt32()).ToArray()).ToArray();
        int Count(string side) => side.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Length;
        var inputs = Dims("input_dims");
        var outputs = Dims("output_dims");
        Assert.That(inputs, Has.Length.EqualTo(Count(sides[0])), $"{name}: {operands}");
        Assert.That(outputs, Has.Length.EqualTo(Count(sides[1])).And.Length.GreaterThan(0), $"{name}: {operands}");
        Assert.That(inputs.Concat(outputs).SelectMany(d => d), Is.All.GreaterThan(0), name);
        switch (name)
        {
            case "gemm" when operands.GetString()!.StartsWith("x, W", StringComparison.Ordinal):
                // Linear: x [rows, in], W [out, in] -> y [rows, out].
                Assert.That(inputs[0][1], Is.EqualTo(inputs[1][1]), $"{name} in features");
                Assert.That(outputs[0], Is.EqualTo(new[] { inputs[0][0], inputs[1][0] }), $"{name} y");
                break;
            case "gemm":
                // A [batch, M, K] (or [batch, K, M] transposed), B [batch, K, N] (or [batch, N, K]) -> C [batch, M, N].
                var ops = operands.GetString()!;
                int m = ops.StartsWith("A^T", StringComparison.Ordinal) ? inputs[0][2] : inputs[0][1];
                int ka = ops.StartsWith("A^T", StringComparison.Ordinal) ? inputs[0][1] : inputs[0][2];
                bool tb = ops.Contains("B^T", StringComparison.Ordinal);
                int kb = tb ? inputs[1][2] : inputs[1][1], n = tb ? inputs[1][1] : inputs[1][2];
                Assert.That(ka, Is.EqualTo(kb), $"{name} K");
                Assert.That(outputs[0], Is.EqualTo(new[] { inputs[0][0], m, n }), $"{name} C");
                break;
            case "attention":
                Assert.That(outputs[0], Is.EqualTo(inputs[0]), "o is q's shape");
                Assert.That(inputs[1], Is.EqualTo(inputs[2]), "k and v");
                Assert.That(outputs[1], Is.EqualTo(inputs[0][..2]), "lse [BH, Nq]");
                break;
            case "softmax" or "layernorm" or "log_softmax":
                Assert.That(outputs[0], Is.EqualTo(inputs[0]), "y is x's shape");
                break;
        }
    }

    [Test]
    public void AnOpEventCarriesThePrimitivesShapes()
    {
        string path = Path.Combine(Path.GetTempPath(), $"trace-{Guid.NewGuid():N}.json");
        try
        {
            var rng = new Rng(5);
            OpProfiler.Reset();
            OpTrace.Enabled = true;
            using (var scope = new TensorScope())
            {
                var x = Tensor.RandN([7, 3, 5], rng);
                _ = Tensor.LayerNorm(x, Tensor.Ones([5]), Tensor.Zeros([5])).ToArray();
            }
            OpTrace.Write(path, "test");
            OpTrace.Enabled = false;
            var norm = Events(path).Single(e => e.GetProperty("ph").GetString() == "X" && e.GetProperty("name").GetString() == "layernorm");
            var args = norm.GetProperty("args");
            Assert.That(args.GetProperty("operands").GetString(), Is.EqualTo("x, gamma, beta -> y, mean, rstd"));
            Assert.That(args.GetProperty("input_dims").ToString(), Is.EqualTo("[[21,5],[5],[5]]"), "the primitive's rows = 7·3, C = 5");
            Assert.That(args.GetProperty("output_dims").ToString(), Is.EqualTo("[[21,5],[21],[21]]"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void AProfileWithoutATraceBuildsNoShapes()
    {
        OpProfiler.Enabled = true;
        Assert.That(OpCost.LayerNorm(4, 8).Shapes, Is.Null, "no trace: no arrays");
        OpTrace.Enabled = true;
        Assert.That(OpCost.LayerNorm(4, 8).Shapes!.ToString(), Is.EqualTo("x[4, 8], gamma[8], beta[8] -> y[4, 8], mean[4], rstd[4]"));
    }

    [Test]
    public void TrainingTracesItsDataForwardBackwardAndOptimizerPhases()
    {
        var rng = new Rng(3);
        var clips = Enumerable.Range(0, 8).Select(i => new MicroExpr.Training.Clip($"s{i % 2}/c{i}", $"s{i % 2}", i % 3,
            Enumerable.Range(0, 2 * 3 * 16 * 16).Select(_ => (float)rng.NextNormal()).ToArray())).ToList();
        var set = new MicroExpr.Training.ClipSet(clips, ["a", "b", "c"], 2, 3, 16, "toy");
        string run = Directory.CreateTempSubdirectory("trace-train").FullName;
        try
        {
            OpProfiler.Reset();
            OpTrace.Enabled = true;
            MicroExpr.Training.LosoRunner.Train(set, new MicroExpr.Training.TrainOptions { Preset = "slstt-tiny", Epochs = 1, BatchSize = 4 },
                Path.Combine(run, "r"), Device.Cpu, resume: false, onlyFold: 0, trainFinal: false);
            var phases = OpTrace.Snapshot().Where(e => e.Category == "phase").Select(e => e.Name).Distinct().ToList();
            Assert.That(phases, Is.EquivalentTo(new[] { "data", "forward", "backward", "optimizer" }));
        }
        finally
        {
            Directory.Delete(run, recursive: true);
        }
    }

    [Test]
    public void OffRecordsNothing()
    {
        OpTrace.Enabled = true;
        OpTrace.Enabled = false;
        OpProfiler.Enabled = true;
        using (var scope = new TensorScope()) _ = (Tensor.RandN([4, 4], new Rng(1)) + 1f).ToArray();
        using (OpTrace.Phase("forward")) { }
        Assert.That(OpTrace.Snapshot(), Is.Empty);
    }

    [Test]
    public void ABadTracePathIsAUsageErrorBeforeAnyWork()
    {
        var (code, _, err) = ConsoleCapture.Run(() => Entry.Run(["bench", "train-step", "--model", "stt-tiny", "--trace", "/no/such/folder/t.json"]));
        Assert.That(code, Is.EqualTo(Entry.Usage));
        Assert.That(err, Does.Contain("--trace /no/such/folder/t.json: the folder /no/such/folder does not exist"));
    }
}
