using Rome.Model.Modeling;

namespace Rome.Model.Tracing;

// The trace's vocabulary: what is asked (TraceRequest), what streams while it runs (TraceEvent), and what it gives
// (TraceResult, TraceOutcome). CausalTrace computes it; TraceWorkflow runs it as a user asks.

/// <summary>What is restored in a corrupted run: a block's hidden state, or a window of MLP or attention outputs.</summary>
public enum TraceKind { Hidden, Mlp, Attn }

/// <summary>
/// How the subject is corrupted. Noise: Gaussian noise on its embeddings (the paper). Str: symmetric token
/// replacement, the subject's tokens swapped for another subject's of the same count whose answer differs (Zhang &amp;
/// Nanda 2023, "Towards Best Practices of Activation Patching"), one replacement per sample.
/// </summary>
public enum TraceCorruption { Noise, Str }

/// <summary>
/// What a cell reports about the clean answer: its probability (the paper), its log-probability, or the logit
/// difference between the clean answer and the corrupted run's answer (for Str, each replacement subject's own).
/// </summary>
public enum TraceMetric { Prob, LogProb, LogitDiff }

/// <summary>
/// Denoise: one clean state restored in the corrupted run (the paper's trace: is the state sufficient?). Noise: one
/// state corrupted in the clean run (is it necessary?). Heimersheim &amp; Nanda 2024 explain why they differ.
/// </summary>
public enum TraceDirection { Denoise, Noise }

/// <summary>Patch: run the model for every cell. Attribution: estimate every cell to first order from one backward pass.</summary>
public enum TraceMethod { Patch, Attribution }

/// <summary>How a grid was made; the defaults are the paper's trace.</summary>
public sealed record TraceOptions(
    TraceCorruption Corruption = TraceCorruption.Noise, TraceMetric Metric = TraceMetric.Prob,
    TraceDirection Direction = TraceDirection.Denoise, TraceMethod Method = TraceMethod.Patch)
{
    public static readonly TraceOptions Paper = new();

    /// <summary>What the metric is called in a sentence: "p(answer)", "log p(answer)", "logit difference".</summary>
    public string MetricName => Metric switch { TraceMetric.Prob => "p(answer)", TraceMetric.LogProb => "log p(answer)", _ => "logit(answer) − logit(corrupted answer)" };

    /// <summary>What one cell of a grid means, in one sentence.</summary>
    public string CellMeaning => (Direction == TraceDirection.Denoise
            ? $"{MetricName} with one clean state restored in the run whose subject is {CorruptionText}"
            : $"{MetricName} with one state taken from the run whose subject is {CorruptionText}, in the clean run")
        + (Method == TraceMethod.Attribution ? ", estimated to first order from gradients (attribution patching)" : "");

    private string CorruptionText => Corruption == TraceCorruption.Noise ? "noised" : "replaced by another subject's tokens";

    /// <summary>The settings as the CLI names them, e.g. "noise, prob, denoise, patch".</summary>
    public override string ToString() =>
        string.Join(", ", Corruption.ToString().ToLowerInvariant(), Metric == TraceMetric.LogitDiff ? "logit-diff" : Metric.ToString().ToLowerInvariant(),
            Direction.ToString().ToLowerInvariant(), Method.ToString().ToLowerInvariant());

    /// <summary>Reads <see cref="ToString"/>'s form back ("str, logit-diff, denoise, patch"; commas, spaces optional).</summary>
    public static TraceOptions ParseList(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length != 4) throw new RomeException($"'{text}' is not four settings: corruption, metric, direction, method (e.g. str,prob,denoise,patch).");
        return Parse(parts[0], parts[1], parts[2], parts[3]);
    }

    /// <summary>One sentence on what <paramref name="other"/> does differently from these settings (empty when nothing).</summary>
    public string Differences(TraceOptions other)
    {
        var said = new List<string>();
        if (Corruption != other.Corruption)
            said.Add(other.Corruption == TraceCorruption.Str ? "replaces the subject's tokens by other subjects' instead of noising them" : "noises the subject's embeddings instead of replacing its tokens");
        if (Metric != other.Metric) said.Add($"measures {other.MetricName} instead of {MetricName}");
        if (Direction != other.Direction)
            said.Add(other.Direction == TraceDirection.Noise ? "corrupts one state in the clean run (is it necessary?) instead of restoring one in the corrupted run (is it sufficient?)"
                                                             : "restores one state in the corrupted run (is it sufficient?) instead of corrupting one in the clean run (is it necessary?)");
        if (Method != other.Method)
            said.Add(other.Method == TraceMethod.Attribution ? "estimates each cell from gradients instead of patching it" : "patches each cell instead of estimating it from gradients");
        return said.Count == 0 ? "" : "It " + string.Join("; it ", said) + ".";
    }

    /// <summary>Reads the CLI's and the page's names (noise|str, prob|logprob|logit-diff, denoise|noise, patch|attribution).</summary>
    public static TraceOptions Parse(string? corrupt, string? metric, string? direction, string? method) => new(
        (corrupt ?? "noise").ToLowerInvariant() switch { "noise" => TraceCorruption.Noise, "str" => TraceCorruption.Str, var x => throw new RomeException($"Unknown corruption '{x}' (noise or str).") },
        (metric ?? "prob").ToLowerInvariant() switch { "prob" => TraceMetric.Prob, "logprob" => TraceMetric.LogProb, "logit-diff" => TraceMetric.LogitDiff, var x => throw new RomeException($"Unknown metric '{x}' (prob, logprob or logit-diff).") },
        (direction ?? "denoise").ToLowerInvariant() switch { "denoise" => TraceDirection.Denoise, "noise" => TraceDirection.Noise, var x => throw new RomeException($"Unknown direction '{x}' (denoise or noise).") },
        (method ?? "patch").ToLowerInvariant() switch { "patch" => TraceMethod.Patch, "attribution" => TraceMethod.Attribution, var x => throw new RomeException($"Unknown method '{x}' (patch or attribution).") });
}

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
    /// <summary>Corruption, metric, direction and method; the defaults are the paper's.</summary>
    public TraceOptions Options { get; init; } = TraceOptions.Paper;
    /// <summary>
    /// Subjects <see cref="TraceCorruption.Str"/> may put in the subject's place (the model's facts' subjects): it takes
    /// up to <see cref="Samples"/> of them, in an order set by <see cref="Seed"/>, that have as many tokens here and
    /// make the model answer otherwise (<see cref="TokenReplacement"/>).
    /// </summary>
    public IReadOnlyList<string> ReplacementPool { get; init; } = [];
}

/// <summary>What a trace measures, known before any cell: the answer, the high and low scores, and the grids (kinds) to come.</summary>
public sealed record TraceSetup(
    string Prompt, string[] Tokens, TokenSpan Subject, int AnswerToken, string Answer,
    double HighScore, double LowScore, double Noise, int Layers, int Window, int Samples, IReadOnlyList<TraceKind> Kinds, string? NoiseSource = null,
    TraceOptions? Options = null, IReadOnlyList<string>? Replacements = null)
{
    /// <summary>How the grids were made (the paper's trace unless said).</summary>
    public TraceOptions Settings => Options ?? TraceOptions.Paper;
    /// <summary>What a cell shows when nothing it changes matters: the corrupted run's score when restoring, the clean run's when corrupting.</summary>
    public double Baseline => Settings.Direction == TraceDirection.Denoise ? LowScore : HighScore;
}

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
