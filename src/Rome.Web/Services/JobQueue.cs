using Rome.Model;

namespace Rome.Web.Services;

/// <summary>A queued piece of heavy work (a trace, an edit, an evaluation) and where it stands.</summary>
public sealed class Job
{
    internal Job(string session, string label, Func<CancellationToken, Task> run, CancellationToken cancel)
    {
        Session = session;
        Label = label;
        Run = run;
        Cancel = CancellationTokenSource.CreateLinkedTokenSource(cancel);
    }

    public string Session { get; }
    public string Label { get; }
    internal Func<CancellationToken, Task> Run { get; }
    internal CancellationTokenSource Cancel { get; }
    internal TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public bool Started { get; internal set; }
    /// <summary>Time since the job started.</summary>
    internal System.Diagnostics.Stopwatch Clock { get; } = new();

    /// <summary>Completes when the job has run (or faulted, or was cancelled).</summary>
    public Task Completion => Done.Task;
}

/// <summary>
/// One queue for the heavy work of every browser session, served by a configured number of workers (Rome:Workers).
/// Fair between sessions: workers take the oldest job of the next session in turn, so one user's queue never starves
/// another's. Each session may queue a limited number of jobs (Rome:MaxQueuedJobsPerSession); above
/// Rome:MemoryLimitMB of resident memory, new jobs are refused. When the queue goes idle, memory is given back. Cancelling a session's
/// token (its circuit closed) cancels its running job and drops its queued ones.
/// </summary>
public sealed class JobQueue : BackgroundService
{
    private readonly Lock _lock = new();
    private readonly List<string> _sessions = []; // round-robin order
    private readonly Dictionary<string, Queue<Job>> _queues = new();
    private readonly SemaphoreSlim _available = new(0);
    private readonly int _workers;
    private readonly int _perSession;
    private readonly ILogger<JobQueue> _log;
    private int _next;
    private readonly List<Job> _runningJobs = [];
    /// <summary>Recent mean run time per job label (seconds), for wait estimates.</summary>
    private readonly Dictionary<string, double> _meanSeconds = new();

    private readonly long _memoryLimit;

    public JobQueue(RomeSettings settings, ILogger<JobQueue> log)
    {
        _memoryLimit = settings.MemoryLimitMB * (1L << 20);
        _workers = Math.Max(1, settings.Workers);
        _perSession = Math.Max(1, settings.MaxQueuedJobsPerSession);
        _log = log;
    }

    private readonly Dictionary<string, int> _startedByLabel = new();

    /// <summary>How many jobs with this label have started since the server did (a class room's trace: one for the room).</summary>
    public int StartedCount(string label) { lock (_lock) return _startedByLabel.GetValueOrDefault(label); }

    /// <summary>How many jobs are running now.</summary>
    public int Running { get { lock (_lock) return _runningJobs.Count; } }

    /// <summary>Nothing running and nothing queued.</summary>
    private bool IsIdle
    {
        get { lock (_lock) return _runningJobs.Count == 0 && _queues.Values.All(q => q.Count == 0); }
    }

    /// <summary>Raised whenever positions change (a job queued, started or finished).</summary>
    public event Action? Changed;

    /// <summary>Queues work for a session. Throws a <see cref="RomeException"/> when the session's queue is full.</summary>
    public Job Enqueue(string session, string label, Func<CancellationToken, Task> run, CancellationToken cancel)
    {
        if (_memoryLimit > 0 && ProcessMemory.ResidentBytes() > _memoryLimit)
        {
            ProcessMemory.GiveBack();
            if (ProcessMemory.ResidentBytes() > _memoryLimit)
            {
                _log.LogWarning("Refusing a job: resident memory {Resident:N0} MB is over the limit of {Limit:N0} MB", ProcessMemory.ResidentBytes() >> 20, _memoryLimit >> 20);
                throw new RomeException("The server is at its memory limit; try again in a minute, when other jobs have finished.");
            }
        }
        var job = new Job(session, label, run, cancel);
        lock (_lock)
        {
            if (!_queues.TryGetValue(session, out var queue)) _queues[session] = queue = new();
            if (queue.Count >= _perSession)
                throw new RomeException($"You already have {queue.Count} jobs waiting; wait for them to finish or cancel one.");
            // A session that had nothing waiting joins the end of the current round, so a job already waiting is
            // never overtaken by a newcomer's first job: the place a tab is shown only goes down.
            if (queue.Count == 0) JoinRoundEnd(session);
            queue.Enqueue(job);
        }
        job.Cancel.Token.Register(() => Drop(job));
        _available.Release();
        Changed?.Invoke();
        return job;
    }

    /// <summary>Puts <paramref name="session"/> last in the turn order that starts at <see cref="_next"/>.</summary>
    private void JoinRoundEnd(string session)
    {
        var at = _sessions.IndexOf(session);
        if (at >= 0)
        {
            _sessions.RemoveAt(at);
            if (at < _next) _next--;
        }
        if (_sessions.Count == 0) { _sessions.Add(session); _next = 0; return; }
        if (_next >= _sessions.Count) _next = 0; // the turn had come round to the start
        _sessions.Insert(_next, session);
        _next++;
    }

