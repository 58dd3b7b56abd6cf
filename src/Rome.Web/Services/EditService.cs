using Rome.Model;
using Rome.Model.Editing;
using Rome.Web.Services.Class;

namespace Rome.Web.Services;

/// <summary>Prompts to check an edit with, one per line, and hints where the model's facts have none.</summary>
public sealed record EditSuggestions(string Paraphrases, string Neighbours, string? Hint, string? NeighbourHint);

/// <summary>
/// The Edit page's service: one ROME edit of the tab's model, measured before and after. A teacher's edit is also shown
/// to the room (<see cref="ClassService"/>): its followers draw the same updates, computed once.
/// </summary>
public sealed class EditService(UserSession user, SessionJobs jobs, CovarianceCache covariances, EditStackService stack, ClassService? classroom = null)
{
    public const string Label = "edit";

    public SessionJobs Jobs => jobs;

    /// <summary>
    /// Checks the prompts against the server's limits, queues the edit (C estimated on first use, its progress reported
    /// as a stage), applies it to the tab's edit stack and returns both views. Bad input is a <see cref="RomeException"/>.
    /// </summary>
    public async Task<EditOutcome> EditAsync(EditRequest request, IReadOnlyList<string> paraphrases, IReadOnlyList<string> neighbours,
                                             IProgress<EditUpdate>? progress = null, CancellationToken cancel = default)
    {
        var (host, lm) = (user.Host, user.Host.Require());
        var prompts = new List<(string Kind, string Text)> { (PromptReport.Prompt, request.Filled) };
        prompts.AddRange(paraphrases.Select(p => (PromptReport.Paraphrase, p)));
        prompts.AddRange(neighbours.Select(p => (PromptReport.Neighbour, p)));
        foreach (var (_, text) in prompts)
            if (lm.Encode(text).Length > host.Settings.MaxPromptTokens)
                throw new RomeException($"\"{(text.Length > 60 ? text[..60] + "..." : text)}\" is longer than the limit of {host.Settings.MaxPromptTokens} tokens.");
        var session = user.Edits;
        if (session.Edits.Count >= host.Settings.MaxEditsPerTab)
            throw new RomeException($"This tab has {session.Edits.Count} edits, the most it may stack; undo or clear some first.");
        Task<EditOutcome> Edit(IProgress<EditUpdate>? p) => jobs.Run(Label, c =>
        {
            var hp = RomeHyperParameters.ForModel(lm.Folder, lm.Config);
            var editor = new RomeEditor(lm, hp);
            var covariance = covariances.ForEditor(lm, hp, progress: p is null ? null
                : new SyncProgress<double>(f => p.Report(new EditStage($"Estimating the key statistics C for layer {hp.Layer} (once): {f:P0}"))), cancel: c);
            // The history shows the edit, and its verdict, as the page shows the verdict (not once the job has ended).
            try { return EditWorkflow.Run(session, editor, request, prompts, covariance, p, c); }
            finally { stack.NotifyChanged(); }
        }, cancel);
        return classroom?.ShareEdit(request) is { } shared ? await shared.Run(progress, Edit) : await Edit(progress);
    }

    /// <summary>
    /// Paraphrase and neighbourhood prompts for the fact, from the model's fact manifest; empty, with a hint, when the
    /// manifest does not know the fact, so no prompt about another fact is ever suggested.
    /// </summary>
    public EditSuggestions Suggest(string prompt, string subject)
    {
        var (paraphrases, neighbours, fact) = user.Host.Facts is { } facts ? facts.EditSuggestions(EditRequest.Template(prompt, subject), subject) : ([], [], null);
        return new EditSuggestions(string.Join("\n", paraphrases), string.Join("\n", neighbours),
            fact is null ? "No suggestions: the model's facts do not include this one. Type your own checks." : null,
            fact is not null && neighbours.Count == 0
                ? "No other subject the model knows has this answer, so there is no neighbour to suggest: type your own to see what the edit spills onto." : null);
    }
}
