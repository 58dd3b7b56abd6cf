using Rome.Model;
using Rome.Model.Modeling;
using Rome.Model.Training;

namespace Rome.Web.Services;

/// <summary>
/// The one model every session shares, loaded once at start-up from Rome:ModelPath. Sessions never change
/// its weights: their edits are overlays passed into each forward pass.
/// </summary>
public sealed class ModelHost : IDisposable
{
    private readonly Lazy<LanguageModel?> _model;

    public ModelHost(RomeSettings settings, ILogger<ModelHost> log)
    {
        Settings = settings;
        _model = new Lazy<LanguageModel?>(() =>
        {
            try
            {
                var lm = LanguageModel.Load(settings.ModelFolder, settings.Device, settings.Dtype);
                _facts = FactCorpus.ForModel(lm.Folder);
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

    public RomeSettings Settings { get; }

    /// <summary>The shared model, or null when it could not be loaded (see <see cref="LoadError"/>).</summary>
    public LanguageModel? Model => _model.Value;

    public string? LoadError { get { _ = Model; return _loadError; } }

    /// <summary>The manifest of facts the bundled model was trained on (null for other models).</summary>
    public FactCorpus? Facts { get { _ = Model; return _facts; } }

    private string? _loadError;
    private FactCorpus? _facts;

    public LanguageModel Require() => Model ?? throw new RomeException(LoadError ?? "No model is loaded.");

    public void Dispose()
    {
        if (_model.IsValueCreated) _model.Value?.Dispose();
    }
}
