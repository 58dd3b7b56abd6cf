namespace Rome.Tests;

public class CounterFactDatasetTests
{
    private const string Original = """
    [{"case_id": 0, "pararel_idx": 2796,
      "requested_rewrite": {"prompt": "The mother tongue of {} is", "relation_id": "P103",
        "target_new": {"str": "English", "id": "Q1860"}, "target_true": {"str": "French", "id": "Q150"}, "subject": "Danielle Darrieux"},
      "paraphrase_prompts": ["Shayna does this and Yossel goes still and dies. Danielle Darrieux, a native"],
      "neighborhood_prompts": ["The mother tongue of Léon Blum is", "The native language of Montesquieu is"],
      "attribute_prompts": ["J. R. R. Tolkien is a native speaker of"],
      "generation_prompts": ["Danielle Darrieux's mother tongue is"]}]
    """;

    [Fact]
    public void LoadsTheOriginalFormat()
    {
        var file = Path.Combine(TestPaths.TempFolder(), "counterfact.json");
        File.WriteAllText(file, Original);
        var c = Assert.Single(CounterFactDataset.Load(file));
        Assert.Equal("The mother tongue of Danielle Darrieux is", c.RewritePrompt);
        Assert.Equal("English", c.Rewrite.TargetNew.Str);
        Assert.Equal("Q150", c.Rewrite.TargetTrue.Id);
        Assert.Equal(2, c.NeighborhoodPrompts.Length);
        Assert.Null(c.HeldOutParaphrases);
        File.WriteAllText(file, "[{\"case_id\": 1}]");
        Assert.Throws<RomeException>(() => CounterFactDataset.Load(file));
    }

    [Fact]
    public void TheBuilderFollowsThePapersRecipe()
    {
        var corpus = FactCorpus.ForModel(TestPaths.BundledModel)!;
        var cases = CounterFactDataset.Build(corpus, 1000, seed: 3);
        Assert.Equal(1000, cases.Count);
        Assert.Equal(cases.Select(c => c.RewritePrompt), CounterFactDataset.Build(corpus, 1000, seed: 3).Select(c => c.RewritePrompt));
        var facts = corpus.Facts.ToDictionary(f => (f.Subject, f.Relation), f => f.Object);
        foreach (var c in cases.Take(200))
        {
            var r = c.Rewrite;
            Assert.Equal(facts[(r.Subject, r.RelationId)], r.TargetTrue.Str);
            Assert.NotEqual(r.TargetTrue.Str, r.TargetNew.Str);
            Assert.Contains(corpus.Facts, f => f.Relation == r.RelationId && f.Object == r.TargetNew.Str);
            Assert.All(c.NeighborhoodPrompts, p => Assert.Contains(corpus.Facts, f => f.Relation == r.RelationId && f.Object == r.TargetTrue.Str && f.Subject != r.Subject && p.Contains(f.Subject)));
            Assert.All(c.AttributePrompts, p => Assert.Contains(corpus.Facts, f => f.Relation == r.RelationId && f.Object == r.TargetNew.Str && p.Contains(f.Subject)));
            Assert.All(c.ParaphrasePrompts, p => Assert.Contains(r.Subject, p));
            Assert.Contains(true, c.HeldOutParaphrases!);
        }
    }
}
