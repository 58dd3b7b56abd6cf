using System.Globalization;
using System.Text;
using Rome.Model;
using Rome.Model.Modeling;
using Rome.Model.Tracing;
using Rome.Model.Facts;

namespace Rome.Cli.Commands;

internal static class TraceCommands
{
    public static double Noise(CliArgs a, LanguageModel lm) =>
        NoiseLevel.Parse(a.Get("noise", "3s"), () => NoiseLevel.SubjectStd(lm, Common.Settings.CacheFolder, Common.DataFolder(a)));

    private static TraceKind Kind(string text) => text.ToLowerInvariant() switch
    {
        "hidden" => TraceKind.Hidden, "mlp" => TraceKind.Mlp, "attn" => TraceKind.Attn,
        _ => throw new RomeException($"Unknown kind '{text}' (hidden, mlp, attn or all)."),
    };

    /// <summary>--corrupt, --metric, --direction and --method (the paper's trace by default).</summary>
    private static TraceOptions Options(CliArgs a) => TraceOptions.Parse(a.Get("corrupt"), a.Get("metric"), a.Get("direction"), a.Get("method"));

    /// <summary>The subjects token replacement draws on: the model's facts' or known_1000.json's (none needed for noise).</summary>
    private static IReadOnlyList<string> Pool(CliArgs a, LanguageModel lm, TraceOptions options) =>
        options.Corruption != TraceCorruption.Str ? [] : NoiseLevel.Subjects(lm, Common.DataFolder(a))
            ?? throw new RomeException($"Token replacement needs other subjects: {lm.Folder} has no facts.json and there is no rome/known_1000.json in the data folder.");

