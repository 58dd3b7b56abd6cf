using Rome.Model;
using Rome.Model.Tracing;
using Rome.Web.Services.Class;

namespace Rome.Web.Services;

/// <summary>What a tab asks to trace: the prompt and subject, which grids, samples, noise ("3s" or a number), whether
/// on its edited model, whether to sever (Figure 4), and whether on its class room's model (with the class's edits).</summary>
public sealed record TraceInput(string Prompt, string Subject, IReadOnlyList<TraceKind> Kinds, int Samples, string Noise, bool WithEdits, bool Sever, bool OnRoomModel = false)
{
    /// <summary>How to trace: the paper's trace by default.</summary>
    public TraceOptions Options { get; init; } = TraceOptions.Paper;
    /// <summary>Other settings to trace the same fact with, beside it (the Trace page's comparison), or null.</summary>
    public TraceOptions? Compare { get; init; }
    /// <summary>Whether the room this tab leads follows this trace (not the second trace of a comparison).</summary>
    public bool Followed { get; init; } = true;

    /// <summary>The Trace page's address that traces this again: the settings beyond the paper's only when chosen.</summary>
    public Dictionary<string, object?> Link()
    {
        var link = new Dictionary<string, object?> { ["prompt"] = Prompt, ["subject"] = Subject, ["run"] = 1 };
        if (Options != TraceOptions.Paper)
        {
            var names = Options.ToString().Split(", ");
            (link["corrupt"], link["metric"], link["direction"], link["method"]) = (names[0], names[1], names[2], names[3]);
        }
        if (Compare is { } other) link["compare"] = other.ToString().Replace(" ", "");
        return link;
    }
}

/// <summary>
/// The Trace page's service: checks what the tab asked, queues the trace of its model and awaits it. A teacher's trace
/// is also the room's (<see cref="ClassService"/>): its followers draw the same events, computed once.
/// </summary>
public sealed class TraceService(UserSession user, SessionJobs jobs, ClassService? classroom = null)
{
    public const string Label = "trace";

    public SessionJobs Jobs => jobs;

    /// <summary>How many edits the tab's model carries (a trace can include them).</summary>
    public int EditCount => user.EditCount;

    /// <summary>How many batches the class has written into the room's model of the tab's room (0 outside a room).</summary>
    public int RoomEditCount => classroom?.Room?.Edits?.Edits.Count ?? 0;

    /// <summary>The tab's model's averaged trace kept beside it, if any.</summary>
    public AveragedTraceFile? AveragedTrace => user.Host.AveragedTrace;

    public int MaxSamples => user.Host.Settings.MaxTraceSamples;

    /// <summary>The blocks of the tab's model that have no MLP (empty for most models).</summary>
    public IReadOnlyList<int> MlpFreeLayers => user.Host.MlpFreeLayers;

    /// <summary>The longest subject the model knows facts about that occurs in <paramref name="prompt"/>, if any.</summary>
    public string? KnownSubjectIn(string prompt) =>
        user.Host.Facts?.Facts.Select(f => f.Subject).Where(prompt.Contains).MaxBy(s => s.Length);

    /// <summary>A finished trace's grids as a CSV download link (a data URI).</summary>
    public static string CsvLink(TraceResult result) =>
        "data:text/csv;base64," + Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(result.ToCsv()));

    /// <summary>
    /// Traces the tab's model (with copies of its edits when asked, whatever the tab does to its stack meanwhile),
    /// collecting the grids into <paramref name="grids"/> and streaming each event to <paramref name="progress"/>.
    /// Bad input is a <see cref="RomeException"/>, raised before anything is queued.
    /// </summary>
    public async Task<TraceOutcome> TraceAsync(TraceInput input, TraceCollector? grids = null, IProgress<TraceEvent>? progress = null, CancellationToken cancel = default)
    {
        input = input with { Prompt = Rome.Model.Editing.EditRequest.Sentence(input.Prompt, input.Subject), Subject = input.Subject.Trim() };
        var room = input.OnRoomModel ? classroom?.Room ?? throw new RomeException("This tab is in no class room.") : null;
        var (host, lm) = room is null ? (user.Host, user.Host.Require()) : (room.Host, room.Host.Require());
        var settings = host.Settings;
        if (input.Kinds.Count == 0 && !input.Sever) throw new RomeException("Choose at least one kind of state to restore.");
        var tokens = lm.Encode(input.Prompt).Length;
        if (tokens > settings.MaxPromptTokens) throw new RomeException($"The prompt is {tokens} tokens long; the limit is {settings.MaxPromptTokens}.");
        if (input.Samples < 1 || input.Samples > settings.MaxTraceSamples) throw new RomeException($"Samples must be between 1 and {settings.MaxTraceSamples}.");
        lm.Tokenizer.FindSpan(input.Prompt, input.Subject);
        var noise = NoiseLevel.Parse(input.Noise, () => NoiseLevel.SubjectStd(lm, settings.CacheFolder, settings.DataFolder));
        var edits = room is not null ? room.Edits?.CopyOverlays() ?? [] : input.WithEdits && user.EditCount > 0 ? user.Edits.CopyOverlays() : [];
        try
        {
            if (input.Sever && (input.Options.Direction == TraceDirection.Noise || input.Options.Method == TraceMethod.Attribution))
                throw new RomeException("Severing restores and patches states: choose \"restore a clean state\" and \"patch every cell\" to sever.");
            var request = new TraceRequest
            {
                Prompt = input.Prompt, Subject = input.Subject, Kinds = input.Kinds, Samples = input.Samples, Edits = edits,
                NoiseSource = NoiseLevel.Describe(input.Noise, lm), Options = input.Options,
                ReplacementPool = input.Options.Corruption == TraceCorruption.Str
                    ? host.Facts?.Facts.Select(f => f.Subject).Distinct().ToList() ?? NoiseLevel.Subjects(lm, settings.DataFolder) ?? throw new RomeException("Replacing the subject needs other subjects, and this model has no facts.json (nor is known_1000.json in the data folder): corrupt it with noise.")
                    : [],
            };
            Task<TraceOutcome> Trace(IProgress<TraceEvent>? p) => jobs.Run(Label, c => TraceWorkflow.Run(lm, request, noise, input.Sever, grids, p, c), cancel);
            return !input.Followed ? await Trace(progress)
                : classroom?.ShareTrace(input.Prompt, input.Subject, edits.Count, host.MlpFreeLayers) is { } shared
                ? await shared.Run(progress, Trace, outcome => shared.Severed = outcome.Severed)
                : await Trace(progress);
        }
        finally { foreach (var edit in edits) edit.Dispose(); }
    }
}
