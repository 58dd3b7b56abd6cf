using Rome.Model;

namespace Rome.Web.Services.Class;

/// <summary>
/// A tab's place in a class room, kept with the tab's state (<see cref="TabState"/>) so a reload or a dropped
/// connection comes back to it: the room, and either the teacher's key or the student's membership.
/// </summary>
public sealed record RoomSeat(Room Room, string? TeacherKey, RoomMember? Member)
{
    /// <summary>A student's seat gives its place back when the tab's state is freed.</summary>
    public void Release()
    {
        if (Member is not null) Room.Leave(Member);
    }
}

/// <summary>
/// The class room as one tab uses it: a teacher starts, leads and closes a room and runs its poll; a student joins it by
/// its code, follows the teacher's screen or explores alone, guesses in the poll, and leaves. What the teacher traces
/// or edits is shared with the room by <see cref="TraceService"/> and <see cref="EditService"/> through
/// <see cref="ShareTrace"/> and <see cref="ShareEdit"/>: computed once, on the teacher's job. Every teacher action goes
/// through <see cref="Led"/>, which checks the tab's key.
/// </summary>
public sealed class ClassService(RoomRegistry rooms, UserSession user)
{
    private RoomSeat? Seat => user.Seat is { Room.Closed: false } seat ? seat : null;

    /// <summary>The open room this tab leads or sits in, if any.</summary>
    public Room? Room => Seat?.Room;
    public bool IsTeacher => Seat?.TeacherKey is not null;
    public RoomMember? Member => Seat?.Member;

    /// <summary>The room this tab was in, if it has ended since (so the page can say so).</summary>
    public Room? EndedRoom => user.Seat is { Room.Closed: true } seat ? seat.Room : null;

    /// <summary>Starts a room led by this tab (or returns the one it leads).</summary>
    public Room Start()
    {
        if (IsTeacher) return Room!;
        Leave();
        var (room, key) = rooms.Create(user.Host);
        user.Seat = new RoomSeat(room, key, null);
        return room;
    }

    /// <summary>Ends the room this tab leads; every member's page then says so.</summary>
    public void Close()
    {
        if (Seat is not { } seat) return;
        rooms.Close(seat.Room, seat.TeacherKey);
        user.Seat = null;
    }

    /// <summary>Joins the room with <paramref name="code"/> under <paramref name="name"/> (blank: "student N"), leaving any other.</summary>
    public RoomMember Join(string? code, string? name)
    {
        var room = rooms.Find(code);
        if (Seat is { Member: { } member } seat && seat.Room == room) return member;
        if (room == Room && IsTeacher) throw new RomeException("This tab leads that room: join it from another tab or device.");
        var joined = room.Join(name);
        Leave();
        user.Seat = new RoomSeat(room, null, joined);
        return joined;
    }

    /// <summary>Leaves the room (a teacher's room stays open until closed or idle).</summary>
    public void Leave()
    {
        user.Seat?.Release();
        user.Seat = null;
    }

    /// <summary>Opens a poll on where <paramref name="subject"/>'s fact in <paramref name="prompt"/> is kept (the teacher's).</summary>
    public RoomPoll OpenPoll(string? prompt, string? subject)
    {
        var room = Led();
        var lm = room.Host.Require();
        var sentence = Rome.Model.Editing.EditRequest.Sentence(prompt ?? "", subject ?? "").Trim();
        if (string.IsNullOrWhiteSpace(subject)) throw new RomeException("Name the subject.");
        lm.Tokenizer.FindSpan(sentence, subject.Trim());
        var ids = lm.Encode(sentence);
        if (ids.Length > room.Host.Settings.MaxPromptTokens) throw new RomeException($"The prompt is {ids.Length} tokens long; the limit is {room.Host.Settings.MaxPromptTokens}.");
        var poll = new RoomPoll(sentence, subject.Trim(), lm.Tokenizer.TokenLabels(ids), lm.Layers);
        room.OpenPoll(poll);
        return poll;
    }

    /// <summary>This student's guess in the open poll.</summary>
    public void Guess(int token, int layer)
    {
        if (Seat is not { Member: { } member, Room: var room }) throw new RomeException("Join a room first.");
        room.Guess(member, token, layer);
    }

    /// <summary>Closes the poll's guesses; the teacher then traces the poll's fact for everyone.</summary>
    public RoomPoll Reveal()
    {
        var room = Led();
        var poll = room.Poll ?? throw new RomeException("There is no poll open.");
        room.RevealPoll();
        return poll;
    }

    /// <summary>While the returned handle lives, this student's screen counts as following the teacher.</summary>
    public IDisposable Follow()
    {
        if (Seat is not { Member: { } member, Room: var room }) return NoFollow.Instance;
        room.Follow(member, +1);
        return new Following(room, member);
    }

    /// <summary>A new trace shown to the room this tab leads, or null when it leads none.</summary>
    internal RoomTrace? ShareTrace(string prompt, string subject, int edits, IReadOnlyList<int> mlpFree) =>
        Seat is { TeacherKey: { } key } seat ? Authorised(seat.Room, key).StartTrace(prompt, subject, edits, mlpFree) : null;

    /// <summary>A new edit shown to the room this tab leads, or null when it leads none.</summary>
    internal RoomEdit? ShareEdit(Rome.Model.Editing.EditRequest request) =>
        Seat is { TeacherKey: { } key } seat ? Authorised(seat.Room, key).StartEdit(request) : null;

    /// <summary>The room this tab leads, or a clear error: what only the teacher may do goes through here.</summary>
    internal Room Led() => Seat is { TeacherKey: { } key } seat ? Authorised(seat.Room, key) : throw new RomeException("Only the room's teacher can do that.");

    private static Room Authorised(Room room, string key)
    {
        RoomRegistry.RequireTeacher(room, key);
        return room;
    }

    private sealed class Following(Room room, RoomMember member) : IDisposable
    {
        private int _done;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0) room.Follow(member, -1);
        }
    }

    private sealed class NoFollow : IDisposable
    {
        public static readonly NoFollow Instance = new();
        public void Dispose() { }
    }
}
