using Rome.Model;
using Rome.Model.Editing;
using Rome.Model.Tracing;

namespace Rome.Web.Services.Class;

/// <summary>A student in a room: the name they typed (or "student N"), and whether their screen follows the teacher.</summary>
public sealed class RoomMember(string id, string name)
{
    public string Id { get; } = id;
    public string Name { get; } = name;
    /// <summary>How many of the member's pages show the teacher's screen now (0: exploring on their own).</summary>
    internal int Followers;
    public bool Following => Followers > 0;
}

/// <summary>
/// What a teacher's job shows the room (a trace, an edit): the job's events, taken into the room's copy as they come,
/// and where the job stands. Computed once, on the teacher's job; followers draw the copy.
/// </summary>
public abstract class RoomShown<TEvent>(Room room)
{
    private readonly Room _room = room;

    /// <summary>running, done, cancelled or error (as the pages' data-state).</summary>
    public string State { get; private set; } = "running";
    /// <summary>When the teacher's job finished (UTC), so followers' pages can log how long after it they were sent it.</summary>
    public DateTime? Finished { get; private set; }

    /// <summary>Takes one event of the teacher's job into the room's copy.</summary>
    internal abstract void Take(TEvent e);

    /// <summary>
    /// Runs the teacher's <paramref name="job"/> for the room: each event it reports goes into this copy, then on to
    /// <paramref name="inner"/> (the teacher's page); its end marks the copy done (after <paramref name="finish"/>),
    /// cancelled or failed; the room is told of each.
    /// </summary>
    internal async Task<T> Run<T>(IProgress<TEvent>? inner, Func<IProgress<TEvent>, Task<T>> job, Action<T>? finish = null)
    {
        try
        {
            var result = await job(new Forward(this, inner));
            finish?.Invoke(result);
            (State, Finished) = ("done", DateTime.UtcNow);
            return result;
        }
        catch (OperationCanceledException) { State = "cancelled"; throw; }
        catch (Exception) { State = "error"; throw; }
        finally { _room.Updated(); }
    }

    private sealed class Forward(RoomShown<TEvent> shown, IProgress<TEvent>? inner) : IProgress<TEvent>
    {
        public void Report(TEvent e)
        {
            shown.Take(e);
            shown._room.Updated();
            inner?.Report(e);
        }
    }
}

/// <summary>
/// The teacher's trace as the room sees it: the same grids the teacher's job fills, and its progress. It stays the
/// room's until the teacher's next trace replaces it.
/// </summary>
public sealed class RoomTrace(Room room, string prompt, string subject, int edits, IReadOnlyList<int> mlpFree) : RoomShown<TraceEvent>(room)
{
    public string Prompt { get; } = prompt;
    public string Subject { get; } = subject;
    /// <summary>The grids, filled cell by cell by the teacher's job.</summary>
    public TraceCollector Grids { get; } = new();
    public double Progress { get; private set; }
    public SeveredSummary? Severed { get; internal set; }
    /// <summary>How many of the teacher's edits the trace ran on.</summary>
    public int Edits { get; } = edits;
    /// <summary>The traced model's blocks without an MLP (named under the MLP grid).</summary>
    public IReadOnlyList<int> MlpFree { get; } = mlpFree;

    internal override void Take(TraceEvent e)
    {
        Grids.Add(e);
        if (e is TraceCells c) Progress = c.Progress;
    }
}

/// <summary>The teacher's edit as the room sees it: the fact, the v* curve, the verdict, before and after.</summary>
public sealed class RoomEdit(Room room, EditRequest request) : RoomShown<EditUpdate>(room)
{
    private readonly Lock _lock = new();
    private List<EditProgress> _curve = [];

    public EditRequest Request { get; } = request;
    public string Status { get; private set; } = "";
    public IReadOnlyList<EditProgress> Curve { get { lock (_lock) return _curve; } }
    public EditReport? Before { get; private set; }
    public EditReport? After { get; private set; }
    public EditVerdict? Verdict { get; private set; }

    internal override void Take(EditUpdate update)
    {
        lock (_lock)
            switch (update)
            {
                case EditStage stage: Status = stage.Text; break;
                case EditMeasured { After: false } m: Before = m.Report; break;
                case EditMeasured m: After = m.Report; break;
                case EditJudged j: Verdict = j.Verdict; break;
                case EditStep { Step: var p }:
                    _curve = [.. _curve, p];
                    Status = $"Optimising v*: step {p.Step}/{p.Steps}, p(target) {p.TargetProbability:P1}";
                    break;
            }
    }
}

