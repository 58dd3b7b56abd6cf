using Rome.Model;
using Rome.Model.Editing;
using Rome.Model.Evaluation;
using Rome.Model.Modeling;
using Rome.Model.Training;
using static TorchSharp.torch;

namespace Rome.Tests;

public class CounterFactMetricTests
{
    [Fact]
    public void ComparisonsAndTheHarmonicMeanMatchHandComputedValues()
    {
        var (success, magnitude) = CounterFactMetrics.Compare([1, 3], [2, 2]);
        Assert.Equal(0.5, success);
        Assert.Equal(((Math.Exp(-1) - Math.Exp(-2)) + (Math.Exp(-3) - Math.Exp(-2))) / 2, magnitude, 12);
        Assert.Equal(60, CounterFactMetrics.HarmonicMean(100, 50, 50), 10);
        Assert.Equal(0, CounterFactMetrics.HarmonicMean(100, 0, 50));
    }

    [Fact]
    public void SummaryAveragesPerCaseThenOverCases_Times100()
    {
        var cases = new[]
        {
            new CaseScores(0, 1, 0.5, 1, 0.2, 0.5, 0.1, 1, null, 4.0, 0.2),
            new CaseScores(1, 0, -0.5, 0.5, 0.0, 1, 0.3, 0, null, 5.0, 0.4),
        };
        var s = CounterFactMetrics.Summarise("rome", cases);
        Assert.Equal(50, s.ES, 10);
        Assert.Equal(75, s.PS, 10);
        Assert.Equal(75, s.NS, 10);
        Assert.Equal(0, s.EM, 10);
        Assert.Equal(CounterFactMetrics.HarmonicMean(50, 75, 75), s.S, 10);
        Assert.Equal(450, s.GE!.Value, 10);   // x100 like every other metric, as summarize.py does
        Assert.Equal(30, s.RS!.Value, 10);
        Assert.Null(s.PSHeldOut);
    }

    [Fact]
    public void NGramEntropyMatchesAHandComputation()
    {
        // "a b a b": bigrams {ab: 2, ba: 1} -> H2 = 0.9183 bits; trigrams {aba, bab} -> H3 = 1 bit.
        var h2 = -(2 / 3.0 * Math.Log2(2 / 3.0) + 1 / 3.0 * Math.Log2(1 / 3.0));
        Assert.Equal((2.0 / 3 * h2 + 4.0 / 3 * 1) / 2, CounterFactMetrics.NGramEntropy("a b a b"), 10);
        Assert.Equal(0, CounterFactMetrics.NGramEntropy("word"));
    }

    [Fact]
    public void ConsistencyComparesWithTextsAboutTheSameRelationAndObject()
    {
        var corpus = new FactCorpus
        {
            Relations = [new("P17", ["[X] is located in [Y] ."], []), new("P1412", ["[X] speaks [Y] ."], [])],
            Facts = [new("Kyoto", "P17", "Japan"), new("Osaka", "P17", "Japan"), new("Taro Aso", "P1412", "Japan"), new("Lyon", "P17", "France")],
        };
        var (tfidf, reference) = CounterFactMetrics.ConsistencyReference(corpus);
        Assert.Equal("Kyoto is located in Japan. Osaka is located in Japan.", reference("P17", "Japan"));   // not Taro Aso's
        Assert.Equal("Taro Aso speaks Japan.", reference("P1412", "Japan"));
        Assert.True(tfidf.Similarity("Kyoto and Osaka", reference("P17", "Japan")) > tfidf.Similarity("Kyoto and Osaka", reference("P1412", "Japan")));
    }

