using System.Text.RegularExpressions;
using Rome.Model.Modeling;
using Rome.Model.Facts;
using static TorchSharp.torch;

namespace Rome.Model.Evaluation;

/// <summary>
/// One case's scores, in [0, 1] (x100 in summaries), as the original eval_utils_counterfact.py computes them, plus
/// <paramref name="Top1"/> (not in the original): 1 if the new object's first token is the most likely next token
/// after the rewrite prompt, the figure a user sees when they type the prompt.
/// </summary>
public sealed record CaseScores(
    int CaseId, double ES, double EM, double PS, double PM, double NS, double NM,
    double? PSTrained, double? PSHeldOut, double? Fluency, double? Consistency, double? Top1 = null, double? Live = null);

/// <summary>
/// Mean scores over cases, x100 as the original <c>summarize.py</c> reports them (GE too: the paper's GE 626 is
/// 6.26 bits), with S = harmonic mean of ES, PS and NS.
/// </summary>
public sealed record Summary(string Method, int Cases, double S, double ES, double PS, double NS, double EM, double PM, double NM,
                             double? PSTrained, double? PSHeldOut, double? GE, double? RS, double? Top1 = null, double? Live = null);

/// <summary>
/// CounterFact metrics. Efficacy (ES) is the share of rewrite prompts where P(new) &gt; P(true), EM the mean
/// P(new) − P(true); PS/PM the same on paraphrases; NS/NM the reverse on neighbourhood prompts (the true object
/// should stay more likely). Probabilities are exp(−mean per-token NLL) of each target string. Fluency (GE) is the
/// weighted bi- and tri-gram entropy of generations, consistency (RS) the TF-IDF cosine between generations and
/// reference text about the new object. Probabilities are <see cref="TargetProbability"/>'s.
/// </summary>
public static class CounterFactMetrics
{
    /// <summary>(share where <paramref name="better"/> is more likely, mean probability margin) over paired NLLs.</summary>
    public static (double Success, double Magnitude) Compare(double[] betterNll, double[] worseNll)
    {
        if (betterNll.Length == 0) return (double.NaN, double.NaN);
        var success = betterNll.Zip(worseNll).Average(p => p.First < p.Second ? 1.0 : 0.0);
        var magnitude = betterNll.Zip(worseNll).Average(p => Math.Exp(-p.First) - Math.Exp(-p.Second));
        return (success, magnitude);
    }

    public static double HarmonicMean(params double[] xs) => xs.Any(x => x <= 0) ? 0 : xs.Length / xs.Sum(x => 1 / x);

    public static Summary Summarise(string method, IReadOnlyList<CaseScores> cases)
    {
        double? Average(Func<CaseScores, double?> f)
        {
            var xs = cases.Select(f).Where(x => x is { } v && !double.IsNaN(v)).Select(x => x!.Value).ToList();
            return xs.Count == 0 ? null : xs.Average();
        }
        double Percent(Func<CaseScores, double?> f) => 100 * (Average(f) ?? double.NaN);
        var (es, ps, ns) = (Percent(c => c.ES), Percent(c => c.PS), Percent(c => c.NS));
        return new Summary(method, cases.Count, HarmonicMean(es, ps, ns), es, ps, ns, Percent(c => c.EM), Percent(c => c.PM), Percent(c => c.NM),
            100 * Average(c => c.PSTrained), 100 * Average(c => c.PSHeldOut), 100 * Average(c => c.Fluency), 100 * Average(c => c.Consistency),
            100 * Average(c => c.Top1), 100 * Average(c => c.Live));
    }

    private static readonly Regex Word = new(@"\w+|[^\w\s]", RegexOptions.Compiled);

    public static string[] Words(string text) => Word.Matches(text.ToLowerInvariant()).Select(m => m.Value).ToArray();

    /// <summary>
    /// The original's compute_n_gram_entropy: for n = 2 and 3, the entropy (bits) of the n-gram frequency
    /// distribution of the text, weighted 2/3 and 4/3, averaged: ((2/3) H2 + (4/3) H3) / 2.
    /// </summary>
    public static double NGramEntropy(string text)
    {
        var words = Words(text);
        double Entropy(int n)
        {
            var grams = Enumerable.Range(0, Math.Max(0, words.Length - n + 1)).Select(i => string.Join(" ", words[i..(i + n)])).ToList();
            if (grams.Count == 0) return 0;
            return -grams.GroupBy(g => g).Sum(g => { var p = g.Count() / (double)grams.Count; return p * Math.Log2(p); });
        }
        return (2.0 / 3 * Entropy(2) + 4.0 / 3 * Entropy(3)) / 2;
    }

    /// <summary>
    /// What consistency (RS) compares generations with, from a model's fact corpus: TF-IDF fitted on one text per
    /// subject (its facts, each in its first trained template), and for (relation, new object) the texts of the
    /// subjects that have that object for that relation, as the original's <c>snips[rel_id][target_new]</c>.
    /// </summary>
    public static (TfIdf TfIdf, Func<string, string, string> Reference) ConsistencyReference(FactCorpus corpus)
    {
        var texts = corpus.Facts.GroupBy(f => f.Subject).ToDictionary(g => g.Key,
            g => string.Join(" ", g.Select(f => RelationTemplates.Render(corpus.ByRelation[f.Relation].Trained[0], f.Subject, f.Object))));
        return (new TfIdf(texts.Values), (relation, obj) => string.Join(" ",
            corpus.Facts.Where(f => f.Relation == relation && f.Object == obj).Select(f => f.Subject).Distinct().Select(s => texts[s])));
    }

    /// <summary>Mean n-gram entropy of several generations (the original averages per generation).</summary>
    public static double Fluency(IEnumerable<string> generations) => generations.Select(NGramEntropy).DefaultIfEmpty(0).Average();
}

/// <summary>
/// TF-IDF as scikit-learn's default <c>TfidfVectorizer</c>: lower-cased tokens of two or more word characters
/// (its token pattern <c>\b\w\w+\b</c>), raw counts x smooth IDF ln((1+n)/(1+df)) + 1, L2-normalised; words
/// outside the fitted vocabulary are ignored, as its <c>transform</c> does.
/// </summary>
public sealed class TfIdf
{
    private static readonly Regex Token = new(@"\b\w\w+\b", RegexOptions.Compiled);
    private readonly Dictionary<string, double> _idf = new();

    public TfIdf(IEnumerable<string> documents)
    {
        var df = new Dictionary<string, int>();
        var n = 0;
        foreach (var doc in documents)
        {
            n++;
            foreach (var w in Tokens(doc).Distinct()) df[w] = df.GetValueOrDefault(w) + 1;
        }
        foreach (var (w, d) in df) _idf[w] = Math.Log((1.0 + n) / (1 + d)) + 1;
    }

    private static IEnumerable<string> Tokens(string text) => Token.Matches(text.ToLowerInvariant()).Select(m => m.Value);

    public Dictionary<string, double> Vector(string text)
    {
        var v = Tokens(text).Where(_idf.ContainsKey).GroupBy(w => w).ToDictionary(g => g.Key, g => g.Count() * _idf[g.Key]);
        var norm = Math.Sqrt(v.Values.Sum(x => x * x));
        return norm == 0 ? v : v.ToDictionary(p => p.Key, p => p.Value / norm);
    }

    /// <summary>Cosine similarity of the TF-IDF vectors of two texts.</summary>
    public double Similarity(string a, string b)
    {
        var (va, vb) = (Vector(a), Vector(b));
        return va.Sum(p => p.Value * vb.GetValueOrDefault(p.Key));
    }
}
