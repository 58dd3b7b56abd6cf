namespace Rome.Tests;

public class CounterFactEvaluatorTests(BundledModelFixture fixture) : IClassFixture<BundledModelFixture>
{
    private readonly LanguageModel _lm = fixture.Model;
    private readonly RomeHyperParameters _hp = RomeHyperParameters.Load(TestPaths.BundledHyperParameters) with { Covariance = "identity", Steps = 10 };

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
