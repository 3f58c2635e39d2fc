using System.Text.RegularExpressions;
using OpenCvSharp;

namespace MicroExpr.Data;

/// <summary>
/// OpenCV's native library (OpenCvSharpExtern, from OpenCvSharp4.official.runtime.linux-x64) and the system libraries it
/// needs: loads it once, and turns a failure to load it into one line that names the missing library and the command
/// that installs it.
/// </summary>
public static partial class OpenCvCheck
{
    /// <summary>OpenCV's version string; throws with the fix (e.g. install libgtk-3-0) when the native library does not load.</summary>
    public static string Version()
    {
        try
        {
            return Cv2.GetVersionString() ?? "unknown";
        }
        catch (Exception e) when (Describe(e) is { } line)
        {
            throw new InvalidOperationException(line, e);
        }
    }

    /// <summary>
    /// Debian/Ubuntu packages of the libraries OpenCvSharpExtern links (<c>ldd libOpenCvSharpExtern.so</c>) that a
    /// minimal system may lack. A library not listed here is still named, with the way to find its package.
    /// </summary>
    static readonly Dictionary<string, string> Packages = new(StringComparer.Ordinal)
    {
        ["libgtk-3.so.0"] = "libgtk-3-0",
        ["libgdk-3.so.0"] = "libgtk-3-0",
        ["libgdk_pixbuf-2.0.so.0"] = "libgdk-pixbuf-2.0-0",
        ["libpangocairo-1.0.so.0"] = "libpangocairo-1.0-0",
        ["libpango-1.0.so.0"] = "libpango-1.0-0",
        ["libatk-1.0.so.0"] = "libatk1.0-0",
        ["libcairo-gobject.so.2"] = "libcairo-gobject2",
        ["libcairo.so.2"] = "libcairo2",
        ["libgio-2.0.so.0"] = "libglib2.0-0",
        ["libgobject-2.0.so.0"] = "libglib2.0-0",
        ["libglib-2.0.so.0"] = "libglib2.0-0",
        ["libfreetype.so.6"] = "libfreetype6",
        ["libharfbuzz.so.0"] = "libharfbuzz0b",
        ["libX11.so.6"] = "libx11-6",
        ["libdrm.so.2"] = "libdrm2",
        ["libpng16.so.16"] = "libpng16-16",
        ["libjpeg.so.62"] = "libjpeg62-turbo",
        ["libgomp.so.1"] = "libgomp1",
        ["libstdc++.so.6"] = "libstdc++6",
    };

    /// <summary>"libgtk-3.so.0: cannot open shared object file" (or "file too short", ...): .NET lists each name dlopen refused.</summary>
    [GeneratedRegex(@"([A-Za-z0-9_.+-]+\.so(?:\.[0-9]+)*): [a-z]")]
    private static partial Regex MissingLibrary();

    /// <summary>
    /// One line for a failure to load OpenCV's native library (a <see cref="DllNotFoundException"/>, or the
    /// <see cref="TypeInitializationException"/> of <c>OpenCvSharp.Internal.NativeMethods</c>, anywhere in the chain of
    /// <paramref name="e"/>, inner and aggregated exceptions included): which library is missing and how to install it.
    /// Null when <paramref name="e"/> is not such a failure.
    /// </summary>
    public static string? Describe(Exception e)
    {
        if (Find(e) is not { } failure) return null;
        var missing = new List<string>();
        for (Exception? x = failure; x != null; x = x.InnerException)
            foreach (Match m in MissingLibrary().Matches(x.Message))
            {
                string name = m.Groups[1].Value;
                // .NET also lists every file name it tried for OpenCvSharpExtern itself; those are not the cause.
                if (!name.Contains("OpenCvSharpExtern", StringComparison.Ordinal) && !missing.Contains(name)) missing.Add(name);
            }
        if (missing.Count == 0)
        {
            return "OpenCV's native library could not be loaded: libOpenCvSharpExtern.so (NuGet package OpenCvSharp4.official.runtime.linux-x64) " +
                   "is not next to the program; rebuild it with 'dotnet build -c Release' (linux-x64 only)";
        }
        var packages = missing.Where(Packages.ContainsKey).Select(n => Packages[n]).Distinct().ToList();
        var unknown = missing.Where(n => !Packages.ContainsKey(n)).ToList();
        string libraries = string.Join(", ", missing);
        string fix = packages.Count > 0 ? $"install it with: sudo apt-get install {string.Join(' ', packages)}" : "";
        if (unknown.Count > 0)
            fix += (fix.Length > 0 ? "; " : "") + $"find the package of {string.Join(", ", unknown)} with 'apt-file search {unknown[0]}' and install it with sudo apt-get install";
        return $"OpenCV's native library needs {libraries}, which is missing (or unusable) on this system; {fix}";
    }

    /// <summary>The load failure in <paramref name="e"/>'s chain: OpenCvSharpExtern's DllNotFoundException, or an OpenCvSharp type initialiser.</summary>
    static Exception? Find(Exception? e)
    {
        for (; e != null; e = e.InnerException)
        {
            if (e is DllNotFoundException && e.Message.Contains("OpenCvSharpExtern", StringComparison.Ordinal)) return e;
            if (e is TypeInitializationException t && (t.TypeName ?? "").StartsWith("OpenCvSharp", StringComparison.Ordinal)) return e;
            if (e is AggregateException a)
                foreach (var inner in a.InnerExceptions)
                    if (Find(inner) is { } found) return found;
        }
        return null;
    }
}
