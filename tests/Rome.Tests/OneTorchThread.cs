using System.Runtime.CompilerServices;

namespace Rome.Tests;

/// <summary>
/// `dotnet test Rome.sln` runs the two test assemblies at once on this 2-core machine; the library's tests run two at a
/// time (xunit.runner.json), so each takes one libtorch thread rather than one per core: threads that outnumber the
/// cores spin while they wait for one (see Rome.Web.Tests' OneTorchThread).
/// </summary>
internal static class OneTorchThread
{
    [ModuleInitializer]
    internal static void Set() => TorchSharp.torch.set_num_threads(1);
}
