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
/// The teacher's trace as the room sees it: the same grids the teacher's job fills (computed once), and where the job
/// stands. Followers draw it as it fills; it belongs to the teacher's page until the next trace replaces it.
/// </summary>
public sealed class RoomTrace(string prompt, string subject, int edits, IReadOnlyList<int> mlpFree)
{
    public string Prompt { get; } = prompt;
    public string Subject { get; } = subject;
    /// <summary>The grids, filled cell by cell by the teacher's job.</summary>
    public TraceCollector Grids { get; } = new();
    /// <summary>running, done, cancelled or error (as the Trace page's data-state).</summary>
    public string State { get; internal set; } = "running";
    public double Progress { get; internal set; }
    public SeveredSummary? Severed { get; internal set; }
    /// <summary>How many of the teacher's edits the trace ran on.</summary>
    public int Edits { get; } = edits;
    /// <summary>The traced model's blocks without an MLP (named under the MLP grid).</summary>
    public IReadOnlyList<int> MlpFree { get; } = mlpFree;
}

/// <summary>
/// A class room: a code students join by, its members, and what the teacher shows them. Everything a member's page
/// draws of the room comes from here, and <see cref="Changed"/> tells those pages to redraw. Thread-safe.
/// </summary>
public sealed class Room(string code, string teacherKey, int capacity)
{
    private readonly Lock _lock = new();
    private readonly List<RoomMember> _members = [];
    private int _joined;

    public string Code { get; } = code;
    internal string TeacherKey { get; } = teacherKey;
    public int Capacity { get; } = capacity;
    public bool Closed { get; private set; }
    /// <summary>Why the room ended, for the students' pages.</summary>
    public string? ClosedReason { get; private set; }
    internal DateTime LastActivity { get; private set; } = DateTime.UtcNow;

    /// <summary>The teacher's latest trace, if any.</summary>
    public RoomTrace? Trace { get; private set; }

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
        var trace = new RoomTrace(prompt, subject, edits, mlpFree);
        lock (_lock) { Trace = trace; Touch(); }
        Raise();
        return trace;
    }

    /// <summary>The teacher's job moved on (a trace event, or its end).</summary>
    internal void Updated() => Raise();

    internal void Close(string reason)
    {
        lock (_lock)
        {
            if (Closed) return;
            (Closed, ClosedReason) = (true, reason);
        }
        Raise();
    }

    internal void Touch() => LastActivity = DateTime.UtcNow;

    private void Raise() => Changed?.Invoke();
}
