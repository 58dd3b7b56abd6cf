namespace Rome.Tests;

[Trait("Speed", "Slow")] // integrated gradients over every layer of the bundled model
public class KnowledgeNeuronsTests(BundledModelFixture fixture) : IClassFixture<BundledModelFixture>
{
    private readonly LanguageModel _lm = fixture.Model;

    [Fact]
    public void AttributionsOfALayerAddUpToTheEffectOfItsKey()
    {
        // Integrated gradients are complete: over one layer, the attributions sum to p(answer) with the key at the
        // last token as it is, minus p(answer) with that key zeroed.
        const string prompt = "Nintendo is located in";
        var japan = _lm.Tokenizer.Encode(" Japan")[0];
        using var scores = Rome.Model.Editing.Baselines.KnowledgeNeurons.Attribution(_lm, prompt, japan, steps: 200);   // a Riemann sum: its error falls as 1/steps
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
        var templates = Rome.Model.Editing.ContextTemplates.For(_lm, Rome.Model.Editing.RomeHyperParameters.Load(TestPaths.BundledHyperParameters));
        var (neurons, overlays) = Rome.Model.Editing.Baselines.KnowledgeNeurons.Compute(_lm, request, templates, new());
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
