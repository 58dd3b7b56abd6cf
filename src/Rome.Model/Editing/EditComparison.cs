using Rome.Model.Modeling;

namespace Rome.Model.Editing;

/// <summary>One prompt's view of an edit: the top-5, and p(target) of the new and old targets (<see cref="TargetProbability.Of"/>).</summary>
public sealed record PromptReport(string Kind, string Text, TokenProbability[] Top, double NewTarget, double? OldTarget);

/// <summary>
/// What the model says before or after an edit: prompts, a greedy generation from the edit prompt, and the labels of
/// the two probability columns, fixed when it was measured.
/// </summary>
public sealed record EditReport(PromptReport[] Prompts, string Generation, string NewLabel, string? OldLabel);

/// <summary>Measures prompts for the before/after views of an edit (CLI and web alike).</summary>
public static class EditComparison
{
    public static EditReport Measure(LanguageModel lm, Interventions iv, EditRequest request,
                                     IReadOnlyList<(string Kind, string Text)> prompts, int seed = 0, int generationTokens = 25)
    {
        var texts = prompts.Select(p => p.Text).ToList();
        var newP = TargetProbability.Of(lm, texts, request.Target, iv);
        var old = request.OldTarget is { Length: > 0 } o ? o : null;
        var oldP = old is null ? null : TargetProbability.Of(lm, texts, old, iv);
        var reports = prompts.Select((p, i) =>
            new PromptReport(p.Kind, p.Text, lm.Predict(lm.Encode(p.Text), 5, iv).Top, newP[i], oldP?[i])).ToArray();
        var generation = TextGenerator.Generate(lm, request.Filled, new GenerationOptions { MaxTokens = generationTokens, Seed = seed }, iv).Text;
        return new EditReport(reports, generation, TargetProbability.Label(lm.Tokenizer, request.Target),
            old is null ? null : TargetProbability.Label(lm.Tokenizer, old));
    }
}
