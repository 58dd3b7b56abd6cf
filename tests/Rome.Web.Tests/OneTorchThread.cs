using System.Runtime.CompilerServices;

namespace Rome.Web.Tests;

/// <summary>
/// The browser tests' process (the app, whose model is small) takes one libtorch thread and leaves the other core of
/// this 2-core machine to Chromium, which draws what the app sends: the browser tests took 3 min 48 s so, 4 min 24 s
/// with two threads.
/// </summary>
internal static class OneTorchThread
{
    [ModuleInitializer]
    internal static void Set() => TorchSharp.torch.set_num_threads(1);
}
