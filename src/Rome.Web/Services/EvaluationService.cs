using Rome.Model;
using Rome.Model.Editing;
using Rome.Model.Evaluation;

namespace Rome.Web.Services;

/// <summary>Where an evaluation stands: one method's summary so far, and the share of all the work done.</summary>
public sealed record EvaluationStatus(Summary Row, int Done, int Total, double Fraction);

/// <summary>The Evaluate page's service: CounterFact on the tab's model for the chosen methods, each case from the original model.</summary>
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
}
