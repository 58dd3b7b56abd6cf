using Rome.Model;
using Rome.Model.Modeling;
using Rome.Model.Editing;
using Rome.Model.Tracing;
using Rome.Model.Training;

namespace Rome.Tests;

/// <summary>
/// The committed models/rome-middle (run k22): local attention in layers 0-3 and no MLP in blocks 0-1, so its
/// facts are looked up by MLP 2 at the subject's last token, a middle layer, as in GPT-2 XL.
/// </summary>
public sealed class MiddleModelTests : IDisposable
{
    private static readonly string Folder = Path.Combine(TestPaths.Root, "models", "rome-middle");
    private readonly LanguageModel _lm = LanguageModel.Load(Folder);
    private readonly FactCorpus _facts = FactCorpus.ForModel(Folder)!;

    public void Dispose() => _lm.Dispose();

    [Fact]
    public void ItsArchitectureLoadsAsTrained()
    {
        Assert.Equal([2, 2, 2, 2], _lm.Config.AttentionWindows);
        Assert.Equal([false, false, true, true, true, true, true, true], Enumerable.Range(0, _lm.Layers).Select(_lm.Model.HasMlp));
        var hp = RomeHyperParameters.Load(Path.Combine(Folder, RomeHyperParameters.FileName));
        Assert.Equal(2, hp.Layer);
        var request = new EditRequest("{} is located in", "Nintendo", "Germany");
        Assert.Contains("Layer 1 has no MLP", Assert.Throws<RomeException>(() => new RomeEditor(_lm, hp with { Layer = 1 }).Compute(request, null)).Message);
    }

    /// <summary>On a small fixed sample, with margin: the subject's MLPs peak at layers 2-3 (the window holding MLP 2), far above the last token's; attention at the last token peaks in the upper half.</summary>
    [Fact]
    public void KeepsFactsInAMiddleMlpAtTheSubject()
    {
        var sites = BundledModelTests.SampleSites(_lm, _facts);
        Assert.InRange(sites.MlpPeakLayer, 2, 3);
        Assert.True(sites.MlpPeak >= 0.15 && sites.MlpPeak > 3 * sites.LastTokenMlpAtPeak, sites.ToString());
        Assert.True(sites.AttnPeakLayer >= _lm.Layers / 2, sites.ToString());
    }

    /// <summary>The committed 100-fact measurement beside the model: severing the MLPs removes most of the early effect restored before MLP 2.</summary>
    [Fact]
    public void ItsAveragedTraceShowsTheSeveredDrop()
    {
        var file = AveragedTraceFile.Load(Folder)!;
        Assert.Equal(100, file.Result.Facts);
        var severed = file.Severed!;
        Assert.InRange(severed.MlpShareLost, 0.40, 0.52);
        Assert.True(severed.NoMlp[0] < 0.5 * severed.Plain[0] && severed.NoMlp[1] < 0.5 * severed.Plain[1]);
        Assert.True(severed.AttnShareLost < 0.15);
    }
}