/// <summary>
/// A fact a student proposes to rewrite in the room's model: pending until the teacher accepts or rejects it, applied
/// once the teacher writes the accepted ones. A student has one at a time, and may change it until it is accepted.
/// </summary>
public sealed record Submission(string Id, RoomMember Member, EditRequest Request)
{
    public const string Pending = "pending", Accepted = "accepted", Rejected = "rejected", Applied = "applied";
    public string Status { get; internal set; } = Pending;
}

/// <summary>A batch of the class's facts written into the room's model: each fact's result, the neighbours it changed, and the model's health.</summary>
public sealed record RoomBatch(BatchReport Report, IReadOnlyList<IReadOnlyList<string>> Flipped, IReadOnlyList<string> Names);

/// <summary>
/// A class room: a code students join by, its members, and what the teacher shows them. Everything a member's page
/// draws of the room comes from here, and <see cref="Changed"/> tells those pages to redraw. Thread-safe.
/// </summary>
public sealed class Room(string code, string teacherKey, int capacity, ModelHost host)
{
    private readonly Lock _lock = new();
    private readonly List<RoomMember> _members = [];
    private int _joined;

    public string Code { get; } = code;
    internal string TeacherKey { get; } = teacherKey;
    public int Capacity { get; } = capacity;
    /// <summary>The model the room edits together: the teacher's when the room started.</summary>
    public ModelHost Host { get; } = host;
    public bool Closed { get; private set; }
    /// <summary>Why the room ended, for the students' pages.</summary>
    public string? ClosedReason { get; private set; }
    internal DateTime LastActivity { get; private set; } = DateTime.UtcNow;

    /// <summary>The teacher's latest trace, if any.</summary>
    public RoomTrace? Trace { get; private set; }

    /// <summary>The teacher's latest edit, if any.</summary>
    public RoomEdit? Edit { get; private set; }
    /// <summary>What the teacher did last, which followers see first: "trace" or "edit" (null before either).</summary>
    public string? Showing { get; private set; }

    internal RoomEdit StartEdit(EditRequest request)
    {
        var edit = new RoomEdit(this, request);
        lock (_lock) { (Edit, Showing) = (edit, "edit"); Touch(); }
        Raise();
        return edit;
    }

    /// <summary>The teacher's poll, if one is open or revealed.</summary>
    public RoomPoll? Poll { get; private set; }

    internal void OpenPoll(RoomPoll poll)
    {
        lock (_lock) { Poll = poll; Touch(); }
        Raise();
    }

    internal void Guess(RoomMember member, int token, int layer)
    {
        if (Poll is not { } poll) throw new RomeException("There is no poll open.");
        lock (_lock)
        {
            if (!_members.Contains(member)) throw new RomeException("You are not in this room any more: join it again.");
            Touch();
        }
        poll.Guess(member, token, layer);
        Raise();
    }

    internal void RevealPoll()
    {
        if (Poll is { } poll) poll.Revealed = true;
        Raise();
    }

    /// <summary>The room's model: its edits (a stack of its own, apart from every tab's), made on first use.</summary>
    public EditSession? Edits { get; private set; }
    /// <summary>The last batch of the class's facts written, for every member's screen.</summary>
    public RoomBatch? LastBatch { get; private set; }
    /// <summary>A batch is being written (one at a time).</summary>
    public bool Writing { get; private set; }

    private readonly List<Submission> _submissions = [];
    public IReadOnlyList<Submission> Submissions { get { lock (_lock) return _submissions.ToList(); } }
    public Submission? SubmissionOf(RoomMember member) { lock (_lock) return _submissions.LastOrDefault(s => s.Member == member && s.Status != Submission.Applied); }

    /// <summary>Raised (on any thread) when members come or go, the room closes, or the teacher's trace moves on.</summary>
    public event Action? Changed;

    public IReadOnlyList<RoomMember> Members { get { lock (_lock) return _members.ToList(); } }
    public int FollowingCount { get { lock (_lock) return _members.Count(m => m.Following); } }

