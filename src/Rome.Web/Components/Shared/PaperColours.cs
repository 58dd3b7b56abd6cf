using Rome.Model.Tracing;

namespace Rome.Web.Components.Shared;

/// <summary>The paper's heatmap colours: white for no effect, purple / green / red for the strongest.</summary>
public static class PaperColours
{
    public static readonly IReadOnlyDictionary<TraceKind, string> Strongest = new Dictionary<TraceKind, string>
    {
        [TraceKind.Hidden] = "#4b0082",
        [TraceKind.Mlp] = "#006e28",
        [TraceKind.Attn] = "#aa0000",
    };

    /// <summary>A Plotly colour scale from white to the kind's colour.</summary>
    public static object Scale(TraceKind kind) => new object[] { new object[] { 0, "#ffffff" }, new object[] { 1, Strongest[kind] } };
}
