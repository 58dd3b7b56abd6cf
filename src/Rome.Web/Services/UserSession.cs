using Rome.Model.Editing;

namespace Rome.Web.Services;

/// <summary>
/// One browser tab (a scoped service lives as long as its Blazor circuit): the model it works on, its own stack of
/// edits per model, and a token that cancels its jobs when the tab closes. Once the tab says who it is
/// (<see cref="Attach"/>), its state is the one <see cref="TabStore"/> kept for it, so a reload keeps its edits.
/// </summary>
public sealed class UserSession : IDisposable
{
    private CancellationTokenSource _closed = new();
    private readonly ModelLibrary _library;
    private readonly TabStore? _store;
    private TabState _state = new();

    public UserSession(ModelLibrary library, TabStore? store = null)
    {
        _library = library;
        _store = store;
    }

    /// <summary>The queue's name for this tab's jobs (one per circuit).</summary>
    public string Id { get; } = Guid.NewGuid().ToString("N");

    /// <summary>Whether the tab has said who it is (after its first interactive render), so its kept state is in use.</summary>
    public bool Attached { get; private set; }

    /// <summary>
    /// Takes up the state kept for tab <paramref name="tabId"/> (its edits and model). False when another live tab holds
    /// that id (a duplicated tab): the caller gives this tab a new id and attaches again. <paramref name="sameTab"/>: the
    /// page replaces one of this tab that just left (a reload), so the state is taken over even if its old page has not
    /// let go of it yet.
    /// </summary>
    public bool Attach(string tabId, bool sameTab = false)
    {
        if (_store is null) return Attached = true;
        if (_store.Attach(tabId, _state, sameTab) is not { } state) return false;
        var modelChanged = state.Model != _state.Model || state.Dark != _state.Dark || state.LargeType != _state.LargeType;
        (_state, Attached) = (state, true);
        if (modelChanged) ModelChanged?.Invoke();
        return true;
    }

    /// <summary>The model this tab works on.</summary>
    public ModelHost Host => _state.Model is { } name && _library.Find(name) is { } host ? host : _library.Default;

    /// <summary>The models the tab can choose from.</summary>
    public IReadOnlyList<ModelHost> Models => _library.Hosts;

    /// <summary>Raised when the tab switches model, so pages redraw for it.</summary>
    public event Action? ModelChanged;

    public void SelectModel(string name)
    {
        var host = _library.Find(name) ?? throw new Rome.Model.RomeException($"No model named '{name}'.");
        if (host == Host) return;
        _state.Model = host.Name;
        ModelChanged?.Invoke();
    }

    /// <summary>Large type for a projector, and the dark theme: the tab's view, kept across a reload like its edits.</summary>
    public bool LargeType { get => _state.LargeType; set => _state.LargeType = value; }
    public bool Dark { get => _state.Dark; set => _state.Dark = value; }

    /// <summary>The class room this tab leads or sits in (see <see cref="Class.ClassService"/>), kept across a reload.</summary>
    public Class.RoomSeat? Seat { get => _state.Seat; set => _state.Seat = value; }

    /// <summary>This tab's edits on its current model (each model keeps its own stack).</summary>
    public EditSession Edits
    {
        get
        {
            if (!_state.Edits.TryGetValue(Host.Name, out var session)) _state.Edits[Host.Name] = session = new EditSession(Host.Require());
            return session;
        }
    }

    /// <summary>This tab's edits on its current model if it has made any yet (null otherwise, without loading the model).</summary>
    public EditSession? ExistingEdits => _state.Edits.GetValueOrDefault(Host.Name);

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

    /// <summary>The tab is gone: its jobs stop, and its edits wait in the store for a reload (or are freed at once without one).</summary>
    public void Dispose()
    {
        _closed.Cancel();
        if (_store is not null && Attached) _store.Detach(_state);
        else _state.Dispose();
        _closed.Dispose();
    }
}