    [Fact]
    public void TfIdfMatchesScikitLearnsDefaults()
    {
        // Fitted on three documents; "a" is one character, so scikit-learn's token pattern drops it.
        // Tokens: {the, cat, sat}, {the, dog, sat, down}, {cat}: n = 3, df(the) = df(cat) = df(sat) = 2, df(dog) = df(down) = 1.
        var tfidf = new TfIdf(["The cat sat.", "the dog sat down", "a cat"]);
        var idf2 = Math.Log(4.0 / 3) + 1;   // smooth IDF ln((1+n)/(1+df)) + 1 with df = 2
        var idf1 = Math.Log(4.0 / 2) + 1;   // df = 1

        // "the cat" = (idf2, idf2) / norm; "a zebra cat" = (cat) alone: "a" is too short, "zebra" is outside the vocabulary.
        Assert.Equal(1 / Math.Sqrt(2), tfidf.Similarity("the cat", "a zebra cat"), 10);
        // Counts multiply the IDF: "dog dog sat" = (2 idf1, idf2); against "dog" alone the cosine is 2 idf1 / |(2 idf1, idf2)|.
        Assert.Equal(2 * idf1 / Math.Sqrt(4 * idf1 * idf1 + idf2 * idf2), tfidf.Similarity("dog dog sat", "dog"), 10);
        // Nothing in the vocabulary: a zero vector, similarity 0 (scikit-learn's cosine of a zero row is 0).
        Assert.Equal(0, tfidf.Similarity("a b c", "the cat"));
    }

    [Fact]
    public void TargetNllIsTheMeanPerTokenNegativeLogProbability()
    {
        using var lm = LanguageModel.Load(TestPaths.Fixture("gpt2-random"));
        var nll = CounterFactMetrics.TargetNll(lm, ["The capital of France is", "Hello"], "Saint Petersburg", Interventions.None);
        var target = lm.Tokenizer.Encode(" Saint Petersburg");
        var ids = lm.Encode("The capital of France is").ToList();
        double sum = 0;
        foreach (var t in target)
        {
            using var lp = lm.NextTokenLogProbs(ids);
            sum -= lp[t].item<float>();
            ids.Add(t);
        }
        Assert.Equal(sum / target.Length, nll[0], 4);
        Assert.Equal(2, nll.Length);
    }

    [Fact]
    public void TheEditPageAndCounterFactReportOneProbability_LabelledPerTokenForLongTargets()
    {
        using var lm = LanguageModel.Load(TestPaths.Fixture("gpt2-random"));
        var request = new EditRequest("{} is in", "France", "Saint Petersburg", "Paris");
        var prompts = new List<(string, string)> { ("prompt", request.Filled), ("neighbour", "Spain is in") };
        var report = EditComparison.Measure(lm, Interventions.None, request, prompts, generationTokens: 2);
        var nll = CounterFactMetrics.TargetNll(lm, [request.Filled, "Spain is in"], "Saint Petersburg", Interventions.None);
        Assert.Equal(Math.Exp(-nll[0]), report.Prompts[0].NewTarget, 10);
        Assert.Equal(Math.Exp(-nll[1]), report.Prompts[1].NewTarget, 10);
        Assert.Equal("p(Saint Petersburg) per token", report.NewLabel);   // two tokens: the geometric mean per token
        Assert.Equal("p(Paris)", report.OldLabel);                         // one token: its probability
        using var logProbs = lm.NextTokenLogProbs(lm.Encode(request.Filled));
        Assert.Equal(Math.Exp(logProbs[lm.Tokenizer.Encode(" Paris")[0]].item<float>()), report.Prompts[0].OldTarget!.Value, 5);
    }
}

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

public class CounterFactEvaluatorTests : IDisposable
{
    private readonly LanguageModel _lm = LanguageModel.Load(TestPaths.BundledModel);
    private readonly RomeHyperParameters _hp = RomeHyperParameters.Load(TestPaths.BundledHyperParameters) with { Covariance = "identity", Steps = 10 };
    public void Dispose() => _lm.Dispose();

    private List<CounterFactCase> Cases(int n) => CounterFactDataset.Build(FactCorpus.ForModel(TestPaths.BundledModel)!, n, seed: 5);

