using Rome.Model;
using Rome.Model.Editing;
using Rome.Model.Evaluation;

namespace Rome.Web.Services;

/// <summary>Where an evaluation stands: one method's summary so far, and the share of all the work done.</summary>
public sealed record EvaluationStatus(Summary Row, int Done, int Total, double Fraction);

/// <summary>Where a many-edits run stands: each method's checkpoints so far, and the share of all the work done.</summary>
public sealed record SequenceStatus(IReadOnlyDictionary<string, IReadOnlyList<SequenceCheckpoint>> Checkpoints, string Text, double Fraction);

/// <summary>
/// The Evaluate page's service: CounterFact on the tab's model for the chosen methods, each case from the original
/// model; or many edits in one model, the methods side by side.
/// </summary>
public sealed class EvaluationService(UserSession user, SessionJobs jobs, CovarianceCache covariances)
{
    public const string Label = "evaluate";

    public SessionJobs Jobs => jobs;

    public int MaxCases => user.Host.Settings.MaxEvalCases;

    /// <summary>Evaluates the first <paramref name="cases"/> cases with each method in turn; returns one summary per method.</summary>
    public Task<IReadOnlyList<Summary>> EvaluateAsync(int cases, IReadOnlyCollection<string> methods, IProgress<EvaluationStatus>? progress = null, CancellationToken cancel = default)
    {
        var (host, lm) = (user.Host, user.Host.Require());
        if (methods.Count == 0) throw new RomeException("Choose at least one method.");
        if (cases < 1 || cases > host.Settings.MaxEvalCases) throw new RomeException($"Cases must be between 1 and {host.Settings.MaxEvalCases}.");
        var path = Path.Combine(lm.Folder, "counterfact.json");
        if (!File.Exists(path)) throw new RomeException("This model has no CounterFact set (run 'rome counterfact build').");
        var chosen = CounterFactDataset.Load(path).Take(cases).ToList();
        var ordered = CounterFactEvaluator.Methods.Where(methods.Contains).ToList();
        return jobs.Run<IReadOnlyList<Summary>>(Label, c =>
        {
            var hp = RomeHyperParameters.ForModel(lm.Folder, lm.Config);
            var evaluator = new CounterFactEvaluator(lm, hp, ordered.Contains("rome") ? covariances.ForEditor(lm, hp, cancel: c) : null, generations: false)
                { Editors = Editors.ForModel(lm, covariances) };
            var summaries = new List<Summary>();
            for (int m = 0; m < ordered.Count; m++)
            {
                var (method, before) = (ordered[m], m * chosen.Count);
                var results = evaluator.Run(chosen, method, progress: progress is null ? null : new SyncProgress<EvaluationProgress>(p =>
                    progress.Report(new EvaluationStatus(CounterFactMetrics.Summarise(method, p.Results), p.Done, p.Total, (before + p.Done) / (double)(chosen.Count * ordered.Count)))), cancel: c);
                summaries.Add(CounterFactMetrics.Summarise(method, results));
            }
            return summaries;
        }, cancel);
    }

    /// <summary>
    /// The first <paramref name="cases"/> cases written into one model <paramref name="batch"/> at a time with each
    /// method in turn, scored every <paramref name="every"/> edits (no generation: GE is the CLI's); returns each
    /// method's checkpoints. The tab's own edits are not touched.
    /// </summary>
    public Task<IReadOnlyDictionary<string, IReadOnlyList<SequenceCheckpoint>>> SequenceAsync(int cases, int batch, int every, IReadOnlyCollection<string> methods,
        IProgress<SequenceStatus>? progress = null, CancellationToken cancel = default)
    {
        var (host, lm) = (user.Host, user.Host.Require());
        if (methods.Count == 0) throw new RomeException("Choose at least one method.");
        if (cases < 1 || cases > host.Settings.MaxEvalCases) throw new RomeException($"Cases must be between 1 and {host.Settings.MaxEvalCases}.");
        if (batch < 1 || batch > cases) throw new RomeException($"The batch must be between 1 and the number of cases ({cases}).");
        if (every < batch || every > cases) throw new RomeException($"Checkpoints come every {batch} to {cases} edits (at least one batch).");
        var path = Path.Combine(lm.Folder, "counterfact.json");
        if (!File.Exists(path)) throw new RomeException("This model has no CounterFact set (run 'rome counterfact build').");
        var chosen = CounterFactDataset.Load(path).Take(cases).ToList();
        var ordered = Editors.Methods.Where(methods.Contains).ToList();
        return jobs.Run<IReadOnlyDictionary<string, IReadOnlyList<SequenceCheckpoint>>>(Label, c =>
        {
            var editors = Editors.ForModel(lm, covariances);
            var scorer = new CounterFactEvaluator(lm, editors.Rome, null, generations: false);
            var results = new Dictionary<string, IReadOnlyList<SequenceCheckpoint>>();
            for (int m = 0; m < ordered.Count; m++)
            {
                var method = ordered[m];
                var run = new ManyEditsEvaluation(lm, editors, scorer, host.Facts) { GenerationSample = 0 };
                var done = m;
                results[method] = run.Run(chosen, method, batch, every, progress is null ? null : new SyncProgress<ManyEditsProgress>(p =>
                {
                    results[method] = p.Checkpoints;
                    progress.Report(new SequenceStatus(new Dictionary<string, IReadOnlyList<SequenceCheckpoint>>(results), $"{MethodNames.Of(method)}: {p.Written} of {p.Total} written",
                        (done + p.Written / (double)p.Total) / ordered.Count));
                }), c);
            }
            return results;
        }, cancel);
    }
}
