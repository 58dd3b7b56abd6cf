using Microsoft.JSInterop;
using Plotly.Blazor;

namespace Rome.Web.Components.Shared;

/// <summary>
/// How a chart that fills in while a job runs is drawn (a trace's heatmap, the v* curve): at most every
/// <see cref="RedrawThrottle.Interval"/>; the whole figure once (Plotly.Blazor's React, which serialises the layout by
/// reflection, about a millisecond of server CPU, and a class room's followed screens redraw dozens of charts), then
/// only its values (rome.restyle), the browser saying each time whether the chart took them. A draw it did not take is
/// done again, less and less often (a browser still loading the script needs time, not calls); a chart whose calls
/// time out is made anew (Plotly.Blazor keeps a failed script load for the chart's life), a few times.
/// </summary>
public sealed class StreamedChart(IJSRuntime js, string id, Func<Task> rerender)
{
    private const int MaxCharts = 5;
    private readonly RedrawThrottle _throttle = new(rerender);
    private int _retries;

    /// <summary>The chart component's <c>@key</c>: a new one makes a new chart.</summary>
    public int Key { get; private set; }
    /// <summary>The browser holds the figure as last drawn; false: draw it (again) at the next chance.</summary>
    public bool Drawn { get; private set; }

    /// <summary>The figure changed (a new setup or style): the next draw sends all of it.</summary>
    public void NewFigure() => Drawn = false;

    /// <summary>Whether to draw now (always when <paramref name="final"/>); if not, a re-render comes when it may.</summary>
    public bool Ready(bool final) => _throttle.Ready(final);

    /// <summary>
    /// Draws <paramref name="chart"/> (whose data already hold the values), sending <paramref name="values"/> of
    /// <paramref name="traces"/> after the first figure. False when the browser never drew it, and will not.
    /// </summary>
    public async Task<bool> Draw(PlotlyChart chart, object values, int[] traces)
    {
        try
        {
            var figure = !Drawn;
            Drawn = true;
            if (figure) await chart.React();
            // Also after React, which Plotly.Blazor may put off (the script still loading) or drop.
            if (await js.InvokeAsync<bool>("rome.restyle", id, values, traces)) _retries = 0;
            else Again();
        }
        catch (TaskCanceledException)
        {
            if (++Key > MaxCharts) return false;
            Again();
        }
        // The connection dropped (a starved browser misses the server's pings): if it comes back, draw again; if not,
        // the circuit goes and the retries with it.
        catch (JSDisconnectedException) { Again(); }
        return true;
    }

    private void Again()
    {
        Drawn = false;
        _throttle.Again(TimeSpan.FromMilliseconds(Math.Min(5000, 250 << Math.Min(_retries++, 5))));
    }
}
