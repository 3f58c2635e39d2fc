namespace MicroExpr.IO;

/// <summary>
/// Atomic file writes: the content goes to a temporary file in the target's folder, named
/// <c>NAME.PID.GUID.tmp</c> (unique per writer, so two processes or threads writing the same path never share
/// a temporary file), is flushed to disk, and is renamed over the target. A reader sees the old file or the new
/// one, never half of either; the last writer wins. On failure the temporary file is deleted.
/// This one source file is compiled into MicroExpr.Data, MicroExpr.Models and MicroExpr.Training (linked, internal
/// in each): Data and Models share no lower project, and a helper this small is not worth a package of its own.
/// </summary>
internal static class AtomicFile
{
    /// <summary>Suffix of every temporary file; <see cref="IsTemp"/> recognises them.</summary>
    public const string TempSuffix = ".tmp";

    /// <summary>A fresh temporary name beside <paramref name="path"/>: "PATH.PID.GUID.tmp".</summary>
    public static string TempName(string path) => $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}{TempSuffix}";

    /// <summary>True for a name <see cref="TempName"/> made (any writer's).</summary>
    public static bool IsTemp(string path) => path.EndsWith(TempSuffix, StringComparison.Ordinal);

    /// <summary>Writes whatever <paramref name="write"/> puts into the stream, atomically.</summary>
    public static void Write(string path, Action<Stream> write, int bufferSize = 1 << 16)
    {
        using var w = Create(path, bufferSize);
        write(w.Stream);
        w.Commit();
    }

    /// <summary>
    /// Opens a temporary file for <paramref name="path"/>: write to <see cref="Pending.Stream"/>, then
    /// <see cref="Pending.Commit"/> renames it over the target; disposing without committing deletes it.
    /// </summary>
    public static Pending Create(string path, int bufferSize = 1 << 16) => new(path, bufferSize);

    /// <summary>A temporary file on its way to <see cref="Target"/>.</summary>
    public sealed class Pending : IDisposable
    {
        readonly string tmp;
        bool committed;

        internal Pending(string path, int bufferSize)
        {
            Target = path;
            tmp = TempName(path);
            Stream = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize);
        }

        public string Target { get; }
        public FileStream Stream { get; }

        /// <summary>Flushes to disk and renames the temporary file over the target.</summary>
        public void Commit()
        {
            Stream.Flush(flushToDisk: true);
            Stream.Dispose();
            File.Move(tmp, Target, overwrite: true);
            committed = true;
        }

        public void Dispose()
        {
            if (committed) return;
            Stream.Dispose();
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>Writes <paramref name="text"/> as UTF-8 without a byte-order mark, atomically.</summary>
    public static void WriteText(string path, string text) =>
        Write(path, s =>
        {
            using var w = new StreamWriter(s, new System.Text.UTF8Encoding(false), 1 << 16, leaveOpen: true);
            w.Write(text);
        });
}
