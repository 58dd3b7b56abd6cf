using System.Text.Json;
using Rome.Model.Tracing;

namespace Rome.Tests;

public class NoiseLevelTests
{
    [Theory]
    [InlineData("Infinity")]
    [InlineData("1e30s")]
    [InlineData("NaN")]
    [InlineData("-1")]
    [InlineData("0s")]
    [InlineData("1e300")]
    [InlineData("three")]
    public void NoiseThatCannotGiveFiniteProbabilitiesIsRefused(string text)
    {
        var error = Assert.Throws<RomeException>(() => NoiseLevel.Parse(text, () => 0.1));
        Assert.Contains("noise must be", error.Message);
    }

    [Fact]
    public void NoiseIsThreeSigmaOrAPlainNumber()
    {
        Assert.Equal(0.3, NoiseLevel.Parse("3s", () => 0.1), 12);
        Assert.Equal(0.25, NoiseLevel.Parse(" 0.25 ", () => throw new InvalidOperationException("σ is not needed")), 12);
    }

    [Fact]
    public void TabsTracingAtOnceShareTheFirstNoiseMeasurement()
    {
        // Several tabs' first traces on a fresh cache all measure σ and write it: none fails, and all agree.
        using var lm = LanguageModel.Load(TestPaths.BundledModel);
        var cache = TestPaths.TempFolder();
        try
        {
            var sigmas = Enumerable.Range(0, 8).AsParallel().WithDegreeOfParallelism(8)
                .Select(_ => NoiseLevel.SubjectStd(lm, cache, TestPaths.Data)).ToList();
            Assert.All(sigmas, s => Assert.Equal(sigmas[0], s, 12));
            Assert.Equal(sigmas[0], NoiseLevel.SubjectStd(lm, cache, TestPaths.Data), 12); // from the file now
            Assert.Empty(Directory.EnumerateFiles(cache, "*.partial", SearchOption.AllDirectories));
        }
        finally { Directory.Delete(cache, recursive: true); }
    }
}
