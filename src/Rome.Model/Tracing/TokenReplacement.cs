using Rome.Model.Modeling;
using static TorchSharp.torch;

namespace Rome.Model.Tracing;

/// <summary>
/// Symmetric token replacement (STR; Zhang &amp; Nanda 2023): a corrupted run puts another subject's tokens in the
/// subject's place instead of noise. A replacement must take as many tokens in the prompt, with every other token
/// unchanged, so each position keeps its role; and the model must answer it with something else, so the corrupted run
/// has a rival answer (what <see cref="TraceMetric.LogitDiff"/> compares the clean answer with).
/// </summary>
public static class TokenReplacement
{
    /// <summary>The subject with one replacement in place: its name and the prompt's token ids.</summary>
    public sealed record Replacement(string Subject, int[] Ids);

    /// <summary>
    /// Up to <paramref name="count"/> replacements for <paramref name="subject"/> from <paramref name="pool"/>, tried in
    /// an order set by <paramref name="seed"/>; the model (with <paramref name="iv"/>) must not answer
    /// <paramref name="answer"/> after any of them. A clear error when none fits.
    /// </summary>
    public static IReadOnlyList<Replacement> Choose(LanguageModel lm, string prompt, string subject, int answer, IReadOnlyList<string> pool,
                                                    int count, int seed, Interventions? iv = null)
    {
        if (count < 1) throw new RomeException("Samples must be at least 1.");
        var ids = lm.Encode(prompt);
        var span = lm.Tokenizer.FindSpan(prompt, subject);
        var at = prompt.IndexOf(subject, StringComparison.Ordinal);
        bool Fits(int[] other) => other.Length == ids.Length
            && Enumerable.Range(0, ids.Length).All(i => span.Contains(i) || other[i] == ids[i]);

        var chosen = new List<Replacement>();
        var order = pool.Where(s => !string.IsNullOrWhiteSpace(s) && s != subject).Distinct(StringComparer.Ordinal)
            .OrderBy(s => Hash(s, seed)).ThenBy(s => s, StringComparer.Ordinal);
        foreach (var chunk in order.Select(s => new Replacement(s, lm.Encode(prompt[..at] + s + prompt[(at + subject.Length)..]))).Where(r => Fits(r.Ids)).Chunk(32))
        {
            using var logProbs = lm.NextTokenLogProbs(chunk.Select(r => r.Ids).ToList(), iv);
            using var top = logProbs.argmax(-1);
            var tops = top.data<long>().ToArray();
            chosen.AddRange(chunk.Where((_, i) => tops[i] != answer));
            if (chosen.Count >= count) break;
        }
        if (chosen.Count == 0)
            throw new RomeException($"None of the {pool.Count} subjects offered takes {span.Length} token{(span.Length == 1 ? "" : "s")} in this prompt " +
                                    $"and makes the model answer otherwise, so \"{subject}\" cannot be replaced here: corrupt it with noise.");
        return chosen.Take(count).ToList();
    }

    /// <summary>FNV-1a of the seed and the subject: an order that is the same in every process.</summary>
    private static uint Hash(string s, int seed) =>
        s.Aggregate(unchecked(2166136261u ^ (uint)seed * 16777619u), (h, c) => unchecked((h ^ c) * 16777619u));
}
