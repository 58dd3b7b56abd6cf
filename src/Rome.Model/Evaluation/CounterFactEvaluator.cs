using System.Text.Json;
using Rome.Model.Editing;
using Rome.Model.Editing.Baselines;
using Rome.Model.Modeling;
using static TorchSharp.torch;

namespace Rome.Model.Evaluation;

/// <summary>A CounterFact run in progress: cases done of the total, and their results so far.</summary>
public sealed record EvaluationProgress(int Done, int Total, IReadOnlyList<CaseScores> Results);

/// <summary>
/// Runs CounterFact cases with one editing method ("none": the unedited model; "rome"; the baselines "ft", "ft-l", "kn").
/// Every case starts from the unedited model (a fresh <see cref="EditSession"/>), so edits never leak between cases.
/// Per-case results are appended to a JSONL file as they are computed, and a run resumes after the cases already in it.
/// </summary>

public sealed class CounterFactEvaluator(LanguageModel lm, RomeHyperParameters hp, Tensor? covariance,
                                         TfIdf? tfidf = null, Func<string, string, string>? referenceText = null, bool generations = true)
{
    public static readonly string[] Methods = ["none", "rome", "r-rome", "memit", "alphaedit", "ft", "ft-l", "kn"];

    /// <summary>The editors of r-ROME, MEMIT and AlphaEdit (each case written alone, from the unedited model).</summary>
    public Editors? Editors { get; init; }

    /// <summary>The fine-tuning baselines' settings: plain FT, and FT+L with its L∞ bound (by default the model's).</summary>
    public FineTuneHyperParameters FineTuning { get; init; } = new() { Layer = hp.Layer };
    public double FineTuneConstraint { get; init; } = hp.FineTuneConstraint;
    /// <summary>The knowledge-neurons baseline's settings, with the model's scale.</summary>
    public KnowledgeNeuronsHyperParameters KnowledgeNeurons { get; init; } = new() { Scale = hp.KnowledgeNeuronsScale };

    public CaseScores Evaluate(CounterFactCase c, string method, CancellationToken cancel = default)
    {
        using var session = new EditSession(lm);
        var request = new EditRequest(c.Rewrite.Prompt, c.Rewrite.Subject, c.Rewrite.TargetNew.Str, c.Rewrite.TargetTrue.Str);
        List<DenseOverlay>? baseline = null; // a baseline's weight changes; ROME's live in the session
        switch (method)
        {
            case "none": break;
            case "rome": session.Apply(new RomeEditor(lm, hp), request, covariance, cancel: cancel); break;
            case "r-rome" or "memit" or "alphaedit":
                session.Push((Editors ?? throw new RomeException($"{method} needs the evaluator's editors.")).Write(method, [request], [], cancel: cancel));
                break;
            case "ft": baseline = [FineTune.Compute(lm, request, FineTuning, cancel)]; break;
            case "ft-l": baseline = [FineTune.Compute(lm, request, FineTuning with { NormConstraint = FineTuneConstraint }, cancel)]; break;
            case "kn":
                baseline = Editing.Baselines.KnowledgeNeurons.Compute(lm, request, ContextTemplates.For(lm, hp), KnowledgeNeurons, cancel).Overlays;
                break;
            default: throw new RomeException($"Unknown method '{method}' ({string.Join(", ", Methods)}).");
        }
        try
        {
            cancel.ThrowIfCancellationRequested();
            return Measure(c, baseline is null ? session.Interventions() : new Interventions { Overlays = baseline }, cancel);
        }
        finally
        {
            foreach (var overlay in baseline ?? []) overlay.Delta.Dispose();
        }
    }

    /// <summary>
    /// The case's scores for the model as <paramref name="iv"/> edits it; GE and RS only when <paramref name="generate"/>
    /// (by default, when the evaluator generates).
    /// </summary>
    internal CaseScores Measure(CounterFactCase c, Interventions iv, CancellationToken cancel, bool? generate = null)
    {
        string newTarget = c.Rewrite.TargetNew.Str, trueTarget = c.Rewrite.TargetTrue.Str;
        (double, double) Score(IReadOnlyList<string> prompts, bool keepTrue)
        {
            var nllNew = TargetProbability.Nll(lm, prompts, newTarget, iv);
            var nllTrue = TargetProbability.Nll(lm, prompts, trueTarget, iv);
            return keepTrue ? CounterFactMetrics.Compare(nllTrue, nllNew) : CounterFactMetrics.Compare(nllNew, nllTrue);
        }
        var (es, em) = Score([c.RewritePrompt], false);
        var (ps, pm) = Score(c.ParaphrasePrompts, false);
        var (ns, nm) = Score(c.NeighborhoodPrompts, true);
        double? psTrained = null, psHeldOut = null;
        if (c.HeldOutParaphrases is { } held && held.Length == c.ParaphrasePrompts.Length)
        {
            var trained = c.ParaphrasePrompts.Where((_, i) => !held[i]).ToList();
            var heldOut = c.ParaphrasePrompts.Where((_, i) => held[i]).ToList();
            if (trained.Count > 0) psTrained = Score(trained, false).Item1;
            if (heldOut.Count > 0) psHeldOut = Score(heldOut, false).Item1;
        }

        double? fluency = null, consistency = null;
        if ((generate ?? generations) && c.GenerationPrompts.Length > 0)
        {
            var texts = c.GenerationPrompts.Select((p, i) =>
                TextGenerator.Generate(lm, p, new GenerationOptions { MaxTokens = Math.Min(40, lm.Config.Positions - lm.Encode(p).Length), TopK = 5, Seed = c.CaseId * 31 + i }, iv, cancel).Text).ToList();
            fluency = CounterFactMetrics.Fluency(texts);
            if (tfidf is not null && referenceText is not null)
                consistency = tfidf.Similarity(string.Join(" ", texts), referenceText(c.Rewrite.RelationId, newTarget));
        }
        var top1 = TargetProbability.IsTop1(lm, c.RewritePrompt, newTarget, iv) ? 1.0 : 0.0;
        var live = TargetProbability.GreedyIs(lm, c.RewritePrompt, newTarget, iv) ? 1.0 : 0.0;
        return new CaseScores(c.CaseId, es, em, ps, pm, ns, nm, psTrained, psHeldOut, fluency, consistency, top1, live);
    }

    private static readonly JsonSerializerOptions Json = new();

    /// <summary>
    /// Evaluates <paramref name="cases"/> with <paramref name="method"/>, reporting after each case the results so far
    /// (the web page's live table and the CLI's progress bar). With <paramref name="resultsFile"/>, each result is
    /// appended to it and cases already there are not run again (an interrupted run resumes). Returns every case's
    /// result, in case order.
    /// </summary>
    public List<CaseScores> Run(IReadOnlyList<CounterFactCase> cases, string method, string? resultsFile = null,
                                IProgress<EvaluationProgress>? progress = null, CancellationToken cancel = default)
    {
        var wanted = cases.Select(c => c.CaseId).ToHashSet();
        var done = resultsFile is null ? [] : ReadResults(resultsFile).Where(r => wanted.Contains(r.CaseId)).ToList();
        var finished = done.Select(r => r.CaseId).ToHashSet();
        if (resultsFile is not null)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(resultsFile))!);
            // A run killed mid-write leaves a torn last line: start on a fresh line so the next result stays whole.
            if (File.Exists(resultsFile) && new FileInfo(resultsFile).Length > 0)
            {
                using var f = File.OpenRead(resultsFile);
                f.Seek(-1, SeekOrigin.End);
                if (f.ReadByte() != '\n') { f.Close(); File.AppendAllText(resultsFile, "\n"); }
            }
        }
        foreach (var c in cases)
        {
            if (finished.Contains(c.CaseId)) continue;
            cancel.ThrowIfCancellationRequested();
            var scores = Evaluate(c, method, cancel);
            if (resultsFile is not null) File.AppendAllText(resultsFile, JsonSerializer.Serialize(scores, Json) + "\n");
            done.Add(scores);
            progress?.Report(new EvaluationProgress(done.Count, cases.Count, done.ToList()));
        }
        return done.OrderBy(r => r.CaseId).ToList();
    }

    /// <summary>Per-case results already written (a torn last line from an interrupted run is ignored).</summary>
    public static List<CaseScores> ReadResults(string file)
    {
        if (!File.Exists(file)) return [];
        var results = new List<CaseScores>();
        foreach (var line in File.ReadLines(file).Where(l => l.Trim().Length > 0))
        {
            try { results.Add(JsonSerializer.Deserialize<CaseScores>(line, Json)!); }
            catch (JsonException) { }
        }
        return results;
    }
}
