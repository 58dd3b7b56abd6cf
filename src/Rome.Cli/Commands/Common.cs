using Rome.Model;
using Rome.Model.Editing;
using Rome.Model.Modeling;

namespace Rome.Cli.Commands;

internal static class Common
{
    public static RomeSettings Settings { get; } = RomeSettings.Load();

    /// <summary>--model, else the configured model (the bundled one by default).</summary>
    public static string ModelFolder(CliArgs a) => a.Get("model") is { } m ? Path.GetFullPath(m) : Settings.ModelFolder;

    public static LanguageModel LoadModel(CliArgs a) => LanguageModel.Load(ModelFolder(a), a.Get("device", Settings.Device), a.Get("dtype", Settings.Dtype));

    /// <summary>The key statistics C, kept under the configured cache folder (the web app reads the same files).</summary>
    public static CovarianceCache Covariances() => new(Settings.CacheFolder, Settings.DataFolder);

    public static string DataFolder(CliArgs a) => a.Get("data") is { } d ? Path.GetFullPath(d) : Settings.DataFolder;
}
