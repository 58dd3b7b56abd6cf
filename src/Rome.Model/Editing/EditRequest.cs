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

    /// <summary>How a batch names this request, the <paramref name="index"/>-th: Fact 3 ("Nintendo is located in" → Germany).</summary>
    public string Describe(int index) => $"Fact {index + 1} (\"{Filled}\" → {Target})";

    /// <summary>The prompt with the subject filled in.</summary>
    public string Filled => Prompt.Replace("{}", Subject);

    /// <summary>
    /// A request from what a user types, the way the Trace page takes it: a plain sentence that contains the subject
    /// ("Nintendo is located in"), or a prompt with <c>{}</c> where the subject goes. The subject's last occurrence
    /// becomes the <c>{}</c>.
    /// </summary>
    public static EditRequest FromUser(string prompt, string subject, string target)
    {
        subject = (subject ?? "").Trim();
        var template = Template(prompt, subject);
        if (!template.Contains("{}") && subject.Length > 0)
            throw new RomeException($"The prompt must contain the subject (\"{subject}\") or {{}} where it goes, e.g. \"{subject} is located in\".");
        return new EditRequest(template, subject, target);
    }

    /// <summary>The prompt with <c>{}</c> where the subject goes: as typed if it has one, else at the subject's last occurrence (if any).</summary>
    public static string Template(string prompt, string subject)
    {
        (prompt, subject) = (prompt ?? "", (subject ?? "").Trim());
        if (prompt.Contains("{}") || subject.Length == 0) return prompt;
        var at = prompt.LastIndexOf(subject, StringComparison.Ordinal);
        return at < 0 ? prompt : prompt[..at] + "{}" + prompt[(at + subject.Length)..];
    }

    /// <summary>What the Trace page traces for a prompt typed either way: the sentence, with <c>{}</c> filled by the subject.</summary>
    public static string Sentence(string prompt, string subject) => (prompt ?? "").Replace("{}", (subject ?? "").Trim());
}
