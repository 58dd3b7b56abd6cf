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
    /// <summary>Where tests keep the key statistics C between runs.</summary>
    public static string CovarianceCacheFolder => Path.Combine(Path.GetTempPath(), "rome-tests-cache");

    /// <summary>Runs the built CLI (<c>rome.dll</c>, built with the solution) from the repository root; its exit code and output.</summary>
    public static async Task<(int Exit, string Output, string Error)> RunCli(params string[] args)
    {
        var cli = Path.Combine(Root, "src", "Rome.Cli", "bin", "Debug", "net10.0", "rome.dll");
        if (!File.Exists(cli)) throw new InvalidOperationException($"build the solution first: {cli} is missing");
        var start = new System.Diagnostics.ProcessStartInfo("dotnet") { WorkingDirectory = Root, RedirectStandardError = true, RedirectStandardOutput = true };
        start.ArgumentList.Add(cli);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = System.Diagnostics.Process.Start(start)!;
        var (output, error) = (process.StandardOutput.ReadToEndAsync(), process.StandardError.ReadToEndAsync());
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await output, await error);
    }

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
