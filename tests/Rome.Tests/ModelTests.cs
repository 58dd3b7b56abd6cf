namespace Rome.Tests;

/// <summary>Generation, hook points and overlays on the random fixture model.</summary>
public class ModelTests(RandomGpt2Fixture fixture) : IClassFixture<RandomGpt2Fixture>
{
    private readonly LanguageModel _lm = fixture.Model;
    private static readonly int[] Ids = [464, 3139, 286, 4881, 318];


    [Fact]
    public void GreedyGenerationWithTheCacheEqualsRecomputingEveryStep()
    {
        var g = TextGenerator.Generate(_lm, "The capital of France is", new GenerationOptions { MaxTokens = 12 });
        var ids = _lm.Encode("The capital of France is").ToList();
        for (int i = 0; i < g.Tokens.Length; i++)
        {
            using var logits = _lm.NextTokenLogProbs(ids);
            var next = (int)logits.argmax().item<long>();
            Assert.Equal(next, g.Tokens[i]);
            ids.Add(next);
        }
        Assert.Equal(12, g.Tokens.Length);
    }

    [Fact]
    public void TopKSamplingIsSeededAndStaysInTheTopK()
    {
        var o = new GenerationOptions { MaxTokens = 8, TopK = 5, Seed = 42 };
        var a = TextGenerator.Generate(_lm, "Hello world", o);
        var b = TextGenerator.Generate(_lm, "Hello world", o);
        var c = TextGenerator.Generate(_lm, "Hello world", o with { Seed = 7 });
        Assert.Equal(a.Tokens, b.Tokens);
        Assert.NotEqual(a.Tokens, c.Tokens);
        using var first = _lm.NextTokenLogProbs(_lm.Encode("Hello world"));
        var top5 = first.topk(5).indexes.data<long>().ToArray();
        Assert.Contains((long)a.Tokens[0], top5);
    }

    [Fact]
    public void ForwardFromALayerEqualsTheFullForward()
    {
        using var scope = NewDisposeScope();
        Tensor? resid0 = null;
        var full = _lm.Model.Forward(_lm.Ids(Ids), new Interventions().Capture(HookPoint.Resid(0), t => resid0 = t));
        var rest = _lm.Model.Forward(resid0!, startAtLayer: 1);
        Assert.True(full.allclose(rest, atol: 1e-5));
    }


    [Fact]
    public void ABlockOnLaterTokensWithACachedPrefixEqualsTheFullBlock_AndComputesOnlyTheOutputsAsked()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        Tensor? entering = null, leaving = null;
        using var cache = new KvCache(_lm.Layers);
        _lm.Model.Forward(_lm.Ids(Ids).expand(2, -1), new Interventions()
            .Capture(HookPoint.Resid(0), t => entering = t).Capture(HookPoint.Resid(1), t => leaving = t), cache);

        // Tokens 2.. of block 1, attending to tokens 0-1 from the cache: a batch of 4 repeats the cache's 2 rows.
        using var prefix = cache.Prefix(2);
        var later = _lm.Model.ForwardBlock(1, entering![.., 2..].repeat(2, 1, 1), packed: new PackedRuns(prefix));
        Assert.True(later.allclose(leaving![.., 2..].repeat(2, 1, 1), atol: 1e-5));

        // Only the last token, and an explicit causal mask, give the same numbers.
        var last = _lm.Model.ForwardBlock(1, entering![.., 2..], packed: new PackedRuns(prefix, Outputs: tensor(new long[] { 2 })));
        Assert.True(last.allclose(leaving![.., ^1..], atol: 1e-5));
        var mask = ones(3, 5, dtype: @bool).tril(2);
        Assert.True(_lm.Model.ForwardBlock(1, entering![.., 2..], packed: new PackedRuns(prefix, Mask: mask)).allclose(leaving![.., 2..], atol: 1e-5));

        // A cache that grows with generation cannot be handed to a lone block.
        Assert.Throws<ArgumentException>(() => _lm.Model.ForwardBlock(1, entering!, packed: new PackedRuns(cache)));
    }
    [Fact]
    public void PatchingAnActivationWithItsOwnValueChangesNothing_AndWithAnotherValueChangesLaterPositionsOnly()
    {
        using var scope = NewDisposeScope();
        Tensor? mlp = null;
        var clean = _lm.Model.Forward(_lm.Ids(Ids), new Interventions().Capture(HookPoint.Mlp(1), t => mlp = t));
        var same = _lm.Model.Forward(_lm.Ids(Ids), new Interventions().Patch(HookPoint.Mlp(1), [2], mlp![.., 2..3]));
        Assert.True(clean.allclose(same, atol: 1e-6));
        var other = _lm.Model.Forward(_lm.Ids(Ids), new Interventions().Patch(HookPoint.Mlp(1), [2], zeros(1, 1, _lm.Config.Embd)));
        Assert.True(clean[0, ..2].allclose(other[0, ..2], atol: 1e-6), "positions before the patch must not change");
        Assert.False(clean[0, 2..].allclose(other[0, 2..], atol: 1e-3), "positions from the patch on must change");
    }

    [Fact]
    public void ALowRankOverlayEqualsTheDenseWeightChange_AndLeavesTheWeightsAlone()
    {
        using var scope = NewDisposeScope();
        var layer = _lm.Model.Linear("h.1.mlp.c_proj");
        var before = layer.Weight.clone();
        var u = randn(_lm.Config.Inner, 3) * 0.1f;
        var v = randn(_lm.Config.Embd, 3);
        var overlay = new LowRankOverlay("h.1.mlp.c_proj", u, v);   // rank 3, as a batch of three facts makes
        var withOverlay = _lm.Model.Forward(_lm.Ids(Ids), new Interventions { Overlays = [overlay] });
        Assert.True(layer.Weight.eq(before).all().item<bool>(), "an overlay must not write to the weight");

        using (no_grad()) layer.Weight.add_(overlay.Dense());
        try
        {
            var dense = _lm.Model.Forward(_lm.Ids(Ids));
            Assert.True(withOverlay.allclose(dense, atol: 1e-4));
        }
        finally
        {
            using (no_grad()) layer.Weight.copy_(before);
        }
        var plain = _lm.Model.Forward(_lm.Ids(Ids));
        Assert.False(plain.allclose(withOverlay, atol: 1e-3));
    }

    [Fact]
    public void BatchedNextTokenScoresEqualOneAtATime()
    {
        var prompts = new[] { Ids, Ids[..2], new[] { 15496, 995, 11 } };
        using var batched = _lm.NextTokenLogProbs(prompts);
        for (int i = 0; i < prompts.Length; i++)
        {
            using var single = _lm.NextTokenLogProbs(prompts[i]);
            Assert.True(batched[i].allclose(single, atol: 1e-4));
        }
    }
}
