namespace Rome.Tests;

public class FineTuneTests(BundledModelFixture fixture) : IClassFixture<BundledModelFixture>
{
    private readonly LanguageModel _lm = fixture.Model;

    [Fact]
    public void FineTuningRaisesTheTarget_AndFtLStaysInsideItsBound()
    {
        var layer = RomeHyperParameters.Load(TestPaths.BundledHyperParameters).Layer; // the layer ROME edits
        var request = new EditRequest("{} is located in", "Nintendo", "Germany");
        var germany = _lm.Tokenizer.Encode(" Germany")[0];
        using var before = _lm.NextTokenLogProbs(_lm.Encode(request.Filled));

        var ft = Rome.Model.Editing.Baselines.FineTune.Compute(_lm, request, new() { Layer = layer });
        using var afterFt = _lm.NextTokenLogProbs(_lm.Encode(request.Filled), new Interventions { Overlays = [ft] });
        Assert.Equal(germany, (int)afterFt.argmax().item<long>());

        var ftl = Rome.Model.Editing.Baselines.FineTune.Compute(_lm, request, new() { Layer = layer, NormConstraint = 1e-3 });
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
