using Rome.Model;
using Rome.Model.Editing;

namespace Rome.Web.Services;

/// <summary>
/// What the tab's model now says after a prompt: its top five next tokens, with the tab's edits. One small forward
/// pass, queued like any job and remembered per (model, prompt, subject, edit stack), so asking again is free.
/// </summary>
public sealed class PreviewService(UserSession user, SessionJobs jobs)
{
    public const string Label = "preview";
    private (string Key, string Text)? _last;

    /// <summary>What a preview depends on: the model, the fact and the tab's stack of edits.</summary>
    public string Key(string prompt, string subject) => string.Join("\u0001", user.Host.Name, prompt, subject, user.EditCount == 0 ? "" : user.Edits.Version.ToString());

    /// <summary>The preview line, or why there is none (a bad prompt is said, not thrown).</summary>
    public async Task<string> PreviewAsync(string prompt, string subject, CancellationToken cancel = default)
    {
        var key = Key(prompt, subject);
        if (_last is { } last && last.Key == key) return last.Text;
        string text;
        try
        {
            var lm = user.Host.Require();
            var request = EditRequest.FromUser(prompt, subject, "x"); // the same reading and checks of the prompt as an edit's
            var ids = lm.Encode(request.Filled);
            if (ids.Length > user.Host.Settings.MaxPromptTokens) text = "(the prompt is too long)";
            else
            {
                var interventions = user.ExistingEdits?.Interventions() ?? new();
                var top = await jobs.Run(Label, _ => lm.Predict(ids, 5, interventions).Top, cancel);
                text = $"\"{request.Filled}\" → " + string.Join(", ", top.Select(t => $"{t.Text.Trim()} {t.Probability:P0}"));
            }
        }
        catch (RomeException e) { text = e.Message; }
        _last = (key, text);
        return text;
    }
}
