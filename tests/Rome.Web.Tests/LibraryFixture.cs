using Microsoft.Extensions.Logging.Abstractions;
using Rome.Model;
using Rome.Web.Services;

namespace Rome.Web.Tests;

/// <summary>The app's configured models (the bundled ones), loaded once per test class, as the web app holds them.</summary>
public sealed class LibraryFixture : IDisposable
{
    public RomeSettings Settings { get; }
    public ModelLibrary Library { get; }

    public LibraryFixture()
    {
        var root = Path.GetDirectoryName(RomeSettings.FindUpwards(AppContext.BaseDirectory))!;
        Settings = RomeSettings.FromFile(Path.Combine(root, "appsettings.json"));
        Library = new ModelLibrary(Settings, NullLogger<ModelHost>.Instance);
    }

    public void Dispose() => Library.Dispose();
}
