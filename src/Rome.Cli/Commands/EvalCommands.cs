using System.Globalization;
using System.Text;
using Rome.Model;
using Rome.Model.Editing;
using Rome.Model.Evaluation;
using Rome.Model.Training;

namespace Rome.Cli.Commands;

internal static class EvalCommands
{
    private static string BundledSet(string modelFolder) => Path.Combine(modelFolder, "counterfact.json");

    /// <summary>rome counterfact build: a CounterFact-format set from the model's fact manifest.</summary>
    public static int Build(CliArgs a, CancellationToken _)
    {
        if (a.Verb is not "build") throw new RomeException("Usage: rome counterfact build [--model DIR] [--n 1000] [--seed S] [--out FILE]");
        var folder = Common.ModelFolder(a);
        var n = a.Int("n", 1000);
        var seed = a.Int("seed", 0);
        var output = a.Get("out") ?? BundledSet(folder);
        a.EnsureAllUsed();
        var corpus = FactCorpus.ForModel(folder) ?? throw new RomeException($"{folder} has no facts.json to build a CounterFact set from.");
        var cases = CounterFactDataset.Build(corpus, n, seed);
        CounterFactDataset.Save(cases, output);
        Console.WriteLine($"Wrote {cases.Count} cases to {output}");
        return 0;
    }

    /// <summary>rome eval: CounterFact scores of an editing method, resumable, with a summary table.</summary>
    public static int Eval(CliArgs a, CancellationToken cancel)
    {
        var json = a.Flag("json");
        var method = a.Get("method", "rome");
        var dataset = a.Get("dataset", "bundled");
        var n = a.Int("n", 100);
        var noGeneration = a.Flag("no-generation");
        var layersText = a.Get("layers");
        var outDir = Path.GetFullPath(a.Get("out", Path.Combine("eval", method)));
        using var lm = Common.LoadModel(a);
        var hp = RomeHyperParameters.ForModel(lm.Folder, lm.Config);
        if (a.Has("layer")) hp = hp with { Layer = a.Int("layer", hp.Layer) };
        if (a.Has("ft-constraint")) hp = hp with { FineTuneConstraint = a.Double("ft-constraint", hp.FineTuneConstraint) };
        if (a.Has("kn-scale")) hp = hp with { KnowledgeNeuronsScale = a.Double("kn-scale", hp.KnowledgeNeuronsScale) };
        a.EnsureAllUsed();
        if (!CounterFactEvaluator.Methods.Contains(method))
            throw new RomeException($"Unknown method '{method}' ({string.Join(", ", CounterFactEvaluator.Methods)}).");

        var path = dataset == "bundled" ? BundledSet(lm.Folder) : dataset;
        if (dataset == "bundled" && !File.Exists(path))
            throw new RomeException($"{path} does not exist yet: run 'rome counterfact build' first.");
        var cases = CounterFactDataset.Load(path).Take(n).ToList();

        var corpus = FactCorpus.ForModel(lm.Folder);
        var (tfidf, reference) = corpus is null ? (null, null) : CounterFactMetrics.ConsistencyReference(corpus);
        var layers = layersText is null ? [hp.Layer]
            : layersText == "all" ? Enumerable.Range(0, lm.Layers).ToList()
            : layersText.Split(',').Select(x => int.TryParse(x, out var l) && l >= 0 && l < lm.Layers ? l : throw new RomeException($"--layers: '{x}' is not a layer (0..{lm.Layers - 1}) or 'all'.")).ToList();
        if (layers.Count > 1 && method is "none" or "kn") throw new RomeException("A layer sweep needs an editing method that edits one layer (rome, ft or ft-l).");

        var summaries = new List<(int Layer, Summary Summary)>();
        foreach (var layer in layers)
        {
            var layerHp = hp with { Layer = layer };
            var covariance = method == "rome" ? CovarianceStatistics.ForEditor(lm, layerHp, Common.Settings.CacheFolder) : null;
            var evaluator = new CounterFactEvaluator(lm, layerHp, covariance, tfidf, reference, generations: !noGeneration)
                { FineTuning = new() { Layer = layer } };
            var dir = layers.Count > 1 ? Path.Combine(outDir, $"layer{layer}") : outDir;
            Directory.CreateDirectory(dir);
            var started = DateTime.UtcNow;
            var results = evaluator.Run(cases, method, Path.Combine(dir, "cases.jsonl"),
                new Progress<(int Done, int Total)>(p => Out.Progress(p.Done / (double)p.Total, $"layer {layer}: case {p.Done}/{p.Total}", DateTime.UtcNow - started)), cancel);
            var summary = CounterFactMetrics.Summarise(layers.Count > 1 ? $"{method} @ layer {layer}" : method, results);
            File.WriteAllText(Path.Combine(dir, "summary.json"), System.Text.Json.JsonSerializer.Serialize(new { summary, dataset = path, layer = method == "kn" ? null : (int?)layer }, Out.Json));
            File.WriteAllText(Path.Combine(dir, "summary.md"), Table([summary]));
            File.WriteAllText(Path.Combine(dir, "summary.csv"), Csv([summary]));
            File.WriteAllText(Path.Combine(dir, "summary.html"), SummaryChart(summary, lm.Name));
            summaries.Add((layer, summary));
        }
        if (layers.Count > 1)
        {
            File.WriteAllText(Path.Combine(outDir, "sweep.md"), Table(summaries.Select(s => s.Summary)));
            File.WriteAllText(Path.Combine(outDir, "sweep.csv"), Csv(summaries.Select(s => s.Summary)));
            File.WriteAllText(Path.Combine(outDir, "sweep.html"), SweepChart(summaries, lm.Name, method, cases.Count));
            File.WriteAllText(Path.Combine(outDir, "sweep.svg"), SweepSvg(summaries));
        }
        if (json) Out.WriteJson(summaries.Select(s => s.Summary));
        else Console.Write(Table(summaries.Select(s => s.Summary)));
        return 0;
    }

