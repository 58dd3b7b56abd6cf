namespace Rome.Tests;

/// <summary>Where the repository, the shared data and the fixtures are (ROME_SHARED overrides ../shared).</summary>
public static class TestPaths
{
    public static string Root { get; } = FindRoot();
    public static string Shared => Environment.GetEnvironmentVariable("ROME_SHARED") is { Length: > 0 } s
        ? s : Path.GetFullPath(Path.Combine(Root, "..", "shared"));
    public static string Fixture(string name) => Path.Combine(Shared, "fixtures", name);
    public static string Data => Path.Combine(Shared, "data");
    public static string BundledModel => Path.Combine(Root, "models", "rome-knowing");
    public static string BundledHyperParameters => Path.Combine(BundledModel, "rome-hparams.json");

    public static string TempFolder()
    {
        var dir = Path.Combine(Path.GetTempPath(), "rome-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Rome.sln"))) return dir.FullName;
        throw new InvalidOperationException("Rome.sln not found above the test binaries.");
    }
}
