using Rome.Model.Modeling;

namespace Rome.Model.Editing;

/// <summary>
/// One prompt's view of an edit: the top-5, p(new target) (<see cref="TargetProbability"/>), and the answer this prompt
/// should keep or lose with p of it: the old target for the edited prompt and its paraphrases, and a neighbour's own
/// answer (its top-1 before the edit) for a neighbour.
/// </summary>
public sealed record PromptReport(string Kind, string Text, TokenProbability[] Top, double NewTarget, string? Answer, double? AnswerProbability)
{
    public const string Prompt = "prompt", Paraphrase = "paraphrase", Neighbour = "neighbour";
}

/// <summary>What the model says before or after an edit: prompts, a greedy generation from the edit prompt, and the new target's column label.</summary>
public sealed record EditReport(PromptReport[] Prompts, string Generation, string NewLabel);

/// <summary>Measures prompts for the before/after views of an edit (CLI and web alike).</summary>
public static class EditComparison
{
    /// <summary>
    /// The prompts on the model as <paramref name="iv"/> edits it. <paramref name="answers"/> (one per prompt) are the
    /// answers to report p of; by default the request's old target, and for a neighbour its own current top-1.
    /// </summary>
    public static EditReport Measure(LanguageModel lm, Interventions iv, EditRequest request, IReadOnlyList<(string Kind, string Text)> prompts,
                                     IReadOnlyList<string?>? answers = null, int seed = 0, int generationTokens = 25)
    {
        var texts = prompts.Select(p => p.Text).ToList();
        var newP = TargetProbability.Of(lm, texts, request.Target, iv);
        var tops = Top(lm, texts, iv, 5);
        answers ??= prompts.Select((p, i) => p.Kind == PromptReport.Neighbour ? tops[i][0].Text.Trim() : request.OldTarget).ToList();
        // p of each row's answer, one batch per distinct answer.
        var answerP = new double?[texts.Count];
        foreach (var group in Enumerable.Range(0, texts.Count).Where(i => answers[i] is { Length: > 0 }).GroupBy(i => answers[i]!))
        {
            var p = TargetProbability.Of(lm, group.Select(i => texts[i]).ToList(), group.Key, iv);
            foreach (var (i, k) in group.Select((i, k) => (i, k))) answerP[i] = p[k];
        }
        var reports = prompts.Select((p, i) => new PromptReport(p.Kind, p.Text, tops[i], newP[i], answers[i] is { Length: > 0 } a ? a : null, answerP[i])).ToArray();
        var generation = TextGenerator.Generate(lm, request.Filled, new GenerationOptions { MaxTokens = generationTokens, Seed = seed }, iv).Text;
        return new EditReport(reports, generation, TargetProbability.Label(lm.Tokenizer, request.Target));
    }

    /// <summary>The <paramref name="k"/> most likely next tokens after each prompt, in one batch.</summary>
    private static TokenProbability[][] Top(LanguageModel lm, IReadOnlyList<string> texts, Interventions iv, int k)
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        var (values, indices) = lm.NextTokenLogProbs(texts.Select(lm.Encode).ToList(), iv).exp().topk(Math.Min(k, lm.Config.VocabSize));
        var (p, ids) = (values.data<float>().ToArray(), indices.data<long>().ToArray());
        var width = (int)values.shape[1];
        return texts.Select((_, row) => Enumerable.Range(0, width)
            .Select(j => new TokenProbability((int)ids[row * width + j], lm.Tokenizer.TokenLabel((int)ids[row * width + j]), p[row * width + j])).ToArray()).ToArray();
    }
}
