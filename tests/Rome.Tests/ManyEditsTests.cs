namespace Rome.Tests;

/// <summary>MEMIT, AlphaEdit and r-ROME on the bundled model, with its settings and real key statistics.</summary>
[Trait("Speed", "Slow")] // batches of real edits on the bundled model
public class ManyEditsTests(BundledModelFixture fixture) : IClassFixture<BundledModelFixture>
{
    private readonly LanguageModel _lm = fixture.Model;
    private readonly MemitHyperParameters _memit = MemitHyperParameters.ForModel(TestPaths.BundledModel, fixture.Model.Config);
    private Editors Editors() => new(_lm, fixture.HyperParameters, _memit, fixture.Covariances);

    /// <summary>Five facts the model knows, each rewritten to another object of its relation.</summary>
    private List<EditRequest> FiveFacts() => CounterFactDataset.Load(Path.Combine(TestPaths.BundledModel, "counterfact.json")).Take(5)
        .Select(c => new EditRequest(c.Rewrite.Prompt, c.Rewrite.Subject, c.Rewrite.TargetNew.Str, c.Rewrite.TargetTrue.Str)).ToList();

    private string Top(string prompt, Interventions iv)
    {
        using var logProbs = _lm.NextTokenLogProbs(_lm.Encode(prompt), iv);
        return _lm.Tokenizer.TokenText((int)logProbs.argmax().item<long>()).Trim();
    }

    [Fact]
    public void MemitWritesABatchAsOneEntryOfLowRankChanges_ThatUndoTakesBack()
    {
        var facts = FiveFacts();
        using var session = new EditSession(_lm);
        const string unrelated = "Tycho Brahe worked in";
        var unrelatedBefore = Top(unrelated, session.Interventions());

        var outcome = BatchWorkflow.Run(session, Editors(), "memit", facts);

        var entry = Assert.Single(session.Edits);
        Assert.Equal(facts, entry.Requests);
        Assert.Equal(_memit.Layers, entry.Layers);
        Assert.All(entry.Overlays, o => Assert.Equal(facts.Count, o.Rank));   // rank ≤ the batch's size, stored as factors
        Assert.Equal(facts.Count, outcome.Took);
        Assert.All(facts, f => Assert.StartsWith(Top(f.Filled, session.Interventions()), f.Target));
        Assert.Equal(unrelatedBefore, Top(unrelated, session.Interventions()));

        session.Undo();
        Assert.All(facts, f => Assert.Equal(f.OldTarget!.Split(' ')[0], Top(f.Filled, session.Interventions())));
    }

    [Fact]
    public void EachMemitLayerSolvesItsLeastSquaresProblem()
    {
        // ΔW = R Kᵀ (λC + K Kᵀ)⁻¹, stored as U = (λC + K Kᵀ)⁻¹ K and V = R: so (λC + K Kᵀ) U = K at each layer, with K
        // the keys on the model as the layers below leave it.
        var facts = FiveFacts();
        using var entry = new MemitEditor(_lm, _memit).Compute(facts, l => fixture.Covariances.Get(_lm, l, _memit.CovarianceTokens));
        var templates = entry.ContextTemplates;
        for (int i = 0; i < _memit.Layers.Length; i++)
        {
            using var scope = NewDisposeScope();
            var k = ComputeKs.Keys(_lm, _memit.Layers[i], facts, templates, ContextTemplates.GroupSizes(_memit.ContextTemplateLengthParams), entry.Overlays.Take(i).ToList());
            var c = fixture.Covariances.Get(_lm, _memit.Layers[i], _memit.CovarianceTokens);
            var lhs = (c * _memit.MomentUpdateWeight + k.matmul(k.t())).matmul(entry.Overlays[i].U.to(float64));
            Assert.True(lhs.allclose(k, rtol: 1e-3, atol: 1e-4 * k.abs().max().item<double>()), $"layer {_memit.Layers[i]}");
        }
    }

    [Fact]
    public void AlphaEditLeavesThePreservedKeysAlone_AndItsCacheFollowsTheStack()
    {
        var facts = FiveFacts();
        var editors = Editors();
        using var session = new EditSession(_lm);
        BatchWorkflow.Run(session, editors, "alphaedit", facts[..3]);
        var first = Assert.Single(session.Edits);
        Assert.Equal(_memit.Layers.Length, first.Keys.Count);
        Assert.All(first.Keys, k => Assert.Equal([_lm.Config.Inner, 3L], k.shape));

        // The update lies in P's range, so a key in the span of C's large singular directions gets no change.
        for (int i = 0; i < _memit.Layers.Length; i++)
        {
            using var scope = NewDisposeScope();
            var c = fixture.Covariances.Get(_lm, _memit.Layers[i], _memit.CovarianceTokens);
            var (u, s, _) = linalg.svd(c, fullMatrices: false);
            var preserved = u[.., ..8].t();   // the eight directions the layer's keys use most
            var change = preserved.matmul(first.Overlays[i].Dense().to(float64));
            var edit = first.Overlays[i].Dense().to(float64).norm().item<double>();
            Assert.True(change.norm().item<double>() < 1e-3 * edit, $"layer {_memit.Layers[i]}: {change.norm().item<double>()} of {edit}");
        }

        // A second batch solves against the first's keys (cache_c); after undoing the first, against none.
        using var withCache = editors.Write("alphaedit", facts[3..], session.Edits);
        session.Undo();
        using var withoutCache = editors.Write("alphaedit", facts[3..], session.Edits);
        Assert.False(withCache.Overlays[0].U.allclose(withoutCache.Overlays[0].U, rtol: 1e-3, atol: 1e-6));
    }

