using System.Globalization;
using System.Text;
using System.Text.Json;
using Rome.Model.Modeling;
using Rome.Model.Facts;

namespace Rome.Model.Tracing;

/// <summary>A fact to trace: a prompt, its subject, and the answer the model should give.</summary>
public sealed record TraceFact(string Prompt, string Subject, string Answer);

/// <summary>Mean indirect effect of one bucket of token positions, per layer, with a 95% confidence interval.</summary>
public sealed record BucketEffect(string Bucket, double[] Mean, double[] HalfWidth95, int Count);

public sealed record AverageTraceResult(int Facts, int Samples, IReadOnlyDictionary<TraceKind, BucketEffect[]> Kinds, double MeanHighScore, double MeanLowScore,
    TraceOptions? Options = null);

/// <summary>
/// Where an averaged trace puts a model's facts, as fractions of the total effect TE = high − low (the paper's
/// two sites). Knowing: the MLP effect at the last subject token peaks at <see cref="MlpPeakLayer"/> and is
/// compared with the last token's MLP effect at that layer; the last subject token's hidden state peaks in the
/// lower half and fades above. Saying: attention at the last token peaks at <see cref="AttnPeakLayer"/>.
/// </summary>
public sealed record SiteSummary(
    double TotalEffect, int Layers,
    int MlpPeakLayer, double MlpPeak, double LastTokenMlpAtPeak,
    int HiddenPeakLayer, double HiddenPeak, double HiddenAtTop, double LastTokenHiddenAtTop,
    int AttnPeakLayer, double AttnPeak)
{
    public static SiteSummary Of(AverageTraceResult r)
    {
        var te = Math.Max(1e-9, r.MeanHighScore - r.MeanLowScore);
        double[] Curve(TraceKind kind, string bucket) => r.Kinds[kind].Single(b => b.Bucket == bucket).Mean.Select(m => m / te).ToArray();
        var mlp = Curve(TraceKind.Mlp, "last subject token");
        var hidden = Curve(TraceKind.Hidden, "last subject token");
        var lastHidden = Curve(TraceKind.Hidden, "last token");
        var attn = Curve(TraceKind.Attn, "last token");
        int layers = mlp.Length, mlpPeak = ArgMax(mlp), hiddenPeak = ArgMax(hidden[..(layers / 2 + 1)]), attnPeak = ArgMax(attn);
        return new SiteSummary(te, layers, mlpPeak, mlp[mlpPeak], Curve(TraceKind.Mlp, "last token")[mlpPeak],
            hiddenPeak, hidden[hiddenPeak], hidden[^1], lastHidden[^1], attnPeak, attn[attnPeak]);
    }

    private static int ArgMax(double[] xs) => Array.IndexOf(xs, xs.Max());

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"TE {TotalEffect:F3}. Knowing: MLP at the last subject token peaks at layer {MlpPeakLayer} of {Layers} with {Rounded(MlpPeak, 2)} TE " +
        $"(last token's MLP there: {Rounded(LastTokenMlpAtPeak, 2)}); its hidden state peaks at layer {HiddenPeakLayer} with {Rounded(HiddenPeak, 2)} TE " +
        $"(top layer: {Rounded(HiddenAtTop, 2)}, last token's: {Rounded(LastTokenHiddenAtTop, 2)}). Saying: attention at the last token peaks at layer {AttnPeakLayer} with {Rounded(AttnPeak, 2)} TE.");

    /// <summary><paramref name="x"/> to <paramref name="decimals"/> places, a tiny negative effect shown as 0.00 rather than -0.00.</summary>
    internal static string Rounded(double x, int decimals) => (Math.Round(x, decimals) + 0.0).ToString("F" + decimals, CultureInfo.InvariantCulture);
}

/// <summary>
/// A model's averaged trace kept beside its weights (<see cref="FileName"/>), so the web app can show it next to a
/// single fact's without tracing a hundred facts live; <c>rome trace-avg --save</c> writes it.
/// </summary>
public sealed record AveragedTraceFile(AverageTraceResult Result, SeveredSummary? Severed)
{
    public const string FileName = "averaged-trace.json";

    private static readonly System.Text.Json.JsonSerializerOptions Json = new()
    {
        WriteIndented = true, PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.CamelCase,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>The file beside the model in <paramref name="folder"/>, or null when there is none or it cannot be read.</summary>
    public static AveragedTraceFile? Load(string folder)
    {
        var path = Path.Combine(folder, FileName);
        if (!File.Exists(path)) return null;
        try { return System.Text.Json.JsonSerializer.Deserialize<AveragedTraceFile>(File.ReadAllText(path), Json); }
        catch (System.Text.Json.JsonException) { return null; }
    }

    public void Save(string path) => File.WriteAllText(path, System.Text.Json.JsonSerializer.Serialize(this, Json));
}

/// <summary>
/// The paper's averaged causal effects (Figure 2): indirect effects of many facts, with token positions
/// bucketed as first / middle / last subject token, first subsequent token, further tokens and last token.
/// </summary>
public static class AverageIndirectEffect
{
    public static readonly string[] Buckets = ["first subject token", "middle subject tokens", "last subject token", "first subsequent token", "further tokens", "last token"];