    /// <summary>How many jobs run before this one (0: it is running or next).</summary>
    public int PositionOf(Job job) => Ahead(job).Count;

    /// <summary>
    /// An honest guess of this job's wait: the recent mean run time of each job ahead (by label), shared among the
    /// workers, plus what the running jobs have left. Null until jobs of those labels have run.
    /// </summary>
    public TimeSpan? EstimatedWait(Job job)
    {
        if (job.Started) return TimeSpan.Zero;
        double seconds = 0;
        var jobsAhead = Ahead(job);
        lock (_lock)
        {
            foreach (var ahead in jobsAhead)
                if (_meanSeconds.TryGetValue(ahead.Label, out var mean)) seconds += mean; else return null;
            foreach (var running in _runningJobs)
                if (_meanSeconds.TryGetValue(running.Label, out var mean)) seconds += Math.Max(0, mean - running.Clock.Elapsed.TotalSeconds); else return null;
        }
        return TimeSpan.FromSeconds(seconds / _workers);
    }

    /// <summary>The queued jobs that run before this one, in the round-robin order from the current turn.</summary>
    private List<Job> Ahead(Job job)
    {
        var ahead = new List<Job>();
        if (job.Started) return ahead;
        lock (_lock)
        {
            var copies = _sessions.ToDictionary(s => s, s => new Queue<Job>(_queues[s]));
            for (int turn = _next, guard = 0; guard < 100_000 && _sessions.Count > 0; turn++, guard++)
            {
                var session = _sessions[turn % _sessions.Count];
                if (!copies[session].TryDequeue(out var candidate)) { if (copies.Values.All(q => q.Count == 0)) break; continue; }
                if (candidate == job) break;
                ahead.Add(candidate);
            }
        }
        return ahead;
    }

    private void Drop(Job job)
    {
        bool removed;
        lock (_lock)
        {
            removed = _queues.TryGetValue(job.Session, out var queue) && queue.Contains(job);
            if (removed) _queues[job.Session] = new Queue<Job>(queue!.Where(j => j != job));
        }
        if (removed)
        {
            job.Done.TrySetCanceled();
            Changed?.Invoke();
        }
    }

    private Job? Take()
    {
        lock (_lock)
        {
            for (int i = 0; i < _sessions.Count; i++)
            {
                var session = _sessions[(_next + i) % _sessions.Count];
                if (_queues[session].TryDequeue(out var job))
                {
                    _next = (_next + i + 1) % Math.Max(1, _sessions.Count);
                    job.Started = true;
                    _startedByLabel[job.Label] = _startedByLabel.GetValueOrDefault(job.Label) + 1;
                    job.Clock.Restart();
                    _runningJobs.Add(job);
                    return job;
                }
            }
            // Forget sessions with nothing queued.
            foreach (var s in _sessions.Where(s => _queues[s].Count == 0).ToList()) { _sessions.Remove(s); _queues.Remove(s); }
            _next = 0;
            return null;
        }
    }

    protected override Task ExecuteAsync(CancellationToken stopping) =>
        Task.WhenAll(Enumerable.Range(0, _workers).Select(_ => Task.Run(() => Work(stopping), stopping)));

    private async Task Work(CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            try { await _available.WaitAsync(stopping); }
            catch (OperationCanceledException) { return; }
            var job = Take();
            if (job is null) continue;
            Changed?.Invoke();
            var cpu = Environment.CpuUsage.TotalTime;
            try
            {
                job.Cancel.Token.ThrowIfCancellationRequested();
                await job.Run(job.Cancel.Token);
                job.Done.TrySetResult();
            }
            catch (OperationCanceledException) { job.Done.TrySetCanceled(); }
            catch (Exception e)
            {
                if (e is not RomeException) _log.LogError(e, "Job {Label} failed", job.Label);
                job.Done.TrySetException(e);
            }
            finally
            {
                lock (_lock)
                {
                    _runningJobs.Remove(job);
                    var seconds = job.Clock.Elapsed.TotalSeconds;
                    _meanSeconds[job.Label] = _meanSeconds.TryGetValue(job.Label, out var mean) ? 0.7 * mean + 0.3 * seconds : seconds;
                }
                // With one worker, the process's CPU time while a job runs is roughly the job's (what a job costs).
                _log.LogDebug("Job {Label} ran {Seconds:F3} s, process CPU {Cpu:F3} s", job.Label, job.Clock.Elapsed.TotalSeconds, (Environment.CpuUsage.TotalTime - cpu).TotalSeconds);
                Changed?.Invoke();
            }
            if (IsIdle) _ = GiveBackWhenStillIdle(); // the last job's peak goes back to the system, not kept for good
        }
    }

    /// <summary>
    /// How long the queue stays idle before the last job's memory goes back: the pages that show the job's end render
    /// first. The give-back is a blocking full GC; at once, it held a class room's 30 followed screens about a second.
    /// </summary>
    public static readonly TimeSpan GiveBackAfter = TimeSpan.FromSeconds(2);

    private async Task GiveBackWhenStillIdle()
    {
        await Task.Delay(GiveBackAfter);
        if (IsIdle) ProcessMemory.GiveBackIfGrown();
    }
}
