using Rome.Model;
using Rome.Model.Editing;

namespace Rome.Web.Services;

/// <summary>The Edit page's service: one ROME edit of the tab's model, measured before and after.</summary>
public sealed class EditService(UserSession user, SessionJobs jobs)
{
    public const string Label = "edit";

    /// <summary>
    /// Checks the request and the prompts, queues the edit (C estimated on first use, its progress reported as a
    /// stage), applies it to the tab's edit stack and returns both views. Bad input is a <see cref="RomeException"/>.
    /// </summary>
    public Task<EditOutcome> EditAsync(EditRequest request, IReadOnlyList<string> paraphrases, IReadOnlyList<string> neighbours,
                                       IProgress<EditUpdate>? progress = null, CancellationToken cancel = default)
    {
        var (host, lm) = (user.Host, user.Host.Require());
        request.Validate();
        lm.Tokenizer.FindSpan(request.Filled, request.Subject);
        var prompts = new List<(string Kind, string Text)> { ("prompt", request.Filled) };
        prompts.AddRange(paraphrases.Select(p => ("paraphrase", p)));
        prompts.AddRange(neighbours.Select(p => ("neighbour", p)));
        foreach (var (_, text) in prompts)
            if (lm.Encode(text).Length > host.Settings.MaxPromptTokens)
                throw new RomeException($"\"{(text.Length > 60 ? text[..60] + "..." : text)}\" is longer than the limit of {host.Settings.MaxPromptTokens} tokens.");
        var session = user.Edits;
        if (session.Edits.Count >= host.Settings.MaxEditsPerTab)
            throw new RomeException($"This tab has {session.Edits.Count} edits, the most it may stack; undo or clear some first.");
        return jobs.Run(Label, c =>
        {
            var hp = RomeHyperParameters.ForModel(lm.Folder, lm.Config);
            var covariance = host.Covariance(hp, progress: progress is null ? null
                : new SyncProgress<double>(f => progress.Report(new EditStage($"Estimating the key statistics C for layer {hp.Layer} (once): {f:P0}"))), cancel: c);
            return EditWorkflow.Run(session, new RomeEditor(lm, hp), request, prompts, covariance, progress, c);
        }, cancel);
    }
}
