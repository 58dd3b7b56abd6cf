using Plotly.Blazor;
using Rome.Model.Tracing;

namespace Rome.Web.Components.Shared;

/// <summary>
/// How charts look in the tab's view (the layout cascades it): text that grows with large type, and in the dark theme
/// light text, a dark "no effect" end of the heatmaps' scales and lighter lines, so a projector shows them all.
/// </summary>
public sealed record ChartStyle(bool Large, bool Dark)
{
    public static readonly ChartStyle Default = new(false, false);

    /// <summary>Chart text in pixels: body text's size, 12 px normally and 18 px in large type.</summary>
    public int FontSize => Large ? 18 : 12;

    public string Text => Dark ? "#e0e0e0" : "#333333";

    /// <summary>The colour of "no effect": white on a light page, the dark page's own grey on a dark one.</summary>
    public string Empty => Dark ? "#2a2a33" : "#ffffff";

    /// <summary>A kind's colour for lines: the paper's, lightened on a dark page.</summary>
    public string Line(TraceKind kind) => Dark ? kind switch { TraceKind.Hidden => "#c9a7ff", TraceKind.Mlp => "#6fdc8c", _ => "#ff8a80" } : PaperColours.Strongest[kind];

    /// <summary>A heatmap's scale: from <see cref="Empty"/> to the kind's colour (lightened in the dark theme).</summary>
    public object Scale(TraceKind kind) => new object[] { new object[] { 0, Empty }, new object[] { 1, Dark ? Line(kind) : PaperColours.Strongest[kind] } };

    /// <summary>A diverging scale for values either side of a baseline: blue below, <see cref="Empty"/> at it, the kind's colour above.</summary>
    public object Diverging(TraceKind kind) => new object[]
    {
        new object[] { 0, Dark ? "#7aa7ff" : "#2166ac" }, new object[] { 0.5, Empty }, new object[] { 1, Dark ? Line(kind) : PaperColours.Strongest[kind] },
    };

    /// <summary>Sets the layout's font, its title (left, clear of the toolbar at the right) and transparent backgrounds.</summary>
    public Plotly.Blazor.Layout Apply(Plotly.Blazor.Layout layout)
    {
        layout.Font = new Plotly.Blazor.LayoutLib.Font { Size = FontSize, Color = Text };
        layout.PaperBgColor = "rgba(0,0,0,0)";
        layout.PlotBgColor = "rgba(0,0,0,0)";
        if (layout.Title is { } title)
        {
            title.X = 0;
            title.XAnchor = Plotly.Blazor.LayoutLib.TitleLib.XAnchorEnum.Left;
            title.XRef = Plotly.Blazor.LayoutLib.TitleLib.XRefEnum.Paper;
            title.Font = new Plotly.Blazor.LayoutLib.TitleLib.Font { Size = FontSize + 2, Color = Text };
        }
        return layout;
    }
}
