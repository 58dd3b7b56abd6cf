using Rome.Web.Services.Class;

namespace Rome.Web.Components.Shared;

/// <summary>
/// Redraws a component whenever the class room it shows changes (members, the teacher's trace or edit, the poll, the
/// class's facts), at most every <see cref="RedrawThrottle.Interval"/>: a trace changes the room at every cell, and a
/// room has dozens of pages.
/// </summary>
public sealed class RoomWatcher(Func<Task> redraw) : IDisposable
{
    private readonly RedrawThrottle _throttle = new(redraw);
    private Room? _room;

    /// <summary>Follows <paramref name="room"/> from now on (null: none).</summary>
    public void Watch(Room? room)
    {
        if (room == _room) return;
        if (_room is not null) _room.Changed -= Changed;
        _room = room;
        if (room is not null) room.Changed += Changed;
    }

    private void Changed()
    {
        if (_throttle.Ready(false)) _ = redraw();
    }

    public void Dispose() => Watch(null);
}
