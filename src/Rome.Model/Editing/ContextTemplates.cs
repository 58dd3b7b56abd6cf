using System.Collections.Concurrent;
using Rome.Model.Modeling;

namespace Rome.Model.Editing;

/// <summary>
/// The context templates (the original's <c>get_context_templates</c> in <c>rome_main.py</c>): "{}" and, for each of
/// <see cref="RomeHyperParameters.ContextTemplateLengthParams"/>' [length, count], prefixes "generated text. {}" of
/// text the unedited model samples (top-k 5, seeded) after &lt;|endoftext|&gt;, the prompt token counted in the
/// length (or after the model's own <see cref="RomeHyperParameters.ContextTemplatePrompts"/>). ROME averages k* over
/// them and optimises v* in all of them, so the edit holds whatever text comes before the subject.
/// </summary>
public static class ContextTemplates
{
    private static readonly ConcurrentDictionary<(string, string, int), List<string>> Cache = new();

    /// <summary>
    /// The templates for this model and these settings ([length, count] pairs, the texts sampled after), "{}" first and
    /// then each pair's in turn; cached per model fingerprint, settings and seed.
    /// </summary>
    public static List<string> For(LanguageModel lm, int[][] lengthParams, string[] prompts, int seed = 0) =>
        Cache.GetOrAdd((lm.Fingerprint, string.Join(";", lengthParams.Select(c => string.Join(",", c))) + "|" + string.Join("|", prompts), seed),
            _ => Generate(lm, lengthParams, prompts, seed));

    /// <summary>ROME's templates for <paramref name="hp"/>.</summary>
    public static List<string> For(LanguageModel lm, RomeHyperParameters hp, int seed = 0) => For(lm, hp.ContextTemplateLengthParams, hp.ContextTemplatePrompts, seed);

    /// <summary>
    /// The templates' groups as MEMIT averages over them (<c>compute_ks</c>): "{}" alone, then each [length, count] pair's.
    /// </summary>
    public static int[] GroupSizes(int[][] lengthParams) => [1, .. lengthParams.Select(p => p[1])];

    /// <summary>Braces are removed from the samples: a generated "{" would break the template in the original.</summary>
    private static List<string> Generate(LanguageModel lm, int[][] lengthParams, string[] prompts, int seed)
    {
        var templates = new List<string> { "{}" };
        var i = 0;
        foreach (var spec in lengthParams)
        {
            if (spec is not [var length, var count] || length < 1 || count < 0)
                throw new RomeException("contextTemplateLengthParams holds [length, count] pairs with length ≥ 1, e.g. [[5, 10], [10, 10]].");
            for (int n = 0; n < count; n++, i++)
            {
                var start = prompts[n % prompts.Length];
                var (ids, text) = start == "<|endoftext|>" ? ([lm.StartOfText], "") : (lm.Encode(start), start);
                var options = new GenerationOptions { MaxTokens = Math.Max(1, length - ids.Length), TopK = 5, Seed = seed + i };
                var g = TextGenerator.Generate(lm, ids, text, options, Interventions.None);
                templates.Add(g.Text.Replace("{", "").Replace("}", "").Trim() + ". {}");
            }
        }
        return templates;
    }

    /// <summary>A template filled with the request's prompt, and the position of the subject's last token in it.</summary>
    public static (string Text, int LastSubjectToken) Fill(LanguageModel lm, string template, EditRequest request)
    {
        var text = template.Replace("{}", request.Filled);
        var subjectStart = template.IndexOf("{}", StringComparison.Ordinal) + request.Prompt.IndexOf("{}", StringComparison.Ordinal);
        return (text, lm.Tokenizer.FindSpan(text, request.Subject, subjectStart).Last);
    }
}
