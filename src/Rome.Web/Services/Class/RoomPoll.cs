namespace Rome.Web.Services.Class;

/// <summary>
/// "Where does the model keep it?": before the trace of a fact is revealed, each student clicks the cell (token x
/// layer) where they think the fact is stored. One guess per student, changeable until the teacher reveals the trace.
/// </summary>
public sealed class RoomPoll(string prompt, string subject, IReadOnlyList<string> tokens, int layers)
{
    private readonly Dictionary<RoomMember, (int Token, int Layer)> _guesses = new();
    private readonly Lock _lock = new();

    public string Prompt { get; } = prompt;
    public string Subject { get; } = subject;
    /// <summary>The prompt's tokens, as the trace's rows will show them.</summary>
    public IReadOnlyList<string> Tokens { get; } = tokens;
    public int Layers { get; } = layers;
    /// <summary>The teacher has revealed the trace: guesses are closed.</summary>
    public bool Revealed { get; internal set; }

    public int Votes { get { lock (_lock) return _guesses.Count; } }

    /// <summary>How many students chose each cell, [token][layer].</summary>
    public int[][] Counts()
    {
        var counts = Tokens.Select(_ => new int[Layers]).ToArray();
        lock (_lock)
            foreach (var (t, l) in _guesses.Values) counts[t][l]++;
        return counts;
    }

    public (int Token, int Layer)? GuessOf(RoomMember member)
    {
        lock (_lock) return _guesses.TryGetValue(member, out var g) ? g : null;
    }

    internal void Guess(RoomMember member, int token, int layer)
    {
        if (token < 0 || token >= Tokens.Count || layer < 0 || layer >= Layers) throw new Rome.Model.RomeException("That cell is not in the grid.");
        lock (_lock)
        {
            if (Revealed) throw new Rome.Model.RomeException("The trace is revealed: the poll is closed.");
            _guesses[member] = (token, layer);
        }
    }
}
