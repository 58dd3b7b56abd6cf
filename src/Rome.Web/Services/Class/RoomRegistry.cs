using System.Collections.Concurrent;
using System.Security.Cryptography;
using Rome.Model;

namespace Rome.Web.Services.Class;

/// <summary>
/// Every open room of this server, by code. A room's code is what students type: seven characters from 31 that cannot
/// be mistaken for one another when read aloud or off a projector (no 0/O, 1/I/L), about 34.7 bits, drawn from a
/// cryptographic generator; a named replica puts its <see cref="ReplicaMark"/> before them. The teacher's key is a separate secret that only the teacher's tab holds. Rooms close when
/// the teacher closes them or after <see cref="RomeSettings.RoomIdleMinutes"/> without anything happening.
/// </summary>
public sealed class RoomRegistry : IDisposable
{
    public const string Alphabet = ReplicaMark.Alphabet;
    /// <summary>The rate-limiting policy of the join page: <see cref="RomeSettings.JoinsPerMinute"/> per address.</summary>
    public const string JoinPolicy = "join";
    public const int CodeLength = 7;

    private readonly ConcurrentDictionary<string, Room> _rooms = new();
    private readonly RomeSettings _settings;
    private readonly Timer _sweep;

    public RoomRegistry(RomeSettings settings)
    {
        _settings = settings;
        _sweep = new Timer(_ => CloseIdle(), null, TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1));
    }

    public int Count => _rooms.Count;

    /// <summary>A new room on <paramref name="host"/>'s model, and the key that drives it (kept by the teacher's tab, never put in a link).</summary>
    public (Room Room, string TeacherKey) Create(ModelHost host)
    {
        var key = Convert.ToHexString(RandomNumberGenerator.GetBytes(32));
        while (true)
        {
            var code = (_settings.Replica is { Length: > 0 } replica ? ReplicaMark.Of(replica).ToString() : "") + NewCode();
            var room = new Room(code, key, _settings.MaxRoomMembers, host);
            if (_rooms.TryAdd(room.Code, room)) return (room, key);
        }
    }

    public static string NewCode() => new(RandomNumberGenerator.GetItems<char>(Alphabet, CodeLength));

    /// <summary>
    /// The open room with this code, typed however a student types it (case, spaces and dashes do not matter), or a
    /// clear error.
    /// </summary>
    public Room Find(string? code)
    {
        var clean = ReplicaMark.Normalize(code);
        if (clean.Length == 0) throw new RomeException("Type the room's code, as the teacher's screen shows it.");
        return _rooms.TryGetValue(clean, out var room) && !room.Closed ? room
            : throw new RomeException($"There is no open room with the code {clean}: check it on the teacher's screen.");
    }

    /// <summary>Ends the room, if <paramref name="teacherKey"/> is its teacher's.</summary>
    public void Close(Room room, string? teacherKey, string reason = "The teacher has closed the room.")
    {
        RequireTeacher(room, teacherKey);
        room.Close(reason);
        _rooms.TryRemove(new(room.Code, room));
    }

    /// <summary>Refuses anything a room's teacher alone may do, unless <paramref name="teacherKey"/> is that teacher's.</summary>
    public static void RequireTeacher(Room room, string? teacherKey)
    {
        if (teacherKey is null || !CryptographicOperations.FixedTimeEquals(System.Text.Encoding.UTF8.GetBytes(teacherKey), System.Text.Encoding.UTF8.GetBytes(room.TeacherKey)))
            throw new RomeException("Only the room's teacher can do that.");
    }

    /// <summary>Closes the rooms nobody has used for the configured idle time.</summary>
    public void CloseIdle()
    {
        var limit = DateTime.UtcNow - TimeSpan.FromMinutes(_settings.RoomIdleMinutes);
        foreach (var room in _rooms.Values.Where(r => r.LastActivity < limit))
        {
            room.Close($"The room ended after {_settings.RoomIdleMinutes} minutes without activity.");
            _rooms.TryRemove(new(room.Code, room));
        }
    }

    public void Dispose() => _sweep.Dispose();
}
