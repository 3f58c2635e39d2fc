using System.Globalization;
using MicroExpr.IO;

namespace MicroExpr.Data.Cache;

/// <summary>Another run holds the cache folder's lock.</summary>
public sealed class CacheInUseException(string message, Exception inner) : IOException(message, inner);

/// <summary>
/// One preprocessing run at a time per cache folder: an exclusive lock on <c>OUT/.preprocess.lock</c>, held for the
/// whole run. The operating system holds it (an advisory <c>flock</c> on Linux and macOS, a share-mode lock on
/// Windows) and releases it when the process ends, however it ends, so a lock left by a killed run never blocks the
/// next. Who holds it (pid, start time) is written beside it, in <c>.preprocess.lock.owner</c>, for the message a
/// second run gets: "OUT is in use by pid N".
/// </summary>
public sealed class CacheLock : IDisposable
{
    public const string FileName = ".preprocess.lock";
    const string OwnerSuffix = ".owner";

    readonly FileStream stream;
    readonly string ownerPath;

    CacheLock(FileStream stream, string ownerPath)
    {
        this.stream = stream;
        this.ownerPath = ownerPath;
    }

    /// <summary>Takes the lock on <paramref name="dir"/> (created if missing) or throws <see cref="IOException"/> naming the holder.</summary>
    public static CacheLock Acquire(string dir)
    {
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, FileName);
        FileStream fs;
        try
        {
            fs = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException)
        {
            string owner = "another process";
            try
            {
                string text = File.ReadAllText(path + OwnerSuffix).Trim();
                if (text.Length > 0 && text.Length < 200) owner = text;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { }
            throw new CacheInUseException($"{Path.GetFullPath(dir)} is in use by {owner} (another 'preprocess' writing this cache); wait for it to finish or choose another --out", e);
        }
        try
        {
            AtomicFile.WriteText(path + OwnerSuffix, string.Create(CultureInfo.InvariantCulture,
                $"pid {Environment.ProcessId} (since {DateTime.UtcNow:yyyy-MM-dd HH:mm:ss} UTC)"));
        }
        catch
        {
            fs.Dispose();
            throw;
        }
        return new CacheLock(fs, path + OwnerSuffix);
    }

    /// <summary>Removes the owner note (while still holding the lock, so it never describes the next holder), then releases.</summary>
    public void Dispose()
    {
        try { File.Delete(ownerPath); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        stream.Dispose();
    }
}
