using MicroExpr.Training;

namespace MicroExpr.Tests.Training;

/// <summary>
/// Folds run as separate processes (train --fold K, a Slurm array) write the run's options.json and report files at
/// the same time: concurrent atomic writes to one path must neither throw nor leave a partial file.
/// </summary>
public class AtomicWriteTests
{
    [Test]
    public void ConcurrentWritersOfOnePathAllSucceedAndTheFileIsWhole()
    {
        var dir = Directory.CreateTempSubdirectory("atomic");
        try
        {
            string path = Path.Combine(dir.FullName, "metrics.json");
            var payloads = Enumerable.Range(0, 8).Select(w => new { writer = w, values = Enumerable.Range(0, 2000).Select(i => i * w).ToArray() }).ToArray();
            Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, w =>
            {
                for (int i = 0; i < 40; i++) FoldTrainer.WriteJsonAtomic(path, payloads[w]);
            });
            string text = File.ReadAllText(path);
            Assert.That(payloads.Select(p => System.Text.Json.JsonSerializer.Serialize(p, new System.Text.Json.JsonSerializerOptions { WriteIndented = true })), Does.Contain(text));
            Assert.That(Directory.GetFiles(dir.FullName), Is.EqualTo(new[] { path }), "no temporary file left behind");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