    /// <summary>
    /// Token positions of each bucket for a prompt of <paramref name="count"/> tokens, as the original notebook
    /// (<c>average_causal_effects.ipynb</c>, <c>read_knowlege</c>) takes them: the first subject token, the last
    /// subject token and the first subsequent token always, even when two of them are one token (a one-token
    /// subject counts as both first and last; a first subsequent token that is also the last token counts in both);
    /// middle subject tokens and further tokens one row each. Only a subject at the very end leaves the first
    /// subsequent token empty.
    /// </summary>
    public static int[][] BucketPositions(TokenSpan subject, int count)
    {
        int first = subject.First, last = subject.Last, end = count - 1;
        int[] Range(int from, int to) => from < to ? Enumerable.Range(from, to - from).ToArray() : [];
        return
        [
            [first],
            Range(first + 1, last),
            [last],
            last + 1 <= end ? [last + 1] : [],
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

    /// <summary>
    /// <paramref name="n"/> of the facts in a fixed pseudo-random order (FNV-1a of the subject, since
    /// string.GetHashCode differs from process to process), so every run traces the same facts.
    /// </summary>
    public static List<TraceFact> Sample(IEnumerable<TraceFact> facts, int n) =>
        facts.OrderBy(f => f.Subject.Aggregate(2166136261u, (h, c) => unchecked((h ^ c) * 16777619u)))
             .ThenBy(f => f.Prompt, StringComparer.Ordinal).Take(n).ToList();

    public static AverageTraceResult Compute(LanguageModel lm, IReadOnlyList<TraceFact> facts, double noise, int samples, int? window,
                                             IProgress<(int Done, int Total)>? progress = null, CancellationToken cancel = default,
                                             TraceKind? sever = null, TraceOptions? options = null, IReadOnlyList<string>? pool = null)
    {
        TraceKind[] kinds = sever is null ? [TraceKind.Hidden, TraceKind.Mlp, TraceKind.Attn] : [TraceKind.Hidden];
        var template = new TraceRequest { Prompt = "", Subject = "", Kinds = kinds, Samples = samples, Window = window, Sever = sever, Options = options ?? TraceOptions.Paper, ReplacementPool = pool ?? [] };
        return Average(TraceEach(lm, facts, template, noise, progress, cancel).Traced, samples);
    }

    /// <summary>
    /// Each fact traced as <paramref name="template"/> says (patched or estimated), fact i with seed i. With token
    /// replacement, a fact whose subject no other subject can replace (none of as many tokens that changes the answer)
    /// is skipped, and counted.
    /// </summary>
    public static (List<TraceResult> Traced, int Skipped) TraceEach(LanguageModel lm, IReadOnlyList<TraceFact> facts, TraceRequest template, double noise,
                                                                    IProgress<(int Done, int Total)>? progress = null, CancellationToken cancel = default)
    {
        var traced = new List<TraceResult>();
        var skipped = 0;
        for (int i = 0; i < facts.Count; i++)
        {
            cancel.ThrowIfCancellationRequested();
            var request = template with { Prompt = facts[i].Prompt, Subject = facts[i].Subject, Seed = i };
            try
            {
                traced.Add(TraceResult.Collect(TraceWorkflow.Events(lm, request, noise, cancel)));
            }
            catch (RomeException) when (request.Options.Corruption == TraceCorruption.Str) { skipped++; }
            progress?.Report((i + 1, facts.Count));
        }
        return (traced, skipped);
    }

    /// <summary>
    /// The notebook's averages: per bucket and layer, the mean restored probability over every row the bucket
    /// takes (<see cref="BucketPositions"/>), minus the mean low score over facts. The 95% interval is
    /// 1.96 σ / √(facts), σ over the bucket's rows, as the notebook draws it. Traces in the noising direction count
    /// the effect the other way round, the mean high score minus the score, so a state that matters is positive either way.
    /// </summary>
    public static AverageTraceResult Average(IReadOnlyList<TraceResult> traced, int samples)
    {
        var n = Math.Max(1, traced.Count);
        var high = traced.Sum(t => t.Setup.HighScore) / n;
        var low = traced.Sum(t => t.Setup.LowScore) / n;
        var kinds = traced.Count == 0 ? [] : traced[0].Scores.Keys.ToList();
        var noising = traced.Count > 0 && traced[0].Setup.Settings.Direction == TraceDirection.Noise;
        return new AverageTraceResult(traced.Count, samples, kinds.ToDictionary(kind => kind, kind => Buckets.Select((bucket, b) =>
        {
            var rows = traced.SelectMany(t => BucketPositions(t.Setup.Subject, t.Setup.Tokens.Length)[b].Select(p => t.Scores[kind][p])).ToList();
            if (noising) rows = rows.Select(r => r.Select(x => -x).ToArray()).ToList();
            return Summarise(bucket, rows, noising ? -high : low, traced.Count);
        }).ToArray()), high, low, traced.Count == 0 ? null : traced[0].Setup.Settings);
    }

    private static BucketEffect Summarise(string bucket, List<double[]> rows, double low, int facts)
    {
        var layers = rows.Count == 0 ? 0 : rows[0].Length;
        var mean = new double[layers];
        var half = new double[layers];
        for (int l = 0; l < layers; l++)
        {
            var xs = rows.Select(r => r[l]).ToArray();
            var average = xs.Average();
            mean[l] = average - low;
            half[l] = 1.96 * Math.Sqrt(xs.Sum(x => (x - average) * (x - average)) / xs.Length) / Math.Sqrt(facts);
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

}
