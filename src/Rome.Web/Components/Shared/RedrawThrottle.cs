namespace Rome.Web.Components.Shared;

/// <summary>
/// Lets a streaming chart redraw at most every <see cref="Interval"/>, and once more after the stream stops: each redraw
/// sends the chart's whole data to the browser, and a class of tabs redrawing per trace cell or v* step keeps the
/// server and the projectors busy.
/// </summary>
public sealed class RedrawThrottle(Func<Task> rerender)
{
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(250);
    private DateTime _drawnAt;
    private bool _pending;

    /// <summary>Whether to draw now (always when <paramref name="final"/>); if not, a re-render is scheduled for when it may.</summary>
    public bool Ready(bool final)
    {
        var wait = Interval - (DateTime.UtcNow - _drawnAt);
        if (final || wait <= TimeSpan.Zero)
        {
            _drawnAt = DateTime.UtcNow;
            return true;
        }
        if (!_pending)
        {
            _pending = true;
            _ = Later(wait);
        }
        return false;
    }

    private async Task Later(TimeSpan wait)
    {
        await Task.Delay(wait);
        _pending = false;
        try { await rerender(); }
        catch (ObjectDisposedException) { }   // the page closed meanwhile
    }
}
