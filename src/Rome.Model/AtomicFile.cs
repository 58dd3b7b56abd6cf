namespace Rome.Model;

/// <summary>Files written whole or not at all.</summary>
public static class AtomicFile
{
    /// <summary>
    /// Writes <paramref name="path"/> through a temporary file of its own and a rename, so a reader never sees half a
    /// file and two writers at once (say, two tabs filling the same cache entry) each replace it whole.
    /// </summary>
    public static void Write(string path, Action<string> write)
    {
        var temp = $"{path}.{Guid.NewGuid():N}.partial";
        try
        {
            write(temp);
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>Writes <paramref name="text"/> to <paramref name="path"/> atomically.</summary>
    public static void WriteText(string path, string text) => Write(path, temp => File.WriteAllText(temp, text));
}
