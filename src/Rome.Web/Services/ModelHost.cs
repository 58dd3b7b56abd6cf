using Rome.Model;
using Rome.Model.Modeling;
using Rome.Model.Tracing;
using Rome.Model.Facts;

namespace Rome.Web.Services;

/// <summary>
/// One model every session shares (<see cref="ModelLibrary"/> holds them all), loaded when first used. Sessions never
/// change its weights: their edits are overlays passed into each forward pass.
/// </summary>
public sealed class ModelHost : IDisposable
{
    private readonly Lazy<LanguageModel?> _model;

    public ModelHost(string name, string folder, RomeSettings settings, ILogger<ModelHost> log)
    {
        (Name, Folder, Settings) = (name, folder, settings);
        _averagedTrace = new(() => AveragedTraceFile.Load(folder));
        _model = new Lazy<LanguageModel?>(() =>
        {
            try
            {
                var lm = LanguageModel.Load(folder, settings.Device, settings.Dtype);
                _facts = FactCorpus.ForModel(lm.Folder);
                // Before any session can use the model: the examples must see its weights unedited.
                _examples = _facts is null ? [] : Recall.Examples(lm, _facts, Favourites, count: 6);
                log.LogInformation("Loaded model {Name} from {Folder} ({Parameters:N0} parameters)", lm.Name, lm.Folder, lm.ParameterCount);
                return lm;
            }
            catch (RomeException e)
            {
                _loadError = e.Message;
                log.LogError("Could not load the model: {Message}", e.Message);
                return null;
            }
        });
    }

    /// <summary>The name tabs choose it by (Rome:Models' key, or the default model's folder name).</summary>
    public string Name { get; }
    public string Folder { get; }
    public RomeSettings Settings { get; }

    /// <summary>Whether the model has been loaded (or failed to load): until then it takes no memory.</summary>
    public bool IsLoaded => _model.IsValueCreated;

    /// <summary>Bytes the loaded model's weights take (0 before it is loaded or when it failed).</summary>
    public long MemoryBytes => IsLoaded && _model.Value is { } lm ? _memoryBytes ??= lm.Model.parameters().Sum(p => p.numel() * p.element_size()) : 0;
    private long? _memoryBytes; // the weights never change: counted once, not on every render of the app bar

    /// <summary>The shared model, or null when it could not be loaded (see <see cref="LoadError"/>).</summary>
    public LanguageModel? Model => _model.Value;

    public string? LoadError { get { _ = Model; return _loadError; } }

    /// <summary>The model's averaged trace kept beside it (null when there is none).</summary>
    public AveragedTraceFile? AveragedTrace => _averagedTrace.Value;
    private readonly Lazy<AveragedTraceFile?> _averagedTrace;

    /// <summary>The manifest of facts the bundled model was trained on (null for other models).</summary>
    public FactCorpus? Facts { get { _ = Model; return _facts; } }

    /// <summary>Facts the Home page offers: famous subjects first, only facts the model gets right (none for other models).</summary>
    public IReadOnlyList<FactExample> Examples { get { _ = Model; return _examples; } }

    private static readonly string[] Favourites = ["Nintendo", "Tycho Brahe", "Paris", "Canada", "London", "Germany", "Toyota", "Honda", "BBC", "Sony"];
    private string? _loadError;
    private FactCorpus? _facts;
    private IReadOnlyList<FactExample> _examples = [];

    public LanguageModel Require() => Model ?? throw new RomeException(LoadError ?? "No model is loaded.");

    /// <summary>The blocks with no MLP (a model trained without them; none for most), found once.</summary>
    public IReadOnlyList<int> MlpFreeLayers => _mlpFree ??= Model is { } lm ? Enumerable.Range(0, lm.Layers).Where(l => !lm.Model.HasMlp(l)).ToList() : [];
    private List<int>? _mlpFree;

    public void Dispose()
    {
        if (_model.IsValueCreated) _model.Value?.Dispose();
    }
}
