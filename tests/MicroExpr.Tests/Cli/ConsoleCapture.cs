namespace MicroExpr.Tests.Cli;

/// <summary>Runs a command line in-process with stdout and stderr captured (tests that use it are non-parallelizable).</summary>
internal static class ConsoleCapture
{
    public static (int Code, string Out, string Err) Run(Func<int> run)
    {
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var o = new StringWriter();
        var e = new StringWriter();
        Console.SetOut(o);
        Console.SetError(e);
        try
        {
            return (run(), o.ToString(), e.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
    }
}
