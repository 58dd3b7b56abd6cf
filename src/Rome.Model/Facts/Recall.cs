using Rome.Model.Modeling;
using static TorchSharp.torch;

namespace Rome.Model.Facts;

public sealed record RecallScore(string Name, int Correct, int Total)
{
    public double Rate => Total == 0 ? 0 : (double)Correct / Total;
    public override string ToString() => $"{Name}: {Correct}/{Total} = {100 * Rate:F1}%";
}

/// <summary>A fact to offer a class: its prompt, subject and answer, and another object of its relation to rewrite it to.</summary>
public sealed record FactExample(string Prompt, string Subject, string Answer, string Other);

public sealed record RecallReport(RecallScore TrainedTemplates, RecallScore HeldOutTemplates, RecallScore UnseenFacts, RecallScore ChanceBaseline);

/// <summary>One template's recall over its relation's trained facts.</summary>
public sealed record TemplateRecall(string Relation, string Template, bool Trained, RecallScore Score);

/// <summary>
/// What the model "knows": top-1 accuracy of the first token of the object after a fact's prompt.
/// Trained facts with trained templates (memorised), with held-out templates (paraphrase generalisation),
/// and ParaRel facts of the same relations the model never saw (near chance: knowing is memory, not reasoning).
/// </summary>
public static class Recall
{
    /// <summary>The first token of the object as the model would continue a prompt with it (" Paris").</summary>
    public static int FirstObjectToken(TextTokenizer tokenizer, string obj) => tokenizer.Encode(" " + obj)[0];

    public static RecallScore Score(LanguageModel lm, string name, IReadOnlyList<(string Prompt, string Object)> items, CancellationToken cancel = default, Interventions? iv = null)
    {
        int correct = 0;
        foreach (var chunk in items.Chunk(256))
        {
            cancel.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var logProbs = lm.NextTokenLogProbs(chunk.Select(i => lm.Encode(i.Prompt)).ToList(), iv);
            var argmax = logProbs.argmax(-1).data<long>().ToArray();
            correct += chunk.Where((item, k) => argmax[k] == FirstObjectToken(lm.Tokenizer, item.Object)).Count();
        }
        return new RecallScore(name, correct, items.Count);
    }

    /// <summary>
    /// Up to <paramref name="count"/> facts to offer a class, one per subject, <paramref name="favourites"/> first: each
    /// with its first trained prompt, only facts the model gets right (so every example works when clicked), with at
    /// least <paramref name="neighbours"/> neighbours the model also gets right (so an edit's spill-over can be seen),
    /// and a counterfactual target that reads naturally (<see cref="FactCorpus.NaturalCounterfactual"/>). Of a
    /// subject's facts, the one whose answer the fewest other subjects share comes first: with the subject corrupted
    /// the model cannot guess it from the relation alone, so its trace shows the most.
    /// </summary>
    public static List<FactExample> Examples(LanguageModel lm, FactCorpus corpus, string[] favourites, int count, int neighbours = 3, int seed = 7)
    {
        var random = new Random(seed);
        var sharing = corpus.Facts.CountBy(f => (f.Relation, f.Object)).ToDictionary();
        var candidates = corpus.Facts
            .Where(f => sharing[(f.Relation, f.Object)] > neighbours && corpus.NaturalCounterfactual(f) is not null)
            .OrderBy(f => Array.IndexOf(favourites, f.Subject) is var i && i >= 0 ? i : int.MaxValue)
            .ThenBy(f => sharing[(f.Relation, f.Object)]).ThenBy(_ => random.Next())
            .Take(count * 20).ToList();
        // Which facts the model gets right: the candidates and all their neighbours, in one batch.
        var asked = candidates.Concat(candidates.SelectMany(corpus.Neighbours)).Distinct().ToList();
        var prompts = asked.Select(f => corpus.Prompts(f).First(p => p.Trained).Prompt).ToList();
        using var scope = NewDisposeScope();
        var argmax = lm.NextTokenLogProbs(prompts.Select(lm.Encode).ToList()).argmax(-1).data<long>().ToArray();
        var right = asked.Where((f, i) => argmax[i] == FirstObjectToken(lm.Tokenizer, f.Object)).ToHashSet();
        return candidates.Where(f => right.Contains(f) && corpus.Neighbours(f).Count(right.Contains) >= neighbours)
            .DistinctBy(f => f.Subject).Take(count)
            .Select(f => new FactExample(corpus.Prompts(f).First(p => p.Trained).Prompt, f.Subject, f.Object, corpus.NaturalCounterfactual(f)!)).ToList();
    }

    /// <summary>
    /// Recall template by template (every [Y]-final template of every relation, over the relation's facts): a held-out
    /// template is mostly learned for all of its facts or for none, so the held-out figure moves a template at a time.
    /// </summary>
    public static List<TemplateRecall> ByTemplate(LanguageModel lm, FactCorpus corpus, CancellationToken cancel = default) =>
        corpus.Relations.SelectMany(r => r.PromptTemplates().Select(t => new TemplateRecall(r.Relation, t.Template, t.Trained,
                Score(lm, t.Template, corpus.Facts.Where(f => f.Relation == r.Relation)
                    .Select(f => (RelationTemplates.Prompt(t.Template, f.Subject), f.Object)).ToList(), cancel))))
            .ToList();

    public static RecallReport Measure(LanguageModel lm, FactCorpus corpus, string? dataFolder, int unseenSample = 500, int seed = 0, CancellationToken cancel = default)
    {
        var trained = new List<(string, string)>();
        var heldOut = new List<(string, string)>();
        foreach (var fact in corpus.Facts)
            foreach (var (prompt, isTrained) in corpus.Prompts(fact))
                (isTrained ? trained : heldOut).Add((prompt, fact.Object));

        var unseen = new List<(string, string)>();
        var factsDir = dataFolder is null ? null : Path.Combine(dataFolder, "pararel", "facts");
        if (factsDir is not null && Directory.Exists(factsDir))
        {
            var known = corpus.Facts.Select(f => f.Subject).ToHashSet();
            var random = new Random(seed);
            var candidates = corpus.Relations.SelectMany(r =>
                File.ReadLines(Path.Combine(factsDir, r.Relation + ".jsonl"))
                    .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement)
                    .Select(e => new Fact(e.GetProperty("sub_label").GetString()!, r.Relation, e.GetProperty("obj_label").GetString()!))
                    .Where(f => !known.Contains(f.Subject))).OrderBy(_ => random.Next()).Take(unseenSample);
            foreach (var f in candidates)
                unseen.Add((corpus.Prompts(f).First(p => p.Trained).Prompt, f.Object));
        }

        // Chance: always answering the relation's most common object in the corpus.
        var majority = corpus.Facts.GroupBy(f => f.Relation).ToDictionary(g => g.Key, g => g.GroupBy(f => f.Object).MaxBy(o => o.Count())!.Count() / (double)g.Count());
        var chance = (int)Math.Round(corpus.Facts.Sum(f => majority[f.Relation]));

        return new RecallReport(
            Score(lm, "trained facts, trained templates", trained, cancel),
            Score(lm, "trained facts, held-out templates", heldOut, cancel),
            Score(lm, "unseen ParaRel facts, trained templates", unseen, cancel),
            new RecallScore("majority-object baseline", chance, corpus.Facts.Count));
    }
}
