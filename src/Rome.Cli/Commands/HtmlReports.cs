using System.Globalization;
using System.Text;
using Rome.Model.Evaluation;
using Rome.Model.Tracing;

namespace Rome.Cli.Commands;

/// <summary>The CLI's self-contained HTML and SVG reports (inline SVG, no scripts): averaged traces and CounterFact charts.</summary>
internal static class HtmlReports
{
    /// <summary>A self-contained HTML page (inline SVG, no scripts) with one heatmap per kind in the paper's colours.</summary>
    public static string AverageTrace(AverageTraceResult r, string modelName)
    {
        var sb = new StringBuilder();
        sb.Append($"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Average indirect effect: {Esc(modelName)}</title>");
        sb.Append("<style>body{font-family:sans-serif;margin:2em}svg text{font-size:12px}</style></head><body>");
        sb.Append(CultureInfo.InvariantCulture, $"<h1>Average indirect effect, {Esc(modelName)}</h1><p>{r.Facts} facts, {r.Samples} noise samples each; mean high score {r.MeanHighScore:F3}, mean low score {r.MeanLowScore:F3}. Hover a cell for its value and 95% interval.</p>");
        foreach (var (kind, buckets) in r.Kinds)
        {
            var layers = buckets[0].Mean.Length;
            var max = Math.Max(1e-9, buckets.SelectMany(b => b.Mean).Max());
            int cell = 28, left = 190, top = 30;
            sb.Append(CultureInfo.InvariantCulture, $"<h2>{kind} ({(kind == TraceKind.Hidden ? "single restored layer" : "restored window")})</h2>");
            sb.Append(CultureInfo.InvariantCulture, $"<svg width=\"{left + layers * cell + 20}\" height=\"{top + buckets.Length * cell + 40}\">");
            for (int b = 0; b < buckets.Length; b++)
            {
                sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{left - 8}\" y=\"{top + b * cell + 18}\" text-anchor=\"end\">{Esc(buckets[b].Bucket)} (n={buckets[b].Count})</text>");
                for (int l = 0; l < layers; l++)
                {
                    var a = Math.Clamp(buckets[b].Mean[l] / max, 0, 1);
                    sb.Append(CultureInfo.InvariantCulture, $"<rect x=\"{left + l * cell}\" y=\"{top + b * cell}\" width=\"{cell - 1}\" height=\"{cell - 1}\" fill=\"{PaperColours.Strongest[kind]}\" fill-opacity=\"{a:F3}\" stroke=\"#ddd\"><title>layer {l}: {buckets[b].Mean[l]:F4} ± {buckets[b].HalfWidth95[l]:F4}</title></rect>");
                }
            }
            for (int l = 0; l < layers; l++)
                sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{left + l * cell + cell / 2}\" y=\"{top + buckets.Length * cell + 16}\" text-anchor=\"middle\">{l}</text>");
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{left + layers * cell / 2}\" y=\"{top + buckets.Length * cell + 34}\" text-anchor=\"middle\">layer</text><text x=\"{left}\" y=\"18\">darkest = {max:F3}</text></svg>");
        }
        sb.Append("</body></html>");
        return sb.ToString();
    }

    /// <summary>A self-contained HTML bar chart (inline SVG) of one run's S, ES, PS and NS.</summary>
    public static string CounterFactSummary(Summary s, string model)
    {
        var bars = new (string Name, double Value, string Colour)[] { ("S", s.S, "#555"), ("ES", s.ES, "#1f77b4"), ("PS", s.PS, "#2ca02c"), ("NS", s.NS, "#d62728") };
        var svg = new StringBuilder("<svg width=\"360\" height=\"240\" style=\"font-family:sans-serif;font-size:12px\">");
        for (int i = 0; i < bars.Length; i++)
        {
            var h = 180 * Math.Clamp(double.IsNaN(bars[i].Value) ? 0 : bars[i].Value, 0, 100) / 100;
            svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{30 + 80 * i}\" y=\"{200 - h:F1}\" width=\"50\" height=\"{h:F1}\" fill=\"{bars[i].Colour}\"/>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{55 + 80 * i}\" y=\"{195 - h:F1}\" text-anchor=\"middle\">{bars[i].Value:F1}</text><text x=\"{55 + 80 * i}\" y=\"220\" text-anchor=\"middle\">{bars[i].Name}</text>");
        }
        svg.Append("</svg>");
        return $"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>CounterFact: {Esc(s.Method)}</title></head><body style=\"font-family:sans-serif;margin:2em\">" +
               $"<h1>CounterFact, {Esc(s.Method)} on {Esc(model)}</h1><p>{s.Cases} cases; scores x100.</p>{svg}<pre>{Esc(EvalCommands.Table([s]))}</pre></body></html>";
    }

    /// <summary>A self-contained HTML page with the sweep's line chart (<see cref="SweepSvg"/>).</summary>
    public static string Sweep(IReadOnlyList<(int Layer, Summary Summary)> points, string model, string method, int cases) =>
        $"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{method} layer sweep: {model}</title></head><body style=\"font-family:sans-serif;margin:2em\">" +
        $"<h1>{Esc(method)} by edited layer, {Esc(model)}</h1><p>{cases} CounterFact cases per layer.</p>{SweepSvg(points)}<pre>{Esc(EvalCommands.Table(points.Select(p => p.Summary)))}</pre></body></html>";

    /// <summary>ES, PS and NS per edited layer as an SVG line chart.</summary>
    public static string SweepSvg(IReadOnlyList<(int Layer, Summary Summary)> points)
    {
        const int width = 600, height = 320, left = 50, bottom = 40, top = 20, right = 150; // room for the legend's longest name
        double X(int i) => left + (points.Count == 1 ? 0 : i * (width - left - right) / (double)(points.Count - 1));
        double Y(double v) => top + (height - top - bottom) * (1 - Math.Clamp(v, 0, 100) / 100);
        var series = new (string Name, string Colour, Func<Summary, double> Value)[] { ("ES (efficacy)", "#1f77b4", s => s.ES), ("PS (paraphrase)", "#2ca02c", s => s.PS), ("NS (neighbourhood)", "#d62728", s => s.NS) };
        var svg = new StringBuilder($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" style=\"font-family:sans-serif;font-size:12px\">");
        for (int v = 0; v <= 100; v += 25)
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{left}\" x2=\"{width - right}\" y1=\"{Y(v):F1}\" y2=\"{Y(v):F1}\" stroke=\"#eee\"/><text x=\"{left - 6}\" y=\"{Y(v) + 4:F1}\" text-anchor=\"end\">{v}</text>");
        for (int i = 0; i < points.Count; i++)
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{X(i):F1}\" y=\"{height - bottom + 16}\" text-anchor=\"middle\">{points[i].Layer}</text>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{(left + width - right) / 2}\" y=\"{height - 6}\" text-anchor=\"middle\">edited layer</text>");
        for (int k = 0; k < series.Length; k++)
        {
            var (name, colour, value) = series[k];
            var path = string.Join(" ", points.Select((p, i) => string.Create(CultureInfo.InvariantCulture, $"{X(i):F1},{Y(value(p.Summary)):F1}")));
            svg.Append(CultureInfo.InvariantCulture, $"<polyline points=\"{path}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>");
            foreach (var (p, i) in points.Select((p, i) => (p, i)))
                svg.Append(CultureInfo.InvariantCulture, $"<circle cx=\"{X(i):F1}\" cy=\"{Y(value(p.Summary)):F1}\" r=\"3\" fill=\"{colour}\"><title>{name} at layer {p.Layer}: {value(p.Summary):F1}</title></circle>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{width - right + 8}\" y=\"{top + 14 + 16 * k}\" fill=\"{colour}\">{name}</text>");
        }
        svg.Append("</svg>");
        return svg.ToString();
    }

    private static string Esc(string s) => System.Net.WebUtility.HtmlEncode(s);
}
