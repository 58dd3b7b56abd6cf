using Rome.Model;
using Rome.Model.Tracing;

namespace Rome.Web.Services;

/// <summary>What a tab asks to trace: the prompt and subject, which grids, samples, noise ("3s" or a number), whether
/// on its edited model, and whether to sever (Figure 4).</summary>
public sealed record TraceInput(string Prompt, string Subject, IReadOnlyList<TraceKind> Kinds, int Samples, string Noise, bool WithEdits, bool Sever);

/// <summary>The Trace page's service: checks what the tab asked, queues the trace of its model and awaits it.</summary>
public sealed class TraceService(UserSession user, SessionJobs jobs)
{
    public const string Label = "trace";

    /// <summary>
    /// Traces the tab's model (with copies of its edits when asked, whatever the tab does to its stack meanwhile),
    /// streaming the grids' cells to <paramref name="progress"/>. Bad input is a <see cref="RomeException"/>.
    /// </summary>
    public async Task<TraceOutcome> TraceAsync(TraceInput input, IProgress<TraceEvent>? progress = null, CancellationToken cancel = default)
    {
        var (host, lm) = (user.Host, user.Host.Require());
        var settings = host.Settings;
        if (input.Kinds.Count == 0 && !input.Sever) throw new RomeException("Choose at least one kind of state to restore.");
        var tokens = lm.Encode(input.Prompt).Length;
        if (tokens > settings.MaxPromptTokens) throw new RomeException($"The prompt is {tokens} tokens long; the limit is {settings.MaxPromptTokens}.");
        if (input.Samples < 1 || input.Samples > settings.MaxTraceSamples) throw new RomeException($"Samples must be between 1 and {settings.MaxTraceSamples}.");
        lm.Tokenizer.FindSpan(input.Prompt, input.Subject);
        var noise = NoiseLevel.Parse(input.Noise, () => NoiseLevel.SubjectStd(lm, settings.CacheFolder, settings.DataFolder));
        var edits = input.WithEdits && user.EditCount > 0 ? user.Edits.CopyOverlays() : [];
        try
        {
            var request = new TraceRequest
            {
                Prompt = input.Prompt, Subject = input.Subject, Kinds = input.Kinds, Samples = input.Samples, Edits = edits,
                NoiseSource = NoiseLevel.Describe(input.Noise, lm),
            };
            return await jobs.Run(Label, c => TraceWorkflow.Run(lm, request, noise, input.Sever, progress, c), cancel);
        }
        finally { foreach (var edit in edits) edit.Dispose(); }
    }
}
