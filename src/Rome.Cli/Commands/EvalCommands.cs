using System.Globalization;
using System.Text;
using Rome.Model;
using Rome.Model.Editing;
using Rome.Model.Evaluation;
using Rome.Model.Facts;

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
        if (a.Has("batch") || a.Flag("sequential")) return EvalMany(a, cancel);
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
        if (layersText == "all" && layers.Where(l => !lm.Model.HasMlp(l)).ToList() is { Count: > 0 } mlpFree)
        {
            Console.Error.WriteLine($"Skipping layer(s) {string.Join(", ", mlpFree)}: no MLP to edit.");
            layers = layers.Except(mlpFree).ToList();
        }

        var summaries = new List<(int Layer, Summary Summary)>();
        using var cache = Common.Covariances();
        foreach (var layer in layers)
        {
            var layerHp = hp with { Layer = layer };
            var covariance = method == "rome" ? cache.ForEditor(lm, layerHp, cancel: cancel) : null;
            var evaluator = new CounterFactEvaluator(lm, layerHp, covariance, tfidf, reference, generations: !noGeneration)
                { FineTuning = new() { Layer = layer }, Editors = new Editors(lm, layerHp, MemitHyperParameters.ForModel(lm.Folder, lm.Config), cache) };
            var dir = layers.Count > 1 ? Path.Combine(outDir, $"layer{layer}") : outDir;
            Directory.CreateDirectory(dir);
            var started = DateTime.UtcNow;
            var results = evaluator.Run(cases, method, Path.Combine(dir, "cases.jsonl"),
                new Progress<EvaluationProgress>(p => Out.Progress(p.Done / (double)p.Total, $"layer {layer}: case {p.Done}/{p.Total}", DateTime.UtcNow - started)), cancel);
            var summary = CounterFactMetrics.Summarise(layers.Count > 1 ? $"{method} @ layer {layer}" : method, results);
            File.WriteAllText(Path.Combine(dir, "summary.json"), System.Text.Json.JsonSerializer.Serialize(new { summary, dataset = path, layer = method == "kn" ? null : (int?)layer }, Out.Json));
            File.WriteAllText(Path.Combine(dir, "summary.md"), Table([summary]));
            File.WriteAllText(Path.Combine(dir, "summary.csv"), Csv([summary]));
            File.WriteAllText(Path.Combine(dir, "summary.html"), HtmlReports.CounterFactSummary(summary, lm.Name));
            summaries.Add((layer, summary));
        }
        if (layers.Count > 1)
        {
            File.WriteAllText(Path.Combine(outDir, "sweep.md"), Table(summaries.Select(s => s.Summary)));
            File.WriteAllText(Path.Combine(outDir, "sweep.csv"), Csv(summaries.Select(s => s.Summary)));
            File.WriteAllText(Path.Combine(outDir, "sweep.html"), HtmlReports.Sweep(summaries, lm.Name, method, cases.Count));
            File.WriteAllText(Path.Combine(outDir, "sweep.svg"), HtmlReports.SweepSvg(summaries));
        }
        if (json) Out.WriteJson(summaries.Select(s => s.Summary));
        else Console.Write(Table(summaries.Select(s => s.Summary)));
        return 0;
    }

    /// <summary>
    /// rome eval --batch N: N cases written at once, then every one scored (the MEMIT paper's evaluation); with
    /// --sequential, --batch B at a time with a checkpoint every K edits (the AlphaEdit paper's).
    /// </summary>
    private static int EvalMany(CliArgs a, CancellationToken cancel)
    {
        var json = a.Flag("json");
        var method = a.Get("method", "memit");
        var dataset = a.Get("dataset", "bundled");
        var sequential = a.Flag("sequential");
        var n = a.Int("n", sequential ? 100 : a.Int("batch", 100));
        var batch = a.Int("batch", sequential ? 1 : n);
        var every = a.Int("checkpoint-every", sequential ? Math.Max(batch, n / 10) : n);
        var noGeneration = a.Flag("no-generation");
        var outDir = Path.GetFullPath(a.Get("out", Path.Combine("eval", sequential ? $"{method}-sequential-b{batch}" : $"{method}-batch{batch}")));
        using var lm = Common.LoadModel(a);
        var rome = RomeHyperParameters.ForModel(lm.Folder, lm.Config);
        if (a.Has("layer")) rome = rome with { Layer = a.Int("layer", rome.Layer) };
        var memit = a.Get("memit-hparams") is { } m ? MemitHyperParameters.Load(m) : MemitHyperParameters.ForModel(lm.Folder, lm.Config);
        if (a.Get("layers") is { } layers) memit = memit with { Layers = CliArgs.IntList(layers, "layers") };
        a.EnsureAllUsed();
        if (!sequential && batch != n) throw new RomeException("Without --sequential every case is written in one batch: --batch N and --n N must agree (or give one of them).");

        var path = dataset == "bundled" ? BundledSet(lm.Folder) : dataset;
        var cases = CounterFactDataset.Load(path).Take(n).ToList();
        if (cases.Count < n) throw new RomeException($"{path} has {cases.Count} cases; asked for {n}.");
        var corpus = FactCorpus.ForModel(lm.Folder);
        var (tfidf, reference) = corpus is null ? (null, null) : CounterFactMetrics.ConsistencyReference(corpus);
        using var cache = Common.Covariances();
        var editors = new Editors(lm, rome, memit, cache);
        var scorer = new CounterFactEvaluator(lm, rome, null, tfidf, reference, generations: false);
        var run = new ManyEditsEvaluation(lm, editors, scorer, corpus) { GenerationSample = noGeneration ? 0 : 20 };
        var started = DateTime.UtcNow;
        var checkpoints = run.Run(cases, method, batch, every,
            new Progress<ManyEditsProgress>(p => Out.Progress(p.Written / (double)p.Total, $"{method}: {p.Written}/{p.Total} written", DateTime.UtcNow - started)), cancel);

        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "checkpoints.json"), System.Text.Json.JsonSerializer.Serialize(new { method, dataset = path, batch, sequential, layers = editors.Layers(method), checkpoints }, Out.Json));
        File.WriteAllText(Path.Combine(outDir, "checkpoints.csv"), CheckpointCsv(method, batch, checkpoints));
        File.WriteAllText(Path.Combine(outDir, "checkpoints.md"), CheckpointTable(method, batch, checkpoints));
        if (json) Out.WriteJson(checkpoints);
        else Console.Write(CheckpointTable(method, batch, checkpoints));
        return 0;
    }

    public static string CheckpointCsv(string method, int batch, IEnumerable<SequenceCheckpoint> rows)
    {
        static string F(double? x) => x is { } v && !double.IsNaN(v) ? v.ToString("G6", CultureInfo.InvariantCulture) : "";
        var sb = new StringBuilder("method,batch,edits,S,ES,PS,NS,live,GE,GE_unedited,retention,retention_unedited,seconds\n");
        foreach (var c in rows)
            sb.Append($"{method},{batch},{c.Edits},{F(c.Summary.S)},{F(c.Summary.ES)},{F(c.Summary.PS)},{F(c.Summary.NS)},{F(c.Summary.Live)},{F(c.Summary.GE)},{F(c.GEUnedited)},{F(100 * c.Retention)},{F(100 * c.RetentionUnedited)},{F(c.Seconds)}\n");
        return sb.ToString();
    }

    public static string CheckpointTable(string method, int batch, IEnumerable<SequenceCheckpoint> rows)
    {
        static string F(double? x) => x is { } v && !double.IsNaN(v) ? v.ToString("F1", CultureInfo.InvariantCulture) : "-";
        var sb = new StringBuilder("| method | batch | edits | S | ES | PS | NS | live | GE (unedited) | retention (unedited) | seconds |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
        foreach (var c in rows)
            sb.Append($"| {method} | {batch} | {c.Edits} | {F(c.Summary.S)} | {F(c.Summary.ES)} | {F(c.Summary.PS)} | {F(c.Summary.NS)} | {F(c.Summary.Live)} | {F(c.Summary.GE)} ({F(c.GEUnedited)}) | {F(100 * c.Retention)} ({F(100 * c.RetentionUnedited)}) | {c.Seconds:F0} |\n");
        return sb.ToString();
    }

    public static string Csv(IEnumerable<Summary> rows)
    {
        static string F(double? x) => x is { } v && !double.IsNaN(v) ? v.ToString("G6", CultureInfo.InvariantCulture) : "";
        var sb = new StringBuilder("method,n,S,ES,PS,NS,EM,PM,NM,PS_trained,PS_held_out,GE,RS,top1,live\n");
        foreach (var s in rows)
            sb.Append($"\"{s.Method}\",{s.Cases},{F(s.S)},{F(s.ES)},{F(s.PS)},{F(s.NS)},{F(s.EM)},{F(s.PM)},{F(s.NM)},{F(s.PSTrained)},{F(s.PSHeldOut)},{F(s.GE)},{F(s.RS)},{F(s.Top1)},{F(s.Live)}\n");
        return sb.ToString();
    }

    public static string Table(IEnumerable<Summary> rows)
    {
        static string F(double? x) => x is { } v && !double.IsNaN(v) ? v.ToString("F1", CultureInfo.InvariantCulture) : "-";
        var sb = new StringBuilder("| method | n | S | ES | PS | NS | EM | PM | NM | PS trained | PS held-out | GE | RS | top-1 | live |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        foreach (var s in rows)
            sb.Append($"| {s.Method} | {s.Cases} | {F(s.S)} | {F(s.ES)} | {F(s.PS)} | {F(s.NS)} | {F(s.EM)} | {F(s.PM)} | {F(s.NM)} | {F(s.PSTrained)} | {F(s.PSHeldOut)} | {F(s.GE)} | {F(s.RS)} | {F(s.Top1)} | {F(s.Live)} |\n");
        return sb.ToString();
    }
}
