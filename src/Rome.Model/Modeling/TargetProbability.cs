using static TorchSharp.torch;

namespace Rome.Model.Modeling;

/// <summary>
/// Rome's one p(target): exp(−mean per-token NLL) of " target" after a prompt. For a one-token target it is that
/// token's probability; for a longer one, the geometric mean of its tokens' probabilities. CounterFact's scores, the
/// before/after views of an edit and ROME's v* curve all report this.
/// </summary>
public static class TargetProbability
{
    /// <summary>Mean per-token NLL of " <paramref name="target"/>" after each prompt, batched.</summary>
    public static double[] Nll(LanguageModel lm, IReadOnlyList<string> prompts, string target, Interventions iv)
    {
        if (prompts.Count == 0) return [];
        var targetIds = lm.Tokenizer.Encode(" " + target.Trim());
        var promptIds = prompts.Select(lm.Encode).ToList();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var logProbs = lm.Model.Forward(lm.Padded(promptIds.Select(p => p.Concat(targetIds).ToArray()).ToList()), iv).log_softmax(-1);
        var result = new double[prompts.Count];
        for (int i = 0; i < prompts.Count; i++)
        {
            double sum = 0;
            for (int j = 0; j < targetIds.Length; j++)
                sum -= logProbs[i, promptIds[i].Length - 1 + j, targetIds[j]].item<float>();
            result[i] = sum / targetIds.Length;
        }
        return result;
    }

    /// <summary>p(target) after each prompt: exp(−<see cref="Nll"/>).</summary>
    public static double[] Of(LanguageModel lm, IReadOnlyList<string> prompts, string target, Interventions iv) =>
        Nll(lm, prompts, target, iv).Select(nll => Math.Exp(-nll)).ToArray();

    /// <summary>How to label it: "p(Paris)", or "p(New York) per token" for a multi-token target.</summary>
    public static string Label(TextTokenizer tokenizer, string target) =>
        tokenizer.Encode(" " + target.Trim()).Length == 1 ? $"p({target.Trim()})" : $"p({target.Trim()}) per token";

    /// <summary>Whether " <paramref name="target"/>"'s first token is the most likely next token after <paramref name="prompt"/>.</summary>
    public static bool IsTop1(LanguageModel lm, string prompt, string target, Interventions iv)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var logits = lm.Model.Forward(lm.Padded([lm.Encode(prompt)]), iv, lastOnly: true);
        return logits[0, -1].argmax().item<long>() == lm.Tokenizer.Encode(" " + target.Trim())[0];
    }

    /// <summary>
    /// Live decoding: whether the model's greedy continuation of <paramref name="prompt"/> is " <paramref name="target"/>",
    /// token for token ("The Mirage of Model Editing", arXiv 2502.11177: teacher-forced scores flatter editors).
    /// </summary>
    public static bool GreedyIs(LanguageModel lm, string prompt, string target, Interventions iv)
    {
        var ids = lm.Encode(prompt).ToList();
        foreach (var next in lm.Tokenizer.Encode(" " + target.Trim()))
        {
            using var logProbs = lm.NextTokenLogProbs(ids, iv);
            if (logProbs.argmax().item<long>() != next) return false;
            ids.Add(next);
        }
        return true;
    }
}
