namespace Rome.Model.Editing;

/// <summary>
/// A fact to rewrite: <paramref name="Prompt"/> holds <c>{}</c> where the subject goes ("{} is a citizen of"),
/// <paramref name="Target"/> is the new object (a space is prepended, as the original does).
/// <paramref name="OldTarget"/> (optional) is the object being replaced, for before/after reports.
/// </summary>
public sealed record EditRequest(string Prompt, string Subject, string Target, string? OldTarget = null)
{
    /// <summary>The prompt with the subject filled in.</summary>
    public string Filled => Prompt.Replace("{}", Subject);

    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Subject)) throw new RomeException("The subject is empty.");
        if (string.IsNullOrWhiteSpace(Target)) throw new RomeException("The new target is empty.");
        var holes = Prompt.Split("{}").Length - 1;
        if (holes != 1) throw new RomeException($"The prompt must contain {{}} exactly once, where the subject goes (e.g. \"{{}} is a citizen of\"); it has {holes}.");
        if (Prompt.Trim() == "{}") throw new RomeException("The prompt needs words after the subject, e.g. \"{} is a citizen of\".");
    }
}