    public static string Csv(IEnumerable<Summary> rows)
    {
        static string F(double? x) => x is { } v && !double.IsNaN(v) ? v.ToString("G6", CultureInfo.InvariantCulture) : "";
        var sb = new StringBuilder("method,n,S,ES,PS,NS,EM,PM,NM,PS_trained,PS_held_out,GE,RS,top1\n");
        foreach (var s in rows)
            sb.Append($"\"{s.Method}\",{s.Cases},{F(s.S)},{F(s.ES)},{F(s.PS)},{F(s.NS)},{F(s.EM)},{F(s.PM)},{F(s.NM)},{F(s.PSTrained)},{F(s.PSHeldOut)},{F(s.GE)},{F(s.RS)},{F(s.Top1)}\n");
        return sb.ToString();
    }

    /// <summary>A self-contained HTML bar chart (inline SVG) of one run's S, ES, PS and NS.</summary>
    public static string SummaryChart(Summary s, string model)
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
        return $"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>CounterFact: {System.Net.WebUtility.HtmlEncode(s.Method)}</title></head><body style=\"font-family:sans-serif;margin:2em\">" +
               $"<h1>CounterFact, {System.Net.WebUtility.HtmlEncode(s.Method)} on {System.Net.WebUtility.HtmlEncode(model)}</h1><p>{s.Cases} cases; scores x100.</p>{svg}<pre>{System.Net.WebUtility.HtmlEncode(Table([s]))}</pre></body></html>";
    }

    /// <summary>A self-contained HTML page with the sweep's line chart (<see cref="SweepSvg"/>).</summary>
    public static string SweepChart(IReadOnlyList<(int Layer, Summary Summary)> points, string model, string method, int cases) =>
        $"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{method} layer sweep: {model}</title></head><body style=\"font-family:sans-serif;margin:2em\">" +
        $"<h1>{System.Net.WebUtility.HtmlEncode(method)} by edited layer, {System.Net.WebUtility.HtmlEncode(model)}</h1><p>{cases} CounterFact cases per layer.</p>{SweepSvg(points)}<pre>{System.Net.WebUtility.HtmlEncode(Table(points.Select(p => p.Summary)))}</pre></body></html>";

    /// <summary>ES, PS and NS per edited layer as an SVG line chart.</summary>
    public static string SweepSvg(IReadOnlyList<(int Layer, Summary Summary)> points)
    {
        const int width = 560, height = 320, left = 50, bottom = 40, top = 20, right = 110;
        double X(int i) => left + (points.Count == 1 ? 0 : i * (width - left - right) / (double)(points.Count - 1));
        double Y(double v) => top + (height - top - bottom) * (1 - Math.Clamp(v, 0, 100) / 100);
        var series = new (string Name, string Colour, Func<Summary, double> Value)[] { ("ES (efficacy)", "#1f77b4", s => s.ES), ("PS (paraphrase)", "#2ca02c", s => s.PS), ("NS (neighbourhood)", "#d62728", s => s.NS) };
        var svg = new StringBuilder($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" style=\"font-family:sans-serif;font-size:12px\">");
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

    public static string Table(IEnumerable<Summary> rows)
    {
        static string F(double? x) => x is { } v && !double.IsNaN(v) ? v.ToString("F1", CultureInfo.InvariantCulture) : "-";
        var sb = new StringBuilder("| method | n | S | ES | PS | NS | EM | PM | NM | PS trained | PS held-out | GE | RS | top-1 |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        foreach (var s in rows)
            sb.Append($"| {s.Method} | {s.Cases} | {F(s.S)} | {F(s.ES)} | {F(s.PS)} | {F(s.NS)} | {F(s.EM)} | {F(s.PM)} | {F(s.NM)} | {F(s.PSTrained)} | {F(s.PSHeldOut)} | {F(s.GE)} | {F(s.RS)} | {F(s.Top1)} |\n");
        return sb.ToString();
    }
}