    [Fact]
    public void TheModelFolderCarriesItsBaselineSettings()
    {
        // The bundled model's rome-hparams.json, and the originals' for GPT-2 XL.
        Assert.Equal((5e-3, 0.2), (_hp.FineTuneConstraint, _hp.KnowledgeNeuronsScale));
        Assert.Equal((5e-4, 2.0), (RomeHyperParameters.Gpt2Xl.FineTuneConstraint, RomeHyperParameters.Gpt2Xl.KnowledgeNeuronsScale));
        var evaluator = new CounterFactEvaluator(_lm, _hp, covariance: null);
        Assert.Equal((5e-3, 0.2), (evaluator.FineTuneConstraint, evaluator.KnowledgeNeurons.Scale));
    }

    [Fact]
    public void CasesDoNotLeakEdits()
    {
        var evaluator = new CounterFactEvaluator(_lm, _hp, covariance: null, generations: false);
        var c = Cases(1)[0];
        var fresh = evaluator.Evaluate(c, "none");
        var edited = evaluator.Evaluate(c, "rome");
        var after = evaluator.Evaluate(c, "none");
        Assert.Equal(fresh, after);
        Assert.True(edited.EM > fresh.EM, "the edit must raise P(new) - P(true) on its own prompt");
    }

    [Fact]
    public void AnInterruptedRunResumesWhereItStopped()
    {
        var evaluator = new CounterFactEvaluator(_lm, _hp, covariance: null, generations: false);
        var cases = Cases(3);
        var file = Path.Combine(TestPaths.TempFolder(), "cases.jsonl");
        using (var cancel = new CancellationTokenSource())
        {
            var progress = new SyncProgress<EvaluationProgress>(p => { if (p.Done == 1) cancel.Cancel(); });
            Assert.ThrowsAny<OperationCanceledException>(() => evaluator.Run(cases, "none", file, progress, cancel.Token));
        }
        File.AppendAllText(file, "{\"CaseId\": 9, \"ES\""); // a torn line, as a kill mid-write leaves
        Assert.Single(CounterFactEvaluator.ReadResults(file));
        var evaluated = new List<int>();
        var results = evaluator.Run(cases, "none", file, new SyncProgress<EvaluationProgress>(p => evaluated.Add(p.Done)));
        Assert.Equal(cases.Select(c => c.CaseId), results.Select(r => r.CaseId));
        Assert.Equal([2, 3], evaluated); // only the two missing cases ran
        Assert.Equal(3, CounterFactEvaluator.ReadResults(file).Count); // and a later resume reads them all back
    }
}

public class FineTuneTests : IDisposable
{
    private readonly LanguageModel _lm = LanguageModel.Load(TestPaths.BundledModel);
    public void Dispose() => _lm.Dispose();

    [Fact]
    public void FineTuningRaisesTheTarget_AndFtLStaysInsideItsBound()
    {
        var layer = RomeHyperParameters.Load(TestPaths.BundledHyperParameters).Layer; // the layer ROME edits
        var request = new EditRequest("{} is located in", "Nintendo", "Germany");
        var germany = _lm.Tokenizer.Encode(" Germany")[0];
        using var before = _lm.NextTokenLogProbs(_lm.Encode(request.Filled));

        var ft = Rome.Model.Evaluation.Baselines.FineTune.Compute(_lm, request, new() { Layer = layer });
        using var afterFt = _lm.NextTokenLogProbs(_lm.Encode(request.Filled), new Interventions { Overlays = [ft] });
        Assert.Equal(germany, (int)afterFt.argmax().item<long>());

        var ftl = Rome.Model.Evaluation.Baselines.FineTune.Compute(_lm, request, new() { Layer = layer, NormConstraint = 1e-3 });
        Assert.True(ftl.Delta.abs().max().item<float>() <= 1e-3 + 1e-9, "FT+L must keep every weight within ε");
        using var afterFtl = _lm.NextTokenLogProbs(_lm.Encode(request.Filled), new Interventions { Overlays = [ftl] });
        Assert.True(afterFtl[germany].item<float>() > before[germany].item<float>());

        // Overlays leave the shared weights alone.
        using var again = _lm.NextTokenLogProbs(_lm.Encode(request.Filled));
        Assert.True(again.eq(before).all().item<bool>());
        ft.Delta.Dispose();
        ftl.Delta.Dispose();
    }
}

