using System.Runtime.CompilerServices;

namespace Rome.Web.Tests;

/// <summary>
/// `dotnet test Rome.sln` runs the two test assemblies at once on this 2-core machine. Two libtorch processes each
/// spinning up a thread per core slow each other about tenfold, so each test process uses one thread: a core each.
/// </summary>
internal static class OneTorchThread
{
    [ModuleInitializer]
    internal static void Set() => TorchSharp.torch.set_num_threads(1);
}
