using Rome.Model.Modeling;

namespace Rome.Model.Tracing;

// The trace's vocabulary: what is asked (TraceRequest), what streams while it runs (TraceEvent), and what it gives
// (TraceResult, TraceOutcome). CausalTrace computes it; TraceWorkflow runs it as a user asks.

/// <summary>What is restored in a corrupted run: a block's hidden state, or a window of MLP or attention outputs.</summary>
public enum TraceKind { Hidden, Mlp, Attn }

/// <summary>A causal-tracing request (Meng et al. 2022, section 2).</summary>
public sealed record TraceRequest
{
    public required string Prompt { get; init; }
    public required string Subject { get; init; }
    public IReadOnlyList<TraceKind> Kinds { get; init; } = [TraceKind.Hidden, TraceKind.Mlp, TraceKind.Attn];
    /// <summary>Corrupted samples per cell (the paper: 10).</summary>
    public int Samples { get; init; } = 10;
    /// <summary>Absolute noise std ν. Null: <see cref="NoiseLevel.Multiplier"/> x σ of subject embeddings.</summary>
    public double? Noise { get; init; }
    /// <summary>Consecutive MLP/attention layers restored together. Null: <see cref="CausalTrace.DefaultWindow"/>.</summary>
    public int? Window { get; init; }
    public int Seed { get; init; }
    /// <summary>
    /// Sever the path through this sublayer (Mlp or Attn) at the restored token for the layers after the
    /// restored one (the paper's Figure 4): only meaningful with <see cref="TraceKind.Hidden"/>.
    /// </summary>
    public TraceKind? Sever { get; init; }
    /// <summary>Edits the traced model carries (a session's edits, as overlays): every run, clean
    /// and corrupted, goes through them, so a trace shows where the edited model keeps the new fact.</summary>
    public IReadOnlyList<WeightOverlay> Edits { get; init; } = [];
    /// <summary>How ν was chosen, reported with the results (<see cref="NoiseLevel.Describe"/>).</summary>
    public string? NoiseSource { get; init; }
}

/// <summary>What a trace measures, known before any cell: the answer, the high and low scores, and the grids (kinds) to come.</summary>
public sealed record TraceSetup(
    string Prompt, string[] Tokens, TokenSpan Subject, int AnswerToken, string Answer,
    double HighScore, double LowScore, double Noise, int Layers, int Window, int Samples, IReadOnlyList<TraceKind> Kinds, string? NoiseSource = null);

public abstract record TraceEvent;
public sealed record TraceStarted(TraceSetup Setup) : TraceEvent;
/// <summary>
/// Some cells of one grid: Scores[i][j] is the mean probability of the answer with (Tokens[i], Layers[j]) restored.
/// Progress is the fraction of all the trace's cells done.
/// </summary>
public sealed record TraceCells(TraceKind Kind, int[] Tokens, int[] Layers, double[][] Scores, double Progress) : TraceEvent;
/// <summary>Reported once the grids are done, when the severed traces (Figure 4) begin.</summary>
public sealed record TraceSevering : TraceEvent;

/// <summary>A finished trace: its grids and, when asked for, the severed curves of its last subject token.</summary>
public sealed record TraceOutcome(TraceResult Result, SeveredSummary? Severed);

/// <summary>The grids of one trace: Scores[kind][token][layer]; indirect effect = score − low score.</summary>
public sealed record TraceResult(TraceSetup Setup, IReadOnlyDictionary<TraceKind, double[][]> Scores)
{
    public double IndirectEffect(TraceKind kind, int token, int layer) => Scores[kind][token][layer] - Setup.LowScore;

    /// <summary>Every cell as CSV: kind, token, whether it is a subject token, layer, score and indirect effect.</summary>
    public string ToCsv()
    {
        var sb = new System.Text.StringBuilder("kind,token_index,token,subject,layer,score,indirect_effect\n");
        foreach (var (kind, grid) in Scores)
            for (int t = 0; t < grid.Length; t++)
                for (int l = 0; l < grid[t].Length; l++)
                    sb.Append(System.Globalization.CultureInfo.InvariantCulture,
                        $"{kind.ToString().ToLowerInvariant()},{t},\"{Setup.Tokens[t].Replace("\"", "\"\"")}\",{Setup.Subject.Contains(t)},{l},{grid[t][l]:G6},{IndirectEffect(kind, t, l):G6}\n");
        return sb.ToString();
    }

    public static TraceResult Collect(IEnumerable<TraceEvent> events)
    {
        var collector = new TraceCollector();
        foreach (var e in events) collector.Add(e);
        return collector.Result();
    }
}

/// <summary>
/// A trace's grids as its events arrive, Grid(kind)[token][layer], null until computed: what a trace is collected into
/// (<see cref="TraceWorkflow"/>), and what the web page draws while cells stream in. One thread adds while others
/// read.
/// </summary>
public sealed class TraceCollector
{
    private readonly Dictionary<TraceKind, double?[][]> _grids = new();
    private readonly Lock _lock = new();

    public TraceSetup? Setup { get; private set; }

    /// <summary>Takes one event.</summary>
    public void Add(TraceEvent e)
    {
        lock (_lock)
        {
            if (e is TraceStarted s) Setup = s.Setup;
            if (e is not TraceCells c) return;
            if (!_grids.TryGetValue(c.Kind, out var grid))
                _grids[c.Kind] = grid = Enumerable.Range(0, Setup!.Tokens.Length).Select(_ => new double?[Setup.Layers]).ToArray();
            for (int i = 0; i < c.Tokens.Length; i++)
                for (int j = 0; j < c.Layers.Length; j++) grid[c.Tokens[i]][c.Layers[j]] = c.Scores[i][j];
        }
    }

    /// <summary>A copy of one grid so far ([token][layer], null where not computed yet), or null before its first cells.</summary>
    public double?[][]? Grid(TraceKind kind)
    {
        lock (_lock) return _grids.TryGetValue(kind, out var grid) ? grid.Select(r => r.ToArray()).ToArray() : null;
    }

    public int CellsDone(TraceKind kind)
    {
        lock (_lock) return _grids.TryGetValue(kind, out var grid) ? grid.Sum(r => r.Count(v => v is not null)) : 0;
    }

    public bool IsComplete(TraceKind kind) => Setup is { } s && CellsDone(kind) == s.Tokens.Length * s.Layers;

    /// <summary>The grids so far (cells not computed yet are NaN).</summary>
    public TraceResult Result()
    {
        lock (_lock)
            return new(Setup ?? throw new InvalidOperationException("empty trace"),
                _grids.ToDictionary(g => g.Key, g => g.Value.Select(r => r.Select(v => v ?? double.NaN).ToArray()).ToArray()));
    }
}
