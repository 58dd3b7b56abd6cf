using Rome.Model.Editing;

namespace Rome.Web.Services;

/// <summary>
/// One browser tab's state (a scoped service lives as long as its Blazor circuit): its own stack of edits on the
/// shared model, and a token that cancels its jobs when the tab closes. Edits vanish with the tab unless exported.
/// </summary>
public sealed class UserSession : IDisposable
{
    private CancellationTokenSource _closed = new();
    private readonly Lazy<EditSession> _edits;

    public UserSession(ModelHost host)
    {
        Host = host;
        _edits = new(() => new EditSession(host.Require()));
    }

    public string Id { get; } = Guid.NewGuid().ToString("N");
    public ModelHost Host { get; }
    public EditSession Edits => _edits.Value;
    /// <summary>How many edits this tab has applied (0 before its first, without loading the model).</summary>
    public int EditCount => _edits.IsValueCreated ? _edits.Value.Edits.Count : 0;
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
        if (_edits.IsValueCreated) _edits.Value.Dispose();
        _closed.Dispose();
    }
}
