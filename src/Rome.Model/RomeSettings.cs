using System.Text.Json;

namespace Rome.Model;

/// <summary>
/// The project's configuration (section "Rome" of <c>appsettings.json</c> at the repository root), shared by
/// the web app and the CLI. Relative paths are relative to the folder holding <c>appsettings.json</c>.
/// </summary>
public sealed class RomeSettings
{
    /// <summary>The model folder (Hugging Face GPT-2 layout). Default: the bundled model.</summary>
    public string ModelPath { get; set; } = "models/rome-knowing";
    /// <summary>
    /// More models the web app offers (name → folder, any supported family): each tab picks one; each loads on first
    /// use. The default model (<see cref="ModelPath"/>) comes first, named by its folder.
    /// </summary>
    public Dictionary<string, string> Models { get; set; } = new();
    public string Device { get; set; } = "cpu";
    /// <summary>Weights' dtype: float32 (default), float16 or bfloat16.</summary>
    public string Dtype { get; set; } = "float32";
    /// <summary>Folder holding <c>pararel/</c> and <c>rome/known_1000.json</c>.</summary>
    public string DataPath { get; set; } = "../shared/data";
    /// <summary>Where caches (noise level, covariance statistics, context templates) are written.</summary>
    public string CachePath { get; set; } = ".cache";
    public int MaxPromptTokens { get; set; } = 64;
    public int MaxTraceSamples { get; set; } = 50;
    public int MaxEvalCases { get; set; } = 200;
    /// <summary>Jobs the web app runs at once (more than one only helps with cores to spare).</summary>
    public int Workers { get; set; } = 1;
    /// <summary>
    /// libtorch's threads per operation (0: its default, one per core). Measured on the bundled model (README, "Serving
    /// a class"), two workers of one thread cost as much CPU per student as one worker of two, and waited longer.
    /// </summary>
    public int TorchThreads { get; set; } = 0;
    /// <summary>Jobs one browser tab may have queued or running.</summary>
    public int MaxQueuedJobsPerSession { get; set; } = 3;
    /// <summary>Edits one browser tab may stack on a model (each holds its rank-one update, and its undo history).</summary>
    public int MaxEditsPerTab { get; set; } = 20;
    /// <summary>Facts the Edit page's many-facts mode writes at once.</summary>
    public int MaxBatchFacts { get; set; } = 100;
    /// <summary>Students one class room takes (the teacher not counted).</summary>
    public int MaxRoomMembers { get; set; } = 60;
    /// <summary>A class room nobody has used for this long (minutes) ends by itself.</summary>
    public int RoomIdleMinutes { get; set; } = 90;
    /// <summary>Join pages one address may open per minute (a class behind one school router shares an address).</summary>
    public int JoinsPerMinute { get; set; } = 120;
    /// <summary>How long a closed or reloading tab's edits are kept for it to come back to (minutes).</summary>
    public int KeepTabMinutes { get; set; } = 30;
    /// <summary>
    /// Resident memory (MB) above which the web app refuses new jobs until memory is given back (0: no limit). Size it
    /// from the model: weights, plus about 0.2 GB per worker for the bundled model's largest trace.
    /// </summary>
    public int MemoryLimitMB { get; set; } = 0;
    /// <summary>This server's name among replicas behind a proxy, sent as the X-Rome-Replica header (none when unset).</summary>
    public string? Replica { get; set; }

    /// <summary>The folder the relative paths are resolved against.</summary>
    public string BaseDirectory { get; set; } = Directory.GetCurrentDirectory();

    public string Resolve(string path) => Path.GetFullPath(Path.Combine(BaseDirectory, path));
    public string ModelFolder => Resolve(ModelPath);
    public string ModelName => Path.GetFileName(Path.TrimEndingDirectorySeparator(ModelFolder));

    /// <summary>Every model the web app offers, the default first: (name, folder).</summary>
    public IReadOnlyList<(string Name, string Folder)> ModelChoices() =>
        Models.Where(m => m.Key != ModelName).Select(m => (m.Key, Resolve(m.Value))).Prepend((ModelName, ModelFolder)).ToList();
    public string DataFolder => Resolve(DataPath);
    public string CacheFolder => Resolve(CachePath);

    /// <summary>Finds <c>appsettings.json</c> from the current folder upwards (then beside the program) and reads it.</summary>
    public static RomeSettings Load()
    {
        var file = FindUpwards(Directory.GetCurrentDirectory()) ?? FindUpwards(AppContext.BaseDirectory);
        if (file is null) return new RomeSettings();
        return FromFile(file);
    }

    public static RomeSettings FromFile(string file)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(file), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        var settings = doc.RootElement.TryGetProperty("Rome", out var section)
            ? section.Deserialize<RomeSettings>() ?? new RomeSettings()
            : new RomeSettings();
        settings.BaseDirectory = Path.GetDirectoryName(Path.GetFullPath(file))!;
        return settings;
    }

    public static string? FindUpwards(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "appsettings.json");
            if (File.Exists(candidate) && File.Exists(Path.Combine(dir.FullName, "Rome.sln"))) return candidate;
        }
        return null;
    }
}
