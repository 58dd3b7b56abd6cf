using Rome.Model.Modeling;

namespace Rome.Model.Tracing;

/// <summary>
/// One trace as a user asks for it, for the web app and the CLI alike: the grids of <see cref="CausalTrace"/> (or,
/// estimated, of <see cref="AttributionPatching"/>),
/// streamed as they are computed into <paramref name="grids"/>, then, with <c>sever</c>, this fact's Figure 4
/// (<see cref="SeveredTrace"/>), which needs the hidden-state grid, so it is always traced then.
/// </summary>
public static class TraceWorkflow
{
    /// <summary>The grids' events as the request's method makes them: patched (<see cref="CausalTrace"/>) or estimated (<see cref="AttributionPatching"/>).</summary>
    public static IEnumerable<TraceEvent> Events(LanguageModel lm, TraceRequest request, double noise, CancellationToken cancel = default) =>
        request.Options.Method == TraceMethod.Attribution ? new AttributionPatching(lm).Run(request, noise, cancel) : new CausalTrace(lm).Run(request, noise, cancel);

    public static TraceOutcome Run(LanguageModel lm, TraceRequest request, double noise, bool sever, TraceCollector? grids = null,
                                   IProgress<TraceEvent>? progress = null, CancellationToken cancel = default)
    {
        if (sever && !request.Kinds.Contains(TraceKind.Hidden)) request = request with { Kinds = [TraceKind.Hidden, .. request.Kinds] };
        if (request.Kinds.Count == 0) throw new RomeException("Choose at least one kind of state to restore.");
        grids ??= new TraceCollector();
        var trace = new CausalTrace(lm);
        foreach (var e in Events(lm, request, noise, cancel))
        {
            grids.Add(e);
            progress?.Report(e);
        }
        var result = grids.Result();
        if (!sever) return new TraceOutcome(result, null);
        progress?.Report(new TraceSevering());
        return new TraceOutcome(result, SeveredTrace.Run(trace, request, noise, result, cancel));
    }
}
