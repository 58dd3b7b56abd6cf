namespace Rome.Tests;

/// <summary>C is computed once and then kept: in memory by the cache that made it, and on disk for the next cache.</summary>
public class CovarianceReuseTests(BundledModelFixture fixture) : IClassFixture<BundledModelFixture>
{
    [Fact]
    public void OneCovarianceServesManyEdits_AndIsReadBackFromDisk()
    {
        var (lm, hp) = (fixture.Model, fixture.HyperParameters with { Steps = 3 });
        var c = fixture.Covariances.ForEditor(lm, hp)!;
        Assert.Same(c, fixture.Covariances.ForEditor(lm, hp));   // one tensor, shared by every edit
        var editor = new RomeEditor(lm, hp);
        // C outlives each edit's dispose scope: the second edit uses the same tensor, and both change the model.
        using (var first = editor.Compute(new EditRequest("{} is located in", "Nintendo", "Germany"), c)) Assert.True(first.Overlays[0].V.norm().item<float>() > 0);
        using (var second = editor.Compute(new EditRequest("{} is located in", "Toyota", "France"), c)) Assert.True(second.Overlays[0].V.norm().item<float>() > 0);
        Assert.False(c.IsInvalid);

        // A new cache (another process, or the CLI after the web app) reads the same C from its file.
        using var again = new CovarianceCache(TestPaths.CovarianceCacheFolder);
        var read = again.ForEditor(lm, hp)!;
        Assert.NotSame(c, read);
        Assert.True(read.allclose(c, 0, 0));
        // C = I when asked: no statistics at all.
        Assert.Null(again.ForEditor(lm, hp with { Covariance = "identity" }));
    }
}
