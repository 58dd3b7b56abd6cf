using Rome.Model.Modeling;

namespace Rome.Model.Tracing;

/// <summary>Reported once the grids are done, when the severed traces (Figure 4) begin.</summary>
public sealed record TraceSevering : TraceEvent;

/// <summary>A finished trace: its grids and, when asked for, the severed curves of its last subject token.</summary>
public sealed record TraceOutcome(TraceResult Result, SeveredSummary? Severed);

/// <summary>
/// One trace as a user asks for it, for the web app and the CLI alike: the grids of <see cref="CausalTrace"/>,
/// streamed as they are computed, then (with <paramref name="sever"/>) the paper's Figure 4 for this fact: the
/// hidden state traced again with the later MLPs, then the later attention, frozen at that token (same noise).
/// </summary>
public static class TraceWorkflow
{
    public static TraceOutcome Run(LanguageModel lm, TraceRequest request, double noise, bool sever,
                                   IProgress<TraceEvent>? progress = null, CancellationToken cancel = default)
    {
        var trace = new CausalTrace(lm);
        var collector = new TraceCollector();
        foreach (var e in trace.Run(request, noise, cancel))
        {
            collector.Add(e);
            progress?.Report(e);
        }
        var result = collector.Result();
        if (!sever) return new TraceOutcome(result, null);

        progress?.Report(new TraceSevering());
        var hidden = request with { Kinds = [TraceKind.Hidden] };
        TraceResult Severed(TraceKind kind) => TraceResult.Collect(trace.Run(hidden with { Sever = kind }, noise, cancel));
        var plain = request.Kinds.Contains(TraceKind.Hidden) ? result : TraceResult.Collect(trace.Run(hidden, noise, cancel));
        return new TraceOutcome(result, SeveredSummary.Of(plain, Severed(TraceKind.Mlp), Severed(TraceKind.Attn)));
    }
}
