using System.Collections.Concurrent;
using Rome.Model;

namespace Rome.Web.Services;

/// <summary>
/// A tab's heavy work, run through the shared <see cref="JobQueue"/> and awaited: what every page service does. A job
/// is cancelled by the caller's token or when the tab closes; <see cref="Waiting"/> tells a page where its job stands.
/// A failure nobody foresaw is logged here and reaches the page as a <see cref="RomeException"/> with a plain message,
/// so pages show every error the same way and never a stack trace.
/// </summary>
public sealed class SessionJobs(UserSession user, JobQueue queue, ILogger<SessionJobs>? log = null)
{
    private readonly ConcurrentDictionary<string, Job> _current = new();

    /// <summary>Raised when any job in the queue starts or ends, so a waiting page can redraw its place.</summary>
    public event Action Changed { add => queue.Changed += value; remove => queue.Changed -= value; }

    /// <summary>Queues <paramref name="work"/> under <paramref name="label"/> and returns its result once it has run.</summary>
    public async Task<T> Run<T>(string label, Func<CancellationToken, T> work, CancellationToken cancel = default)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancel, user.Closed);
        T result = default!;
        var job = queue.Enqueue(user.Id, label, c => { result = work(c); return Task.CompletedTask; }, linked.Token);
        _current[label] = job;
        try
        {
            await job.Completion;
            return result;
        }
        catch (Exception e) when (e is not RomeException and not OperationCanceledException)
        {
            log?.LogError(e, "The {Label} job failed", label);
            throw new RomeException($"The {label} failed unexpectedly; nothing was changed. The server log has the details.", e);
        }
        finally { _current.TryRemove(new(label, job)); }
    }

    /// <summary>This tab's queued or running job with that label, if any.</summary>
    public Job? Current(string label) => _current.GetValueOrDefault(label);

    /// <summary>
    /// What a page shows while its <paramref name="label"/> job waits in the queue (how many jobs run before it, and
    /// about how long that takes), or null when it is not waiting.
    /// </summary>
    public string? Waiting(string label)
    {
        if (Current(label) is not { Started: false } job) return null;
        var ahead = queue.PositionOf(job);
        var wait = queue.EstimatedWait(job);
        return $"Waiting in the queue: {ahead} job{(ahead == 1 ? "" : "s")} ahead" +
               (wait is { } w ? $", about {Math.Max(1, Math.Round(w.TotalSeconds)):0} s" : "");
    }
}
