using System.Runtime.CompilerServices;

namespace Rome.Web.Tests;

/// <summary>
/// `dotnet test Rome.sln` runs the two test assemblies at once on this 2-core machine, and two libtorch processes that
/// each spin a thread per core slow each other badly. The browser tests' process (the app, whose model is small) takes
/// one thread and leaves the other core to the library's tests: a fresh clone's suite took 4 min 22 s so, 4 min 56 s
/// with both on libtorch's default.
/// </summary>
internal static class OneTorchThread
{
    [ModuleInitializer]
    internal static void Set() => TorchSharp.torch.set_num_threads(1);
}