    public static int Trace(CliArgs a, CancellationToken cancel)
    {
        var json = a.Flag("json");
        var csv = a.Flag("csv");
        var options = Options(a);
        var agreement = a.Flag("agreement");
        if (agreement && options.Method != TraceMethod.Attribution) throw new RomeException("--agreement compares attribution patching with real patching: add --method attribution.");
        var kindText = a.Get("kind", "all");
        var request = new TraceRequest
        {
            Prompt = a.Require("prompt"),
            Subject = a.Require("subject"),
            Kinds = kindText == "all" ? [TraceKind.Hidden, TraceKind.Mlp, TraceKind.Attn] : [Kind(kindText)],
            Samples = a.Int("samples", 10),
            Window = a.Has("window") ? a.Int("window", 0) : null,
            Seed = a.Int("seed", 0),
        };
        var sever = a.Flag("sever");
        using var lm = Common.LoadModel(a);
        var noise = Noise(a, lm);
        request = request with { NoiseSource = NoiseLevel.Describe(a.Get("noise", "3s"), lm), Options = options, ReplacementPool = Pool(a, lm, options) };
        a.EnsureAllUsed();
        var tokens = lm.Encode(request.Prompt).Length;
        if (tokens > Common.Settings.MaxPromptTokens)
            throw new RomeException($"The prompt is {tokens} tokens long; the configured limit is {Common.Settings.MaxPromptTokens} (Rome:MaxPromptTokens).");

        var started = DateTime.UtcNow;
        var progress = new SyncProgress<TraceEvent>(e =>
        {
            if (e is TraceCells c) Out.Progress(c.Progress, c.Kind.ToString(), DateTime.UtcNow - started);
            else if (e is TraceSevering) Out.Progress(1, "severing MLPs, then attention", DateTime.UtcNow - started);
        });
        var (result, severed) = TraceWorkflow.Run(lm, request, noise, sever, progress: progress, cancel: cancel);
        var setup = result.Setup;
        var agreements = agreement
            ? TraceAgreement.Compare(TraceWorkflow.Run(lm, request with { Options = options with { Method = TraceMethod.Patch } }, noise, false, cancel: cancel).Result, result)
            : null;
        if (json) { Out.WriteJson(new { setup, grids = result.Scores.ToDictionary(k => k.Key.ToString().ToLowerInvariant(), k => k.Value), severed, agreement = agreements }); return 0; }
        if (csv) { Console.Write(result.ToCsv()); return 0; }
        var corrupted = setup.Replacements is { } replaced
            ? $"the subject replaced by {string.Join(", ", replaced.Select(r => Out.Show(r)))}"
            : $"noise ν = {setup.Noise:F4} ({setup.NoiseSource})";
        var paper = setup.Settings == TraceOptions.Paper;
        var metric = paper ? "p" : setup.Settings.MetricName;
        Console.WriteLine($"Answer {Out.Show(setup.Answer)}: clean {metric} = {setup.HighScore:F4} (high), corrupted {(paper ? "p " : "")}= {setup.LowScore:F4} (low); {corrupted}, {setup.Samples} samples, window {setup.Window}");
        if (!paper) Console.WriteLine($"Settings: {setup.Settings}. Each cell: {setup.Settings.CellMeaning}.");
        const string shades = " .:-=+*#%@";
        // How much a cell's state matters: what it restores (denoising) or removes (noising).
        double Effect(double v) => setup.Settings.Direction == TraceDirection.Denoise ? v - setup.LowScore : setup.HighScore - v;
        foreach (var (kind, grid) in result.Scores)
        {
            Console.WriteLine($"\n{kind}: {setup.Settings.MetricName} with the state {(setup.Settings.Direction == TraceDirection.Denoise ? "restored" : "corrupted")}; rows tokens (* subject), columns layers 0..{lm.Layers - 1}");
            var max = Math.Max(1e-9, grid.SelectMany(r => r).Max(Effect));
            for (int t = 0; t < grid.Length; t++)
            {
                var bar = new string(grid[t].Select(v => shades[(int)Math.Round(Math.Clamp(Effect(v) / max, 0, 1) * (shades.Length - 1))]).ToArray());
                var top = grid[t].MaxBy(Effect);
                Console.WriteLine($"  {(setup.Subject.Contains(t) ? "*" : " ")}{Out.Show(setup.Tokens[t]),-16} |{bar}|  {(setup.Settings.Direction == TraceDirection.Denoise ? "max" : "min")} {top:F3} at layer {Array.IndexOf(grid[t], top)}");
            }
        }
        foreach (var g in agreements ?? [])
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"\n{g.Kind}: rank correlation with real patching {g.RankCorrelation:F3}; top cell patched (token {g.PatchedTop.Token}, layer {g.PatchedTop.Layer}), estimated (token {g.EstimatedTop.Token}, layer {g.EstimatedTop.Layer})"));
        if (severed is { } sv)
        {
            string Curve(double[] effects) => string.Join(" ", effects.Select(x => x.ToString("F3", CultureInfo.InvariantCulture).PadLeft(6)));
            Console.WriteLine($"\nSevered (Figure 4): the last subject token's hidden-state effect (p − low) per layer 0..{lm.Layers - 1}, with the later MLPs or attention frozen at that token");
            Console.WriteLine($"  plain            {Curve(sv.Plain)}");
            Console.WriteLine($"  MLPs severed     {Curve(sv.NoMlp)}");
            Console.WriteLine($"  attention severed{Curve(sv.NoAttn)}");
            Console.WriteLine($"Of the effect in layers 0..{sv.EarlyLayers - 1}, severing the MLPs removes {SeveredSummary.Percent(sv.MlpShareLost)}, severing attention {SeveredSummary.Percent(sv.AttnShareLost)}.");
        }
        return 0;
    }

    public static int TraceAverage(CliArgs a, CancellationToken cancel)
    {
        var json = a.Flag("json");
        var n = a.Int("n", 100);
        var samples = a.Int("samples", 10);
        var window = a.Has("window") ? a.Int("window", 0) : (int?)null;
        var factsFile = a.Get("facts");
        var outDir = Path.GetFullPath(a.Get("out", "trace-avg"));
        var severed = a.Flag("severed");
        var save = a.Flag("save");
        var options = Options(a);
        var agreement = a.Flag("agreement");
        if (agreement && options.Method != TraceMethod.Attribution) throw new RomeException("--agreement compares attribution patching with real patching: add --method attribution.");
        if ((save || severed) && options != TraceOptions.Paper) throw new RomeException("--save and --severed take the paper's trace (noise, prob, denoise, patch).");
        using var lm = Common.LoadModel(a);
        var noise = Noise(a, lm);
        var pool = Pool(a, lm, options);
        a.EnsureAllUsed();

        var candidates = factsFile is not null
            ? AverageIndirectEffect.LoadKnownFacts(factsFile)
            : AverageIndirectEffect.FromManifest(FactCorpus.ForModel(lm.Folder)
                ?? throw new RomeException($"{lm.Folder} has no facts.json; pass --facts FILE (known_1000.json format)."));
        var known = AverageIndirectEffect.Known(lm, candidates);
        var chosen = AverageIndirectEffect.Sample(known, n);
        Console.Error.WriteLine($"{known.Count} of {candidates.Count} facts are known to {lm.Name}; tracing {chosen.Count}.");
        var started = DateTime.UtcNow;
        var template = new TraceRequest { Prompt = "", Subject = "", Samples = samples, Window = window, Options = options, ReplacementPool = pool };
        var (traced, skipped) = AverageIndirectEffect.TraceEach(lm, chosen, template, noise,
            new Progress<(int Done, int Total)>(p => Out.Progress(p.Done / (double)p.Total, $"fact {p.Done}/{p.Total}", DateTime.UtcNow - started)), cancel);
        if (skipped > 0) Console.Error.WriteLine($"{skipped} of {chosen.Count} subjects have no replacement of as many tokens that changes the answer: traced {traced.Count}.");
        var result = AverageIndirectEffect.Average(traced, samples);

        Directory.CreateDirectory(outDir);
        if (agreement)
        {
            // Real patching of the same facts, with the same seeds: each fact's grids compared, then averaged per kind.
            var patched = AverageIndirectEffect.TraceEach(lm, traced.Select(t => chosen.First(f => f.Prompt == t.Setup.Prompt)).ToList(),
                template with { Options = options with { Method = TraceMethod.Patch } }, noise,
                new Progress<(int Done, int Total)>(p => Out.Progress(p.Done / (double)p.Total, $"patching fact {p.Done}/{p.Total}", DateTime.UtcNow - started)), cancel).Traced;
            var compared = patched.Zip(traced, TraceAgreement.Compare).SelectMany(x => x).GroupBy(x => x.Kind)
                .Select(g => new { kind = g.Key.ToString().ToLowerInvariant(), meanRankCorrelation = g.Where(x => double.IsFinite(x.RankCorrelation)).Average(x => x.RankCorrelation),
                                   medianRankCorrelation = Median(g.Select(x => x.RankCorrelation).Where(double.IsFinite)), sameTopCell = g.Count(x => x.SameTop) / (double)g.Count(), facts = g.Count() }).ToList();
            File.WriteAllText(Path.Combine(outDir, "agreement.json"), System.Text.Json.JsonSerializer.Serialize(compared, Out.Json));
            foreach (var c in compared)
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{c.kind}: rank correlation with real patching, mean {c.meanRankCorrelation:F3}, median {c.medianRankCorrelation:F3}; the same top cell in {c.sameTopCell:P0} of {c.facts} facts"));
        }
        File.WriteAllText(Path.Combine(outDir, "average-trace.json"), System.Text.Json.JsonSerializer.Serialize(result, Out.Json));
        File.WriteAllText(Path.Combine(outDir, "average-trace.csv"), AverageIndirectEffect.ToCsv(result));
        File.WriteAllText(Path.Combine(outDir, "average-trace.html"), HtmlReports.AverageTrace(result, lm.Name));
        var sites = SiteSummary.Of(result);
        File.WriteAllText(Path.Combine(outDir, "sites.json"), System.Text.Json.JsonSerializer.Serialize(sites, Out.Json));
        SeveredSummary? severedSummary = null;
        if (severed)
        {
            AverageTraceResult Severed(TraceKind kind) => AverageIndirectEffect.Compute(lm, chosen, noise, samples, window,
                new Progress<(int Done, int Total)>(p => Out.Progress(p.Done / (double)p.Total, $"severed {kind}, fact {p.Done}/{p.Total}", DateTime.UtcNow - started)), cancel, kind);
            severedSummary = SeveredSummary.Of(result, Severed(TraceKind.Mlp), Severed(TraceKind.Attn));
            File.WriteAllText(Path.Combine(outDir, "severed.csv"), severedSummary.ToCsv());
            File.WriteAllText(Path.Combine(outDir, "severed.json"), System.Text.Json.JsonSerializer.Serialize(severedSummary, Out.Json));
        }
        var file = new AveragedTraceFile(result, severedSummary);
        file.Save(Path.Combine(outDir, AveragedTraceFile.FileName));
        if (save) file.Save(Path.Combine(lm.Folder, AveragedTraceFile.FileName));
        if (json) { Out.WriteJson(new { result, sites, severed = severedSummary }); return 0; }
        Console.WriteLine($"Average indirect effect over {result.Facts} facts (high {result.MeanHighScore:F3}, low {result.MeanLowScore:F3}); files in {outDir}");
        foreach (var (kind, buckets) in result.Kinds)
        {
            Console.WriteLine($"\n{kind}: mean indirect effect per layer");
            foreach (var b in buckets)
                Console.WriteLine($"  {b.Bucket,-24} " + string.Join(" ", b.Mean.Select(m => m.ToString("F3", CultureInfo.InvariantCulture).PadLeft(6))));
        }
        Console.WriteLine($"\n{sites}");
        if (severedSummary is { } sv)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Severed (Figure 4): of the last subject token's hidden effect in layers 0..{sv.EarlyLayers - 1}, severing MLPs removes {SeveredSummary.Percent(sv.MlpShareLost)}, severing attention {SeveredSummary.Percent(sv.AttnShareLost)} (curves in severed.csv)."));
        return 0;
    }

    private static double Median(IEnumerable<double> xs)
    {
        var sorted = xs.Order().ToArray();
        return sorted.Length == 0 ? double.NaN : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    /// <summary>
    /// rome localize: does where the trace puts a fact tell where to edit it? Reads a layer sweep (rome eval --layers all)
    /// and traces its cases.
    /// </summary>
    public static int Localize(CliArgs a, CancellationToken cancel)
    {
        var sweep = Path.GetFullPath(a.Require("sweep"));
        var samples = a.Int("samples", 10);
        var outDir = Path.GetFullPath(a.Get("out", sweep));
        using var lm = Common.LoadModel(a);
        var noise = Noise(a, lm);
        a.EnsureAllUsed();
        var layerDirs = Directory.Exists(sweep) ? Directory.GetDirectories(sweep, "layer*") : [];
        if (layerDirs.Length < 2) throw new RomeException($"{sweep} holds no layer sweep: run 'rome eval --method rome --layers all --out {sweep}' first.");
        var scores = layerDirs.ToDictionary(d => int.Parse(Path.GetFileName(d)["layer".Length..], CultureInfo.InvariantCulture),
            d => (IReadOnlyDictionary<int, Rome.Model.Evaluation.CaseScores>)File.ReadLines(Path.Combine(d, "cases.jsonl")).Where(l => l.Length > 0)
                .Select(l => System.Text.Json.JsonSerializer.Deserialize<Rome.Model.Evaluation.CaseScores>(l)!).ToDictionary(c => c.CaseId));
        var dataset = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(layerDirs[0], "summary.json"))).RootElement.GetProperty("dataset").GetString()!;
        var cases = Rome.Model.Evaluation.CounterFactDataset.Load(dataset);
        var started = DateTime.UtcNow;
        var report = Rome.Model.Evaluation.LocalisationReport.Compute(lm, cases, scores, noise, samples,
            new Progress<(int Done, int Total)>(p => Out.Progress(p.Done / (double)p.Total, $"tracing case {p.Done}/{p.Total}", DateTime.UtcNow - started)), cancel);

        Directory.CreateDirectory(outDir);
        var csv = new StringBuilder("case_id,subject,trace_peak_layer,best_edit_layer," + string.Join(",", report.Cases[0].Layers.Select(l => $"effect_l{l}")) + "," + string.Join(",", report.Cases[0].Layers.Select(l => $"score_l{l}")) + "\n");
        foreach (var c in report.Cases)
            csv.Append(CultureInfo.InvariantCulture, $"{c.CaseId},\"{c.Subject.Replace("\"", "\"\"")}\",{c.TracePeak},{c.BestEdit},{string.Join(",", c.Effects.Select(x => x.ToString("G6", CultureInfo.InvariantCulture)))},{string.Join(",", c.Scores.Select(x => x.ToString("G6", CultureInfo.InvariantCulture)))}\n");
        File.WriteAllText(Path.Combine(outDir, "localize.csv"), csv.ToString());
        var summary = new { cases = report.Cases.Count, report.PeakCorrelation, report.SameLayerShare, report.EffectScoreCorrelation,
                            pairs = report.Pairs.Select(p => new { tracePeak = p.Key.TracePeak, bestEdit = p.Key.BestEdit, count = p.Value }).OrderBy(p => p.tracePeak).ThenBy(p => p.bestEdit) };
        File.WriteAllText(Path.Combine(outDir, "localize.json"), System.Text.Json.JsonSerializer.Serialize(summary, Out.Json));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{report.Cases.Count} cases. The trace's MLP peak (last subject token) and ROME's best edit layer: rank correlation {report.PeakCorrelation:F3}, the same layer in {report.SameLayerShare:P0} of cases. " +
            $"Over every (case, layer): the trace's effect against the edit's score there, rank correlation {report.EffectScoreCorrelation:F3}. Files in {outDir}"));
        Console.WriteLine("\ntrace peak -> best edit layer: cases");
        foreach (var p in summary.pairs) Console.WriteLine($"  {p.tracePeak} -> {p.bestEdit}: {p.count}");
        return 0;
    }
}
