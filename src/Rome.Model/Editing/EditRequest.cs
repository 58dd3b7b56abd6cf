namespace Rome.Model.Editing;

/// <summary>
/// A fact to rewrite: <see cref="Prompt"/> holds <c>{}</c> where the subject goes ("{} is a citizen of"),
/// <see cref="Target"/> is the new object (a space is prepended, as the original does), and <see cref="OldTarget"/>
/// (optional) the object being replaced, for before/after reports. A request is checked when it is made, so one that
/// exists is well formed: its subject and target are not empty and its prompt has one <c>{}</c> with words after it.
/// </summary>
public sealed record EditRequest
{
    public EditRequest(string prompt, string subject, string target, string? oldTarget = null)
    {
        if (string.IsNullOrWhiteSpace(subject)) throw new RomeException("The subject is empty.");
        if (string.IsNullOrWhiteSpace(target)) throw new RomeException("The new target is empty.");
        var holes = (prompt ?? "").Split("{}").Length - 1;
        if (holes != 1) throw new RomeException($"The prompt must contain {{}} exactly once, where the subject goes (e.g. \"{{}} is a citizen of\"); it has {holes}.");
        if (prompt!.Trim() == "{}") throw new RomeException("The prompt needs words after the subject, e.g. \"{} is a citizen of\".");
        (Prompt, Subject, Target, OldTarget) = (prompt, subject, target, oldTarget);
    }

    public string Prompt { get; }
    public string Subject { get; }
    public string Target { get; }
    public string? OldTarget { get; init; }

    /// <summary>The prompt with the subject filled in.</summary>
    public string Filled => Prompt.Replace("{}", Subject);
}
