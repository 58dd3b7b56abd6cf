using Rome.Model.Facts;
using Rome.Model.Modeling;

namespace Rome.Model.Evaluation;

/// <summary>What many edits may break beyond the facts they write: recall of facts no edit touched (retention) and the fluency of generated text (GE, bits).</summary>
public sealed record Health(double? Retention, double GE);

/// <summary>
/// A quick look at a model's health after edits, for the Edit page's many-facts mode: top-1 recall of a seeded sample
/// of manifest facts whose subjects the edits leave alone, and the n-gram entropy (<see cref="CounterFactMetrics.Fluency"/>)
/// of seeded text generated after a few fixed openings.
/// </summary>
public sealed class ModelHealth(LanguageModel lm, FactCorpus? corpus, IEnumerable<string> editedSubjects, int facts = 200)
{
    private static readonly string[] Openings = ["The", "In the city of", "My favourite", "Yesterday"];
    private readonly List<(string Prompt, string Object)> _retained = Retained(corpus, editedSubjects.ToHashSet(), facts);

    public Health Measure(Interventions iv, CancellationToken cancel = default) => new(Retention(iv, cancel), Fluency(iv, cancel));

    /// <summary>The share of the retained facts whose object's first token the model puts first; null without a manifest.</summary>
    public double? Retention(Interventions iv, CancellationToken cancel = default) =>
        _retained.Count == 0 ? null : Recall.Score(lm, "retained", _retained, cancel, iv).Rate;

    /// <summary>GE of seeded text after the fixed openings.</summary>
    public double Fluency(Interventions iv, CancellationToken cancel = default) =>
        CounterFactMetrics.Fluency(Openings.Select((o, i) => TextGenerator.Generate(lm, o,
            new GenerationOptions { MaxTokens = Math.Min(40, lm.Config.Positions - lm.Encode(o).Length), TopK = 5, Seed = i }, iv, cancel).Text));

    private static List<(string, string)> Retained(FactCorpus? corpus, HashSet<string> edited, int count)
    {
        if (corpus is null) return [];
        var random = new Random(0);
        return corpus.Facts.Where(f => !edited.Contains(f.Subject)).OrderBy(_ => random.Next()).Take(count)
            .Select(f => (corpus.Prompts(f).First(p => p.Trained).Prompt, f.Object)).ToList();
    }
}
