namespace Rome.Tests;

/// <summary>The committed models/rome-knowing with its facts and ROME settings, loaded once per test class.</summary>
public sealed class BundledModelFixture : IDisposable
{
    public LanguageModel Model { get; } = LanguageModel.Load(TestPaths.BundledModel);
    public FactCorpus Facts { get; } = FactCorpus.ForModel(TestPaths.BundledModel)!;
    public RomeHyperParameters HyperParameters { get; } = RomeHyperParameters.Load(TestPaths.BundledHyperParameters);
    /// <summary>C, kept where every test run finds it again (computing it takes seconds).</summary>
    public CovarianceCache Covariances { get; } = new(TestPaths.CovarianceCacheFolder);

    public void Dispose()
    {
        Covariances.Dispose();
        Model.Dispose();
    }
}

/// <summary>The tiny random GPT-2 fixture in exact Hugging Face layout, loaded once per test class.</summary>
public sealed class RandomGpt2Fixture : IDisposable
{
    public LanguageModel Model { get; } = LanguageModel.Load(TestPaths.Fixture("gpt2-random"));

    public void Dispose() => Model.Dispose();
}
