using MicroExpr.Cli.Args;
using MicroExpr.Tensors;

namespace MicroExpr.Cli.Commands;

/// <summary>--device and --threads, shared by the commands that compute.</summary>
internal static class DeviceOption
{
    public static Device Resolve(ParsedArgs a)
    {
        string name = a.Text("device") ?? "auto";
        if (name is not ("auto" or "cpu" or "cuda" or "ilgpu-cpu"))
            throw new CliUsageException($"--device {name}: expected auto, cpu, cuda or ilgpu-cpu");
        var device = Devices.Resolve(name);
        // A GPU that is there but unusable deserves a line; a machine without one does not.
        if (name == "auto" && Devices.LastFallbackReason is { } why && !why.StartsWith("no CUDA device", StringComparison.Ordinal))
            Console.Error.WriteLine($"microexpr: GPU not used: {why}; running on the CPU");
        return device;
    }
}
