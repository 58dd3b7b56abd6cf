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
        var seed = a.Int("seed", 0);
        var noGeneration = a.Flag("no-generation");
        var constraint = a.Double("ft-constraint", 5e-4);
        var outDir = Path.GetFullPath(a.Get("out", Path.Combine("eval", method)));
        using var lm = Common.LoadModel(a);
        var hp = RomeHyperParameters.ForModel(lm.Folder, lm.Layers);
        if (a.Has("layer")) hp = hp with { Layer = a.Int("layer", hp.Layer) };
        a.EnsureAllUsed();
        if (!CounterFactEvaluator.Methods.Contains(method))
            throw new RomeException($"Unknown method '{method}' ({string.Join(", ", CounterFactEvaluator.Methods)}; kn is not built yet).");

        var path = dataset == "bundled" ? BundledSet(lm.Folder) : dataset;
        if (dataset == "bundled" && !File.Exists(path))
            throw new RomeException($"{path} does not exist yet: run 'rome counterfact build' first.");
        var cases = CounterFactDataset.Load(path).Take(n).ToList();

        var corpus = FactCorpus.ForModel(lm.Folder);
        TfIdf? tfidf = null;
        Func<string, string>? reference = null;
        if (corpus is not null)
        {
            // Reference text about an object: the corpus's sentences about subjects that have it.
            var sentences = corpus.Facts.GroupBy(f => f.Subject).ToDictionary(g => g.Key,
                g => g.SelectMany(f => corpus.ByRelation[f.Relation].Trained.Take(1).Select(t => RelationTemplates.Render(t, f.Subject, f.Object))).ToList());
            tfidf = new TfIdf(sentences.Values.Select(s => string.Join(" ", s)));
            reference = obj => string.Join(" ", corpus.Facts.Where(f => f.Object == obj).SelectMany(f => sentences[f.Subject]).Distinct());
        }
        Func<TorchSharp.torch.Tensor>? covariance = null;
        if (method == "rome" && hp.Covariance != "identity")
        {
            var text = CovarianceStatistics.DefaultCorpus(lm).ToList();
            using var c = CovarianceStatistics.GetOrCompute(lm, hp.Layer, text, hp.CovarianceTokens, Common.Settings.CacheFolder);
            var cached = c.clone();
            covariance = () => cached;
        }

        var evaluator = new CounterFactEvaluator(lm, hp, covariance, tfidf, reference, generations: !noGeneration) { FineTuneConstraint = constraint };
        Directory.CreateDirectory(outDir);
        var started = DateTime.UtcNow;
        var results = evaluator.Run(cases, method, Path.Combine(outDir, "cases.jsonl"),
            new Progress<(int Done, int Total)>(p => Out.Progress(p.Done / (double)p.Total, $"case {p.Done}/{p.Total}", DateTime.UtcNow - started)), cancel);
        var summary = CounterFactMetrics.Summarise(method, results);
        File.WriteAllText(Path.Combine(outDir, "summary.json"), System.Text.Json.JsonSerializer.Serialize(new { summary, dataset = path, seed, layer = hp.Layer }, Out.Json));
        File.WriteAllText(Path.Combine(outDir, "summary.md"), Table([summary]));
        if (json) Out.WriteJson(summary); else Console.Write(Table([summary]));
        return 0;
    }

    public static string Table(IEnumerable<Summary> rows)
    {
        static string F(double? x) => x is { } v && !double.IsNaN(v) ? v.ToString("F1", CultureInfo.InvariantCulture) : "-";
        var sb = new StringBuilder("| method | n | S | ES | PS | NS | EM | PM | NM | PS trained | PS held-out | GE | RS |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        foreach (var s in rows)
            sb.Append($"| {s.Method} | {s.Cases} | {F(s.S)} | {F(s.ES)} | {F(s.PS)} | {F(s.NS)} | {F(s.EM)} | {F(s.PM)} | {F(s.NM)} | {F(s.PSTrained)} | {F(s.PSHeldOut)} | {F(s.GE)} | {F(s.RS)} |\n");
        return sb.ToString();
    }
}
