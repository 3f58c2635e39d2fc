using OpenCvSharp;

namespace MicroExpr.Data;

/// <summary>Loads OpenCV's native library once and says clearly what is missing when it cannot.</summary>
public static class OpenCvCheck
{
    /// <summary>OpenCV's version string; throws with the fix (install libgtk-3-0) when the native library does not load.</summary>
    public static string Version()
    {
        try
        {
            return Cv2.GetVersionString() ?? "unknown";
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException)
        {
            throw new InvalidOperationException(
                "OpenCV's native library (OpenCvSharpExtern) could not be loaded. On Debian/Ubuntu install its dependency: apt-get install -y libgtk-3-0", e);
        }
    }
}
