namespace Rome.Tests;

/// <summary>ROME on the bundled model, with its hyper-parameters and real covariance statistics.</summary>
[Trait("Speed", "Slow")] // ROME on the bundled model with its real settings
public class BundledEditTests(BundledModelFixture fixture) : IClassFixture<BundledModelFixture>
{
    private readonly LanguageModel _lm = fixture.Model;
    private readonly FactCorpus _facts = fixture.Facts;
    private readonly RomeHyperParameters _hp = fixture.HyperParameters;

    private Tensor Covariance() => fixture.Covariances.ForEditor(_lm, _hp)!;

    private int Top(string prompt, Interventions iv)
    {
        using var logProbs = _lm.NextTokenLogProbs(_lm.Encode(prompt), iv);
        return (int)logProbs.argmax().item<long>();
    }

    private int First(string obj) => Recall.FirstObjectToken(_lm.Tokenizer, obj);

    [Fact]
    public void AnEditWinsOnItsPromptAndATrainedParaphrase_LeavesAnUnrelatedFact_AndUndoIsExact()
    {
        var fact = _facts.Facts.Single(f => f.Subject == "Nintendo" && f.Relation == "P17");
        var request = new EditRequest("{} is located in", fact.Subject, "Germany", fact.Object);
        var paraphrases = _facts.ByRelation["P17"].Trained.Where(RelationTemplates.EndsWithObject)
            .Select(t => RelationTemplates.Prompt(t, fact.Subject)).Where(p => p != request.Filled).ToList();
        const string unrelated = "Tycho Brahe worked in";
        using var session = new EditSession(_lm);
        using var before = _lm.NextTokenLogProbs(_lm.Encode(request.Filled));
        Assert.Equal(First(fact.Object), Top(request.Filled, session.Interventions()));
        var unrelatedBefore = Top(unrelated, session.Interventions());

        session.Apply(new RomeEditor(_lm, _hp), request, Covariance());

        Assert.Equal(First("Germany"), Top(request.Filled, session.Interventions()));
        Assert.Contains(paraphrases, p => Top(p, session.Interventions()) == First("Germany"));
        Assert.Equal(unrelatedBefore, Top(unrelated, session.Interventions()));

        session.Undo();
        using var undone = _lm.NextTokenLogProbs(_lm.Encode(request.Filled), session.Interventions());
        Assert.True(undone.eq(before).all().item<bool>());
    }

    [Fact]
    public void SequentialEditsOnDifferentFactsAllHold()
    {
        var requests = new[]
        {
            new EditRequest("{} is located in", "Nintendo", "Germany"),
            new EditRequest("The domain of work of {} is", "Tycho Brahe", "biology"),
            new EditRequest("{} is located in the continent", "Paris", "Asia"),
        };
        using var session = new EditSession(_lm);
        var editor = new RomeEditor(_lm, _hp);
        var c = Covariance();
        foreach (var r in requests) session.Apply(editor, r, c);
        var misses = requests.Where(r => Top(r.Filled, session.Interventions()) != First(r.Target))
            .Select(r => $"{r.Filled} -> {_lm.Tokenizer.TokenText(Top(r.Filled, session.Interventions()))}").ToList();
        Assert.True(misses.Count == 0, string.Join("; ", misses));
    }
}
