using Rome.Model.Tracing;

namespace Rome.Web.Components.Shared;

/// <summary>Plotly colour scales in the paper's colours (<see cref="Rome.Model.Tracing.PaperColours"/>).</summary>
public static class ColourScales
{
    /// <summary>White for no effect, the kind's colour for the strongest.</summary>
    public static object For(TraceKind kind) => new object[] { new object[] { 0, "#ffffff" }, new object[] { 1, PaperColours.Strongest[kind] } };
}