public class KnowledgeNeuronsTests : IDisposable
{
    private readonly LanguageModel _lm = LanguageModel.Load(TestPaths.BundledModel);
    public void Dispose() => _lm.Dispose();

    [Fact]
    public void AttributionsOfALayerAddUpToTheEffectOfItsKey()
    {
        // Integrated gradients are complete: over one layer, the attributions sum to p(answer) with the key at the
        // last token as it is, minus p(answer) with that key zeroed.
        const string prompt = "Nintendo is located in";
        var japan = _lm.Tokenizer.Encode(" Japan")[0];
        using var scores = Rome.Model.Evaluation.Baselines.KnowledgeNeurons.Attribution(_lm, prompt, japan, steps: 600);   // a Riemann sum: its error falls as 1/steps
        Assert.Equal([_lm.Layers, _lm.Config.Inner], scores.shape);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ids = _lm.Ids(_lm.Encode(prompt));
        var p1 = _lm.Model.Forward(ids)[0, -1].softmax(-1)[japan].item<float>();
        for (int layer = 0; layer < _lm.Layers; layer++)
        {
            var zeroed = new Interventions().Hook(HookPoint.MlpKey(layer), x => { var y = x.clone(); y[.., -1] = 0; return y; });
            var p0 = _lm.Model.Forward(ids, zeroed)[0, -1].softmax(-1)[japan].item<float>();
            var sum = scores[layer].sum().item<float>();
            Assert.True(Math.Abs(sum - (p1 - p0)) < 0.03 * Math.Abs(p1 - p0) + 2e-3, $"layer {layer}: attributions sum to {sum}, the key's effect is {p1 - p0}");
        }
    }

    [Fact]
    public void TheEditWritesTheNewObjectIntoTheNeuronsFound_AndLeavesTheWeightsAlone()
    {
        var request = new Rome.Model.Editing.EditRequest("{} is located in", "Nintendo", "Germany", "Japan");
        var germany = _lm.Tokenizer.Encode(" Germany")[0];
        using var before = _lm.NextTokenLogProbs(_lm.Encode(request.Filled));
        var templates = new Rome.Model.Editing.RomeEditor(_lm, Rome.Model.Editing.RomeHyperParameters.Load(TestPaths.BundledHyperParameters)).ContextTemplates();
        var (neurons, overlays) = Rome.Model.Evaluation.Baselines.KnowledgeNeurons.Compute(_lm, request, templates, new());
        Assert.NotEmpty(neurons);
        Assert.Equal(neurons.Select(n => n.Layer).Distinct().Count(), overlays.Count);
        foreach (var o in overlays) // only the neurons' rows change
        {
            var layer = int.Parse(o.Module.Split('.')[1]);
            var rows = o.Delta.abs().sum([1]).gt(0).nonzero().view(-1).data<long>().Select(r => (int)r);
            Assert.Equal(neurons.Where(n => n.Layer == layer).Select(n => n.Neuron), rows);
        }
        using var after = _lm.NextTokenLogProbs(_lm.Encode(request.Filled), new Interventions { Overlays = overlays });
        Assert.True(after[germany].item<float>() > before[germany].item<float>(), "the edit must raise the new object");
        using var again = _lm.NextTokenLogProbs(_lm.Encode(request.Filled));
        Assert.True(again.eq(before).all().item<bool>());
        foreach (var o in overlays) o.Delta.Dispose();
    }
}
