using Rome.Model;
using Rome.Model.Editing;
using Rome.Model.Evaluation;

namespace Rome.Web.Services;

/// <summary>A batch written on the Edit page: each fact's result, and the model's health before and after.</summary>
public sealed record BatchReport(BatchOutcome Outcome, Health Before, Health After);

/// <summary>
/// The Edit page's many-facts mode: facts pasted or uploaded (<see cref="RequestsFile"/>), written into the tab's model
/// with one method as one entry of its edit stack, measured before and after.
/// </summary>
public sealed class BatchEditService(UserSession user, SessionJobs jobs, CovarianceCache covariances, EditStackService stack)
{
    public const string Label = "edit many";

    public SessionJobs Jobs => jobs;

    public int MaxFacts => user.Host.Settings.MaxBatchFacts;

    /// <summary>
    /// Reads <paramref name="text"/> (CSV, a pasted tab-separated table, or JSON), checks every fact against the model
    /// and the server's limits before queueing, and writes them. Bad input is a <see cref="RomeException"/> naming the row.
    /// </summary>
    public async Task<BatchReport> WriteAsync(string text, string method, IProgress<BatchProgress>? progress = null, CancellationToken cancel = default)
    {
        var (host, lm) = (user.Host, user.Host.Require());
        var trimmed = (text ?? "").Trim();
        var requests = RequestsFile.Parse(trimmed, "The facts", csv: !trimmed.StartsWith('['));
        if (requests.Count > host.Settings.MaxBatchFacts)
            throw new RomeException($"There are {requests.Count} facts; this server writes at most {host.Settings.MaxBatchFacts} at once.");
        for (int i = 0; i < requests.Count; i++)
            if (lm.Encode(requests[i].Filled).Length > host.Settings.MaxPromptTokens)
                throw new RomeException($"Row {i + 1}: \"{requests[i].Filled}\" is longer than the limit of {host.Settings.MaxPromptTokens} tokens.");
        var session = user.Edits;
        if (session.Edits.Count >= host.Settings.MaxEditsPerTab)
            throw new RomeException($"This tab has {session.Edits.Count} edits, the most it may stack; undo or clear some first.");
        var editors = Editors.ForModel(lm, covariances);
        editors.Check(method, requests);
        var report = await jobs.Run(Label, c =>
        {
            var health = new ModelHealth(lm, host.Facts, requests.Select(r => r.Subject));
            var before = health.Measure(session.Interventions(), c);
            var outcome = BatchWorkflow.Run(session, editors, method, requests, oneEntry: true, progress: progress, cancel: c);
            return new BatchReport(outcome, before, health.Measure(session.Interventions()));   // written: measured to the end, not cancelled half-way
        }, cancel);
        stack.NotifyChanged();
        return report;
    }
}
