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

    public static int Trace(CliArgs a, CancellationToken cancel)
    {
        var json = a.Flag("json");
        var csv = a.Flag("csv");
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
        request = request with { NoiseSource = NoiseLevel.Describe(a.Get("noise", "3s"), lm) };
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
        if (json) { Out.WriteJson(new { setup, grids = result.Scores.ToDictionary(k => k.Key.ToString().ToLowerInvariant(), k => k.Value), severed }); return 0; }
        if (csv) { Console.Write(result.ToCsv()); return 0; }
        Console.WriteLine($"Answer {Out.Show(setup.Answer)}: clean p = {setup.HighScore:F4} (high), corrupted p = {setup.LowScore:F4} (low); noise ν = {setup.Noise:F4} ({setup.NoiseSource}), {setup.Samples} samples, window {setup.Window}");
        const string shades = " .:-=+*#%@";
        foreach (var (kind, grid) in result.Scores)
        {
            Console.WriteLine($"\n{kind}: p(answer) with the state restored; rows tokens (* subject), columns layers 0..{lm.Layers - 1}");
            var max = Math.Max(1e-9, grid.SelectMany(r => r).Max() - setup.LowScore);
            for (int t = 0; t < grid.Length; t++)
            {
                var bar = new string(grid[t].Select(v => shades[(int)Math.Round(Math.Clamp((v - setup.LowScore) / max, 0, 1) * (shades.Length - 1))]).ToArray());
                Console.WriteLine($"  {(setup.Subject.Contains(t) ? "*" : " ")}{Out.Show(setup.Tokens[t]),-16} |{bar}|  max {grid[t].Max():F3} at layer {Array.IndexOf(grid[t], grid[t].Max())}");
            }
        }
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
        using var lm = Common.LoadModel(a);
        var noise = Noise(a, lm);
        a.EnsureAllUsed();

        var candidates = factsFile is not null
            ? AverageIndirectEffect.LoadKnownFacts(factsFile)
            : AverageIndirectEffect.FromManifest(FactCorpus.ForModel(lm.Folder)
                ?? throw new RomeException($"{lm.Folder} has no facts.json; pass --facts FILE (known_1000.json format)."));
        var known = AverageIndirectEffect.Known(lm, candidates);
        var chosen = AverageIndirectEffect.Sample(known, n);
        Console.Error.WriteLine($"{known.Count} of {candidates.Count} facts are known to {lm.Name}; tracing {chosen.Count}.");
        var started = DateTime.UtcNow;
        var result = AverageIndirectEffect.Compute(lm, chosen, noise, samples, window,
            new Progress<(int Done, int Total)>(p => Out.Progress(p.Done / (double)p.Total, $"fact {p.Done}/{p.Total}", DateTime.UtcNow - started)), cancel);

        Directory.CreateDirectory(outDir);
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
}
