namespace Rome.Model.Tracing;

/// <summary>The paper's colour per kind of trace (its strongest effect; no effect is white), for every chart that draws one.</summary>
public static class PaperColours
{
    public static readonly IReadOnlyDictionary<TraceKind, string> Strongest = new Dictionary<TraceKind, string>
    {
        [TraceKind.Hidden] = "#4b0082",
        [TraceKind.Mlp] = "#006e28",
        [TraceKind.Attn] = "#aa0000",
    };
}