    [Fact]
    public void RRomeUsesOneKey_TheAveragedOne_AndStillWrites()
    {
        var request = FiveFacts()[0];
        var editors = Editors();
        using var rome = editors.Write("rome", [request], []);
        using var rRome = editors.Write("r-rome", [request], []);
        Assert.Equal("r-rome", rRome.Method);
        // Same u = C⁻¹k*, another scale and value: (v* − v̄)/(uᵀk*) against (v* − v0)/(uᵀk).
        using var cosine = nn.functional.cosine_similarity(rome.Overlays[0].U.flatten(), rRome.Overlays[0].U.flatten(), 0);
        Assert.True(cosine.item<float>() > 0.9999f);
        Assert.False(rome.Overlays[0].V.allclose(rRome.Overlays[0].V, rtol: 1e-3, atol: 1e-5));
        Assert.StartsWith(Top(request.Filled, new Interventions { Overlays = rRome.Overlays }), request.Target);
    }

    [Fact]
    public void ABatchThatFailsOrIsCancelledLeavesTheSessionAsItWas()
    {
        var facts = FiveFacts();
        using var session = new EditSession(_lm);
        var bad = facts.Take(2).Append(new EditRequest("{} plays for", string.Join(" ", Enumerable.Repeat("Nobody", 60)), "Chelsea")).ToList();
        var refused = Assert.Throws<RomeException>(() => BatchWorkflow.Run(session, Editors(), "memit", bad));
        Assert.StartsWith("Fact 3 (", refused.Message);
        Assert.Empty(session.Edits);

        using var cancel = new CancellationTokenSource();
        var progress = new SyncProgress<BatchProgress>(p => { if (p.Done == 2) cancel.Cancel(); });
        Assert.ThrowsAny<OperationCanceledException>(() => BatchWorkflow.Run(session, Editors(), "rome", facts, batchSize: 1, progress: progress, cancel: cancel.Token));
        Assert.Empty(session.Edits);
    }

    [Fact]
    public void ABatchWithItsKeysSurvivesExportAndImport()
    {
        var facts = FiveFacts()[..2];
        using var session = new EditSession(_lm);
        BatchWorkflow.Run(session, Editors(), "alphaedit", facts);
        var path = Path.Combine(Path.GetTempPath(), $"rome-batch-{Guid.NewGuid():N}.safetensors");
        try
        {
            session.Export(path);
            using var other = new EditSession(_lm);
            Assert.Equal(1, other.Import(path));
            var (a, b) = (session.Edits[0], other.Edits[0]);
            Assert.Equal("alphaedit", b.Method);
            Assert.Equal(a.Requests, b.Requests);
            Assert.Equal(a.Layers, b.Layers);
            Assert.All(a.Overlays.Zip(b.Overlays), p => Assert.True(p.First.U.allclose(p.Second.U, 0, 0) && p.First.V.allclose(p.Second.V, 0, 0)));
            Assert.All(a.Keys.Zip(b.Keys), p => Assert.True(p.First.allclose(p.Second, 0, 0)));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public async Task TheCliWritesARequestsFileAndReportsEachFact()
    {
        var path = Path.Combine(Path.GetTempPath(), $"rome-requests-{Guid.NewGuid():N}.csv");
        File.WriteAllText(path, "prompt,subject,target\n{} is located in,Nintendo,Germany\n\"{}, founded in\",Chanel,Milan\n");
        try
        {
            var (exit, output, error) = await TestPaths.RunCli("edit", "--method", "memit", "--requests", path, "--json");
            Assert.True(exit == 0, error);
            using var json = System.Text.Json.JsonDocument.Parse(output);
            var facts = json.RootElement.GetProperty("facts").EnumerateArray().ToList();
            Assert.Equal(2, facts.Count);
            Assert.All(facts, f => Assert.True(f.GetProperty("after").GetDouble() > f.GetProperty("before").GetDouble()));
            Assert.Equal(_memit.Layers, json.RootElement.GetProperty("layers").EnumerateArray().Select(l => l.GetInt32()));
            Assert.Equal(6, json.RootElement.GetProperty("contextTemplates").GetArrayLength());

            File.WriteAllText(path, "prompt,subject,target\n{} is located in,Nintendo,\n");
            (exit, _, error) = await TestPaths.RunCli("edit", "--method", "memit", "--requests", path);
            Assert.Equal(2, exit);
            Assert.Contains("row 1: the new target is empty", error);
        }
        finally { File.Delete(path); }
    }
}
