namespace MicroExpr.Cli;

internal static class Entry
{
    public static int Main(string[] args)
    {
        Console.Error.WriteLine("microexpr: commands are being built (devices, bench).");
        return 2;
    }
}
