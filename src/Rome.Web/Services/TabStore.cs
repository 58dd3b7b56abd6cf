using Rome.Model;
using Rome.Model.Editing;

namespace Rome.Web.Services;

/// <summary>What a browser tab keeps across reloads: its stack of edits on each model and the model it chose.</summary>
public sealed class TabState : IDisposable
{
    public Dictionary<string, EditSession> Edits { get; } = new();
    public string? Model { get; set; }
    /// <summary>The tab's view: large type for a projector, the dark theme.</summary>
    public bool LargeType { get; set; }
    public bool Dark { get; set; }
    /// <summary>The class room the tab leads or sits in, if any.</summary>
    public Class.RoomSeat? Seat { get; set; }
    internal int Attached;
    internal DateTime DetachedAt = DateTime.UtcNow;

    public bool HasEdits => Edits.Values.Any(e => e.Edits.Count > 0 || e.CanRedo);

    /// <summary>Worth keeping for the tab to come back to: edits, or a seat in a class room.</summary>
    public bool WorthKeeping => HasEdits || Seat is { Room.Closed: false };

    public void Dispose()
    {
        Seat?.Release();
        Seat = null;
        foreach (var session in Edits.Values) session.Dispose();
        Edits.Clear();
    }
}

/// <summary>
/// Tabs' states by a per-tab id the browser keeps in sessionStorage, so a reload, or a link typed in the same tab,
/// finds its edits again; a new tab gets a new id. A state outlives its tab's connection for
/// <see cref="RomeSettings.KeepTabMinutes"/> (then its edits are freed), and a state two live tabs claim (a duplicated
/// tab copies sessionStorage) stays with the first: the second is told to take a new id.
/// </summary>
public sealed class TabStore : IDisposable
{
    private readonly Dictionary<string, TabState> _tabs = new();
    private readonly Lock _lock = new();
    private readonly TimeSpan _keep;
    private readonly Timer _sweeper;

    public TabStore(RomeSettings settings)
    {
        _keep = TimeSpan.FromMinutes(Math.Max(0, settings.KeepTabMinutes));
        _sweeper = new Timer(_ => Sweep(), null, TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1));
    }

    /// <summary>How many tabs' states are kept (live or waiting for their tab to come back).</summary>
    public int Count { get { lock (_lock) return _tabs.Count; } }

    /// <summary>
    /// The state kept for tab <paramref name="id"/>, now attached to a live tab; <paramref name="current"/> (the tab's
    /// state so far) is kept under the id when nothing is stored there. Null when another live tab holds the id, unless
    /// that is this tab's own page that just left (<paramref name="sameTab"/>: a reload, whose old connection closes later).
    /// </summary>
    public TabState? Attach(string id, TabState current, bool sameTab = false)
    {
        if (string.IsNullOrWhiteSpace(id) || id.Length > 64) throw new RomeException("That tab id is not one this app gives out.");
        lock (_lock)
        {
            if (_tabs.TryGetValue(id, out var kept))
            {
                if (kept == current) return current;
                if (kept.Attached > 0 && !sameTab) return null;
                if (current.WorthKeeping) { kept.Dispose(); _tabs[id] = kept = current; } // edits (or a seat) taken before the tab said who it is win
                else current.Dispose();
            }
            else _tabs[id] = kept = current;
            kept.Attached++;
            return kept;
        }
    }

    /// <summary>The tab went away (closed, reloading, or its circuit ended): its state waits for it, then is freed.</summary>
    public void Detach(TabState state)
    {
        lock (_lock)
        {
            state.Attached = Math.Max(0, state.Attached - 1);
            state.DetachedAt = DateTime.UtcNow;
            if (state.Attached == 0 && !state.WorthKeeping) Forget(state);
        }
    }

    /// <summary>Frees the states whose tabs have been gone longer than the keep time.</summary>
    public void Sweep()
    {
        lock (_lock)
            foreach (var state in _tabs.Values.Where(s => s.Attached == 0 && DateTime.UtcNow - s.DetachedAt > _keep).ToList())
                Forget(state);
    }

    private void Forget(TabState state)
    {
        foreach (var key in _tabs.Where(t => t.Value == state).Select(t => t.Key).ToList()) _tabs.Remove(key);
        state.Dispose();
    }

    public void Dispose()
    {
        _sweeper.Dispose();
        lock (_lock)
        {
            foreach (var state in _tabs.Values) state.Dispose();
            _tabs.Clear();
        }
    }
}
