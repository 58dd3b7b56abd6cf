using System.Globalization;
using System.Text;
using System.Text.Json;
using Rome.Model.Modeling;
using Rome.Model.Training;

namespace Rome.Model.Tracing;

/// <summary>A fact to trace: a prompt, its subject, and the answer the model should give.</summary>
public sealed record TraceFact(string Prompt, string Subject, string Answer);

/// <summary>Mean indirect effect of one bucket of token positions, per layer, with a 95% confidence interval.</summary>
public sealed record BucketEffect(string Bucket, double[] Mean, double[] HalfWidth95, int Count);

public sealed record AverageTraceResult(int Facts, int Samples, IReadOnlyDictionary<TraceKind, BucketEffect[]> Kinds, double MeanHighScore, double MeanLowScore);

/// <summary>
/// The paper's averaged causal effects (Figure 2): indirect effects of many facts, with token positions
/// bucketed as first / middle / last subject token, first subsequent token, further tokens and last token.
/// </summary>
public static class AverageIndirectEffect
{
    public static readonly string[] Buckets = ["first subject token", "middle subject tokens", "last subject token", "first subsequent token", "further tokens", "last token"];

    /// <summary>Token positions of each bucket for a prompt of <paramref name="count"/> tokens. Empty buckets are skipped.</summary>
    public static int[][] BucketPositions(TokenSpan subject, int count)
    {
        int first = subject.First, last = subject.Last, end = count - 1;
        int[] Range(int from, int to) => from < to ? Enumerable.Range(from, to - from).ToArray() : [];
        return
        [
            [first],
            Range(first + 1, last),
            last > first ? [last] : [],
            last + 1 < end ? [last + 1] : [],
            Range(last + 2, end),
            [end],
        ];
    }

    /// <summary>Facts from a known_1000.json-style file (records with prompt, subject, attribute).</summary>
    public static List<TraceFact> LoadKnownFacts(string path)
    {
        if (!File.Exists(path)) throw new RomeException($"Facts file {path} not found.");
        return JsonDocument.Parse(File.ReadAllText(path)).RootElement.EnumerateArray()
            .Select(e => new TraceFact(e.GetProperty("prompt").GetString()!, e.GetProperty("subject").GetString()!, e.GetProperty("attribute").GetString()!))
            .ToList();
    }

    /// <summary>The bundled model's facts as prompts of their first trained [Y]-final template.</summary>
    public static List<TraceFact> FromManifest(FactCorpus corpus) =>
        corpus.Facts.Select(f => new TraceFact(corpus.Prompts(f).First(p => p.Trained).Prompt, f.Subject, f.Object)).ToList();

    /// <summary>Keeps the facts the model gets right (its top-1 next token is the answer's first token).</summary>
    public static List<TraceFact> Known(LanguageModel lm, IEnumerable<TraceFact> facts)
    {
        var list = facts.Where(f => f.Prompt.Contains(f.Subject)).ToList();
        using var logProbs = lm.NextTokenLogProbs(list.Select(f => lm.Encode(f.Prompt)).ToList());
        var argmax = logProbs.argmax(-1).data<long>().ToArray();
        return list.Where((f, i) => argmax[i] == Recall.FirstObjectToken(lm.Tokenizer, f.Answer)).ToList();
    }

    public static AverageTraceResult Compute(LanguageModel lm, IReadOnlyList<TraceFact> facts, double noise, int samples, int? window,
                                             IProgress<(int Done, int Total)>? progress = null, CancellationToken cancel = default)
    {
        var kinds = new[] { TraceKind.Hidden, TraceKind.Mlp, TraceKind.Attn };
        var values = kinds.ToDictionary(k => k, _ => Buckets.Select(_ => new List<double[]>()).ToArray());
        double high = 0, low = 0;
        var trace = new CausalTrace(lm);
        for (int i = 0; i < facts.Count; i++)
        {
            cancel.ThrowIfCancellationRequested();
            var f = facts[i];
            var result = TraceResult.Collect(trace.Run(new TraceRequest { Prompt = f.Prompt, Subject = f.Subject, Samples = samples, Window = window, Seed = i }, noise, cancel));
            high += result.Setup.HighScore;
            low += result.Setup.LowScore;
            var buckets = BucketPositions(result.Setup.Subject, result.Setup.Tokens.Length);
            foreach (var kind in kinds)
                for (int b = 0; b < Buckets.Length; b++)
                    if (buckets[b].Length > 0)
                        values[kind][b].Add(Enumerable.Range(0, lm.Layers)
                            .Select(l => buckets[b].Average(t => result.IndirectEffect(kind, t, l))).ToArray());
            progress?.Report((i + 1, facts.Count));
        }
        var n = Math.Max(1, facts.Count);
        return new AverageTraceResult(facts.Count, samples,
            kinds.ToDictionary(k => k, k => values[k].Select((rows, b) => Summarise(Buckets[b], rows, lm.Layers)).ToArray()),
            high / n, low / n);
    }

