using System.Collections.Concurrent;

namespace Rome.Web.Services;

/// <summary>
/// A tab's heavy work, run through the shared <see cref="JobQueue"/> and awaited: what every page service does. A job
/// is cancelled by the caller's token or when the tab closes; <see cref="Current"/> tells a page where its job stands.
/// </summary>
public sealed class SessionJobs(UserSession user, JobQueue queue)
{
    private readonly ConcurrentDictionary<string, Job> _current = new();

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
        finally { _current.TryRemove(new(label, job)); }
    }

    /// <summary>This tab's queued or running job with that label, if any.</summary>
    public Job? Current(string label) => _current.GetValueOrDefault(label);

    /// <summary>What a page shows while its job waits: how many jobs run before it, and about how long that takes.</summary>
    public string Waiting(Job job)
    {
        var ahead = queue.PositionOf(job);
        var wait = queue.EstimatedWait(job);
        return $"Waiting in the queue: {ahead} job{(ahead == 1 ? "" : "s")} ahead" +
               (wait is { } w ? $", about {Math.Max(1, Math.Round(w.TotalSeconds)):0} s" : "");
    }
}
