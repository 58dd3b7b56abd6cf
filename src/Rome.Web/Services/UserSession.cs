using Rome.Model.Editing;

namespace Rome.Web.Services;

/// <summary>
/// One browser tab's state (a scoped service lives as long as its Blazor circuit): the model it works on, its own
/// stack of edits per model, and a token that cancels its jobs when the tab closes. Edits vanish with the tab unless
/// exported.
/// </summary>
public sealed class UserSession : IDisposable
{
    private CancellationTokenSource _closed = new();
    private readonly Dictionary<string, EditSession> _edits = new();
    private readonly ModelLibrary _library;

    public UserSession(ModelLibrary library)
    {
        _library = library;
        Host = library.Default;
    }

    public string Id { get; } = Guid.NewGuid().ToString("N");

    /// <summary>The model this tab works on.</summary>
    public ModelHost Host { get; private set; }

    /// <summary>The models the tab can choose from.</summary>
    public IReadOnlyList<ModelHost> Models => _library.Hosts;

    /// <summary>Raised when the tab switches model, so pages redraw for it.</summary>
    public event Action? ModelChanged;

    public void SelectModel(string name)
    {
        var host = _library.Find(name) ?? throw new Rome.Model.RomeException($"No model named '{name}'.");
        if (host == Host) return;
        Host = host;
        ModelChanged?.Invoke();
    }

    /// <summary>This tab's edits on its current model (each model keeps its own stack).</summary>
    public EditSession Edits
    {
        get
        {
            if (!_edits.TryGetValue(Host.Name, out var session)) _edits[Host.Name] = session = new EditSession(Host.Require());
            return session;
        }
    }

    /// <summary>This tab's edits on its current model if it has made any yet (null otherwise, without loading the model).</summary>
    public EditSession? ExistingEdits => _edits.GetValueOrDefault(Host.Name);

    /// <summary>How many edits this tab has applied to its current model.</summary>
    public int EditCount => ExistingEdits?.Edits.Count ?? 0;
    /// <summary>Cancelled when this tab goes away; jobs are queued with it.</summary>
    public CancellationToken Closed => _closed.Token;

    /// <summary>Cancels this tab's queued and running jobs; later jobs get a fresh token.</summary>
    public void CancelJobs()
    {
        var old = Interlocked.Exchange(ref _closed, new CancellationTokenSource());
        old.Cancel();
        old.Dispose();
    }

    public void Dispose()
    {
        _closed.Cancel();
        foreach (var session in _edits.Values) session.Dispose();
        _closed.Dispose();
    }
}
