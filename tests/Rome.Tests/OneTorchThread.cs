using System.Runtime.CompilerServices;

namespace Rome.Tests;

/// <summary>
/// The library's tests run two at a time (xunit.runner.json) on this 2-core machine, so each takes one libtorch thread
/// rather than one per core: threads that outnumber the cores spin while they wait for one.
/// </summary>
internal static class OneTorchThread
{
    [ModuleInitializer]
    internal static void Set() => TorchSharp.torch.set_num_threads(1);
}
