using System.Text;

namespace Rome.Web.Services.Class;

/// <summary>
/// Which replica holds a class room, read off its code: a server with a replica name (<c>Rome:Replica</c>) starts its
/// rooms' codes with a character derived from that name, so the proxy (which links this file) sends <c>/join/CODE</c>
/// to that replica, and its session affinity keeps the student there. Rooms then need no state shared between replicas.
/// </summary>
public static class ReplicaMark
{
    /// <summary>The characters of room codes: none that can be mistaken for another when read aloud (no 0/O, 1/I/L).</summary>
    public const string Alphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";

    /// <summary>The mark of a replica name (FNV-1a over its UTF-8 bytes, into the alphabet).</summary>
    public static char Of(string replica)
    {
        var hash = 2166136261u;
        foreach (var b in Encoding.UTF8.GetBytes(replica)) hash = (hash ^ b) * 16777619u;
        return Alphabet[(int)(hash % (uint)Alphabet.Length)];
    }

    /// <summary>The code a path joins (<c>/join/CODE</c>, as a student may type it), upper case without spaces or dashes; null for other paths.</summary>
    public static string? JoinedCode(string path) =>
        path.StartsWith("/join/", StringComparison.OrdinalIgnoreCase)
            ? Normalize(Uri.UnescapeDataString(path["/join/".Length..]))
            : null;

    public static string Normalize(string? code) => new((code ?? "").Where(char.IsLetterOrDigit).Select(char.ToUpperInvariant).ToArray());
}