    private static BucketEffect Summarise(string bucket, List<double[]> rows, int layers)
    {
        var mean = new double[layers];
        var half = new double[layers];
        for (int l = 0; l < layers; l++)
        {
            var xs = rows.Select(r => r[l]).ToArray();
            if (xs.Length == 0) continue;
            mean[l] = xs.Average();
            if (xs.Length > 1)
            {
                var sd = Math.Sqrt(xs.Sum(x => (x - mean[l]) * (x - mean[l])) / (xs.Length - 1));
                half[l] = 1.96 * sd / Math.Sqrt(xs.Length);
            }
        }
        return new BucketEffect(bucket, mean, half, rows.Count);
    }

    public static string ToCsv(AverageTraceResult r)
    {
        var sb = new StringBuilder("kind,bucket,layer,mean_indirect_effect,ci95_low,ci95_high,facts\n");
        foreach (var (kind, buckets) in r.Kinds)
            foreach (var b in buckets)
                for (int l = 0; l < b.Mean.Length; l++)
                    sb.Append(CultureInfo.InvariantCulture, $"{kind.ToString().ToLowerInvariant()},{b.Bucket},{l},{b.Mean[l]:G6},{b.Mean[l] - b.HalfWidth95[l]:G6},{b.Mean[l] + b.HalfWidth95[l]:G6},{b.Count}\n");
        return sb.ToString();
    }

    /// <summary>A self-contained HTML page (inline SVG, no scripts) with one heatmap per kind in the paper's colours.</summary>
    public static string ToHtml(AverageTraceResult r, string modelName)
    {
        var sb = new StringBuilder();
        sb.Append($"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Average indirect effect: {Esc(modelName)}</title>");
        sb.Append("<style>body{font-family:sans-serif;margin:2em}svg text{font-size:12px}</style></head><body>");
        sb.Append(CultureInfo.InvariantCulture, $"<h1>Average indirect effect, {Esc(modelName)}</h1><p>{r.Facts} facts, {r.Samples} noise samples each; mean high score {r.MeanHighScore:F3}, mean low score {r.MeanLowScore:F3}. Hover a cell for its value and 95% interval.</p>");
        foreach (var (kind, buckets) in r.Kinds)
        {
            var rgb = kind switch { TraceKind.Hidden => (75, 0, 130), TraceKind.Mlp => (0, 110, 40), _ => (170, 0, 0) };
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
                    sb.Append(CultureInfo.InvariantCulture, $"<rect x=\"{left + l * cell}\" y=\"{top + b * cell}\" width=\"{cell - 1}\" height=\"{cell - 1}\" fill=\"rgb({rgb.Item1},{rgb.Item2},{rgb.Item3})\" fill-opacity=\"{a:F3}\" stroke=\"#ddd\"><title>layer {l}: {buckets[b].Mean[l]:F4} ± {buckets[b].HalfWidth95[l]:F4}</title></rect>");
                }
            }
            for (int l = 0; l < layers; l++)
                sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{left + l * cell + cell / 2}\" y=\"{top + buckets.Length * cell + 16}\" text-anchor=\"middle\">{l}</text>");
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{left + layers * cell / 2}\" y=\"{top + buckets.Length * cell + 34}\" text-anchor=\"middle\">layer</text><text x=\"{left}\" y=\"18\">darkest = {max:F3}</text></svg>");
        }
        sb.Append("</body></html>");
        return sb.ToString();
    }

    private static string Esc(string s) => System.Net.WebUtility.HtmlEncode(s);
}
