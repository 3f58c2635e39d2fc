namespace MicroExpr.Cli.Args;

/// <summary>
/// Checks a folder option (<c>--out</c>) before a command spends any time: the folder is created when missing and a
/// probe file is written and deleted in it, so a path that is a file, lies under a file, or cannot be written fails at
/// once with one line naming the option — not minutes later with the path of some file deep inside it.
/// </summary>
internal static class OutFolder
{
    /// <summary>Creates <paramref name="path"/> if needed and checks it can be written; returns its full path.</summary>
    /// <exception cref="IOException">one line: "--OPTION PATH is a file …" or "--OPTION PATH: cannot create or write this folder (why)".</exception>
    public static string Prepare(string option, string path)
    {
        string full = Path.GetFullPath(path);
        if (File.Exists(full))
            throw new IOException($"--{option} {path} is a file; expected a folder (created when missing)");
        string probe = Path.Combine(full, $".microexpr-write-check-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            Directory.CreateDirectory(full);
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"--{option} {path}: cannot create or write this folder ({Why(e, full)})", e);
        }
        return full;
    }

    /// <summary>The reason in words; a file in the way on the path is named.</summary>
    static string Why(Exception e, string full)
    {
        for (var dir = Path.GetDirectoryName(full); !string.IsNullOrEmpty(dir); dir = Path.GetDirectoryName(dir))
        {
            if (File.Exists(dir)) return $"{dir} is a file";
            if (Directory.Exists(dir)) break;
        }
        return e is UnauthorizedAccessException ? "permission denied" : e.Message;
    }
}
