using Rome.Model.Modeling;

namespace Rome.Model.Editing;

/// <summary>One prompt's view of an edit: the top-5, and the probabilities of the new and old targets (whole strings).</summary>
public sealed record PromptReport(string Kind, string Text, TokenProbability[] Top, double NewTarget, double? OldTarget);

/// <summary>What the model says before or after an edit: prompts, and a greedy generation from the edit prompt.</summary>
public sealed record EditReport(PromptReport[] Prompts, string Generation);

/// <summary>Measures prompts for the before/after views of an edit (CLI and web alike).</summary>
public static class EditComparison
{
    public static EditReport Measure(LanguageModel lm, Interventions iv, EditRequest request,
                                     IReadOnlyList<(string Kind, string Text)> prompts, int seed = 0, int generationTokens = 25)
    {
        var reports = prompts.Select(p =>
        {
            var ids = lm.Encode(p.Text);
            var prediction = lm.Predict(ids, 5, iv);
            return new PromptReport(p.Kind, p.Text, prediction.Top, Probability(lm, ids, request.Target, iv),
                request.OldTarget is { Length: > 0 } old ? Probability(lm, ids, old, iv) : null);
        }).ToArray();
        var generation = TextGenerator.Generate(lm, request.Filled, new GenerationOptions { MaxTokens = generationTokens, Seed = seed }, iv).Text;
        return new EditReport(reports, generation);
    }

    /// <summary>P(" target" | prompt): the product of its tokens' probabilities.</summary>
    public static double Probability(LanguageModel lm, int[] prompt, string target, Interventions iv)
    {
        var targetIds = lm.Tokenizer.Encode(" " + target.Trim());
        double logP = 0;
        var ids = prompt.ToList();
        foreach (var t in targetIds)
        {
            using var logProbs = lm.NextTokenLogProbs(ids, iv);
            logP += logProbs[t].item<float>();
            ids.Add(t);
        }
        return Math.Exp(logP);
    }
}