    internal RoomMember Join(string? name)
    {
        RoomMember member;
        lock (_lock)
        {
            if (Closed) throw new Rome.Model.RomeException("This room has ended.");
            if (_members.Count >= Capacity) throw new Rome.Model.RomeException($"This room is full ({Capacity} students).");
            _joined++;
            var shown = string.IsNullOrWhiteSpace(name) ? $"student {_joined}" : name.Trim();
            member = new RoomMember(Guid.NewGuid().ToString("N"), shown.Length > 30 ? shown[..30] : shown);
            _members.Add(member);
            Touch();
        }
        Raise();
        return member;
    }

    internal void Leave(RoomMember member)
    {
        lock (_lock) _members.Remove(member);
        Raise();
    }

    /// <summary>A page of <paramref name="member"/> starts (+1) or stops (−1) showing the teacher's screen.</summary>
    internal void Follow(RoomMember member, int change)
    {
        lock (_lock) member.Followers = Math.Max(0, member.Followers + change);
        Raise();
    }

    internal RoomTrace StartTrace(string prompt, string subject, int edits, IReadOnlyList<int> mlpFree)
    {
        var trace = new RoomTrace(this, prompt, subject, edits, mlpFree);
        lock (_lock) { (Trace, Showing) = (trace, "trace"); Touch(); }
        Raise();
        return trace;
    }

    /// <summary>The teacher's job moved on (a trace event, or its end).</summary>
    internal void Updated() => Raise();

    /// <summary>A student's fact (replacing their pending or rejected one), or a clear error.</summary>
    internal Submission Submit(RoomMember member, EditRequest request)
    {
        Submission submission;
        lock (_lock)
        {
            if (Closed) throw new RomeException("This room has ended.");
            if (!_members.Contains(member)) throw new RomeException("You are not in this room any more: join it again.");
            if (_submissions.Any(s => s.Member == member && s.Status == Submission.Accepted))
                throw new RomeException("The teacher has accepted your fact: it can no longer change until it is written.");
            _submissions.RemoveAll(s => s.Member == member && s.Status is Submission.Pending or Submission.Rejected);
            _submissions.Add(submission = new Submission(Guid.NewGuid().ToString("N")[..12], member, request));
            Touch();
        }
        Raise();
        return submission;
    }

    internal void Decide(string id, bool accept)
    {
        lock (_lock)
        {
            var submission = _submissions.FirstOrDefault(s => s.Id == id) ?? throw new RomeException("That fact is no longer in the room.");
            if (submission.Status == Submission.Applied) throw new RomeException("That fact is already written.");
            submission.Status = accept ? Submission.Accepted : Submission.Rejected;
            Touch();
        }
        Raise();
    }

    /// <summary>Claims the room's model for a batch: the accepted facts, and the stack to write them on.</summary>
    internal (IReadOnlyList<Submission> Accepted, EditSession Edits) BeginWriting(Func<EditSession> create)
    {
        lock (_lock)
        {
            if (Closed) throw new RomeException("This room has ended.");
            if (Writing) throw new RomeException("A batch is being written already.");
            var accepted = _submissions.Where(s => s.Status == Submission.Accepted).ToList();
            if (accepted.Count == 0) throw new RomeException("Accept at least one fact first.");
            Writing = true;
            Touch();
            return (accepted, Edits ??= create());
        }
    }

    internal void EndWriting(IReadOnlyList<Submission> written, RoomBatch? batch)
    {
        lock (_lock)
        {
            Writing = false;
            if (batch is not null)
            {
                foreach (var s in written) s.Status = Submission.Applied;
                LastBatch = batch;
            }
            if (Closed) ReleaseModel();
        }
        Raise();
    }

    /// <summary>The room's edits changed (an undo): the last batch no longer describes the model.</summary>
    internal void EditsChanged()
    {
        lock (_lock) LastBatch = null;
        Raise();
    }

    internal void Close(string reason)
    {
        lock (_lock)
        {
            if (Closed) return;
            (Closed, ClosedReason) = (true, reason);
            if (!Writing) ReleaseModel();   // else the batch's end frees it
        }
        Raise();
    }

    private void ReleaseModel()
    {
        Edits?.Dispose();
        Edits = null;
    }

    internal void Touch() => LastActivity = DateTime.UtcNow;

    private void Raise() => Changed?.Invoke();
}
