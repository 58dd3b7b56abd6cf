using System.Text.Json;
using System.Text.Json.Serialization;
using Rome.Model.Facts;

namespace Rome.Model.Evaluation;

public sealed record TargetString([property: JsonPropertyName("str")] string Str, [property: JsonPropertyName("id")] string Id);

public sealed record RequestedRewrite(
    [property: JsonPropertyName("prompt")] string Prompt,
    [property: JsonPropertyName("subject")] string Subject,
    [property: JsonPropertyName("relation_id")] string RelationId,
    [property: JsonPropertyName("target_new")] TargetString TargetNew,
    [property: JsonPropertyName("target_true")] TargetString TargetTrue);

/// <summary>
/// One CounterFact case, in the original JSON layout: a counterfactual rewrite, paraphrase prompts (should now give
/// the new object), neighbourhood prompts (other subjects: should keep the true object), attribute prompts (subjects
/// whose true object is the new one) and generation prompts. The bundled set adds which paraphrases used held-out
/// templates (<see cref="HeldOutParaphrases"/>), absent from the original.
/// </summary>
public sealed record CounterFactCase(
    [property: JsonPropertyName("case_id")] int CaseId,
    [property: JsonPropertyName("requested_rewrite")] RequestedRewrite Rewrite,
    [property: JsonPropertyName("paraphrase_prompts")] string[] ParaphrasePrompts,
    [property: JsonPropertyName("neighborhood_prompts")] string[] NeighborhoodPrompts,
    [property: JsonPropertyName("attribute_prompts")] string[] AttributePrompts,
    [property: JsonPropertyName("generation_prompts")] string[] GenerationPrompts)
{
    [JsonPropertyName("held_out_paraphrases")]
    public bool[]? HeldOutParaphrases { get; init; }

    /// <summary>The rewrite prompt with the subject filled in.</summary>
    public string RewritePrompt => Rewrite.Prompt.Replace("{}", Rewrite.Subject);
}

/// <summary>Loads the original CounterFact JSON as it is, and builds a CounterFact-format set for a model trained on a <see cref="FactCorpus"/>.</summary>
public static class CounterFactDataset
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static List<CounterFactCase> Load(string path)
    {
        if (!File.Exists(path)) throw new RomeException($"CounterFact file {path} not found.");
        try
        {
            var cases = JsonSerializer.Deserialize<List<CounterFactCase>>(File.ReadAllText(path), Json) ?? [];
            foreach (var c in cases)
                if (c.Rewrite is null || !c.Rewrite.Prompt.Contains("{}") || c.ParaphrasePrompts is null || c.NeighborhoodPrompts is null)
                    throw new RomeException($"{path}: case {c.CaseId} is not a CounterFact record (requested_rewrite with a {{}} prompt, paraphrase_prompts, neighborhood_prompts).");
            return cases;
        }
        catch (JsonException e) { throw new RomeException($"{path} is not CounterFact JSON: {e.Message}"); }
    }

    public static void Save(IEnumerable<CounterFactCase> cases, string path) =>
        AtomicFile.WriteText(path, JsonSerializer.Serialize(cases, Json));

    /// <summary>
    /// The paper's recipe on the model's own facts (seeded): for each fact, the counterfactual target is another object
    /// of the same relation; the rewrite prompt uses the relation's first trained [Y]-final template; paraphrase
    /// prompts use its other [Y]-final templates, trained and held-out (flagged); neighbourhood prompts are other
    /// subjects with the same relation and true object; attribute prompts are subjects whose true object is the new
    /// target; generation prompts are the subject's other relations' prompts and the bare subject.
    /// </summary>
    public static List<CounterFactCase> Build(FactCorpus corpus, int count, int seed = 0, int neighbours = 5)
    {
        var random = new Random(seed);
        var byRelation = corpus.Facts.GroupBy(f => f.Relation).ToDictionary(g => g.Key, g => g.ToList());
        var cases = new List<CounterFactCase>();
        foreach (var fact in corpus.Facts.OrderBy(_ => random.Next()))
        {
            if (cases.Count >= count) break;
            var relation = corpus.ByRelation[fact.Relation];
            var objects = byRelation[fact.Relation].Select(f => f.Object).Where(o => o != fact.Object).Distinct().OrderBy(o => o, StringComparer.Ordinal).ToList();
            var trained = relation.Trained.Where(RelationTemplates.EndsWithObject).Select(RelationTemplates.Prompt).ToList();
            var neighbourFacts = byRelation[fact.Relation].Where(f => f.Object == fact.Object && f.Subject != fact.Subject).ToList();
            if (objects.Count == 0 || trained.Count == 0 || neighbourFacts.Count == 0) continue;
            var newObject = objects[random.Next(objects.Count)];

            var rewriteTemplate = trained[0];
            var paraphrases = trained.Skip(1).Select(t => (t, false))
                .Concat(relation.HeldOut.Select(RelationTemplates.Prompt).Select(t => (t, true))).ToList();
            var neighbourPrompts = neighbourFacts.OrderBy(_ => random.Next()).Take(neighbours)
                .Select(f => rewriteTemplate.Replace("[X]", f.Subject)).ToArray();
            var attributePrompts = byRelation[fact.Relation].Where(f => f.Object == newObject).Take(neighbours)
                .Select(f => rewriteTemplate.Replace("[X]", f.Subject)).ToArray();
            var generation = corpus.Facts.Where(f => f.Subject == fact.Subject && f.Relation != fact.Relation)
                .Select(f => corpus.Prompts(f).First(p => p.Trained).Prompt).Prepend(fact.Subject).Take(4).ToArray();

            cases.Add(new CounterFactCase(
                cases.Count,
                new RequestedRewrite(rewriteTemplate.Replace("[X]", "{}"), fact.Subject, fact.Relation,
                    new TargetString(newObject, newObject), new TargetString(fact.Object, fact.Object)),
                paraphrases.Select(p => p.Item1.Replace("[X]", fact.Subject)).ToArray(),
                neighbourPrompts, attributePrompts, generation)
            { HeldOutParaphrases = paraphrases.Select(p => p.Item2).ToArray() });
        }
        if (cases.Count < count)
            throw new RomeException($"Only {cases.Count} facts have a counterfactual target, a template and a neighbour; asked for {count}.");
        return cases;
    }
}
