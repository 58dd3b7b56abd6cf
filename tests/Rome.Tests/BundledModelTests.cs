using Rome.Model.Tracing;

namespace Rome.Tests;

/// <summary>The committed models/rome-knowing (trained from recipes/knowing.json): it loads as the default, knows its facts and keeps them where GPT-2 XL does.</summary>
[Trait("Speed", "Slow")] // averaged traces and recall over hundreds of facts
public class BundledModelTests(BundledModelFixture fixture) : IClassFixture<BundledModelFixture>
{
    private readonly LanguageModel _lm = fixture.Model;
    private readonly FactCorpus _facts = fixture.Facts;


    [Fact]
    public void IsTheConfiguredDefault()
    {
        var settings = Rome.Model.RomeSettings.FromFile(Path.Combine(TestPaths.Root, "appsettings.json"));
        Assert.Equal(Path.GetFullPath(TestPaths.BundledModel), settings.ModelFolder);
        Assert.True(_lm.Layers >= 8);
        Assert.True(new FileInfo(Path.Combine(TestPaths.BundledModel, "model.safetensors")).Length <= 40_000_000);
    }

    /// <summary>
    /// Local attention in layers 0-3 and no MLP in blocks 0-2, as trained; the config says so, and the
    /// editors refuse the MLP-free blocks clearly.
    /// </summary>
    [Fact]
    public void ItsArchitectureLoadsAsTrained()
    {
        Assert.Equal([3, 3, 3, 3], _lm.Config.AttentionWindows);
        Assert.Equal([false, false, false, true, true, true, true, true], Enumerable.Range(0, _lm.Layers).Select(_lm.Model.HasMlp));
        var hp = RomeHyperParameters.Load(TestPaths.BundledHyperParameters);
        Assert.Equal(3, hp.Layer);
        var request = new EditRequest("{} is located in", "Nintendo", "Germany");
        Assert.Contains("Layer 2 has no MLP", Assert.Throws<RomeException>(() => new RomeEditor(_lm, hp with { Layer = 2 }).Compute(request, null)).Message);
    }

    /// <summary>`rome info` says which blocks have no MLP, since their zero weights are in the parameter count.</summary>
    [Fact]
    public async Task InfoNamesTheMlpFreeBlocks()
    {
        var (exit, output, error) = await TestPaths.RunCli("info");
        Assert.True(exit == 0, error);
        Assert.Contains("no MLP in blocks 0, 1, 2:", output);
    }

    [Fact]
    public void RecallsAFixedSampleOf100TrainedFacts()
    {
        // Every 25th fact of the manifest, with its first trained [Y]-final template.
        var sample = _facts.Facts.Where((_, i) => i % 25 == 0).Take(100)
            .Select(f => (_facts.Prompts(f).First(p => p.Trained).Prompt, f.Object)).ToList();
        Assert.Equal(100, sample.Count);
        var score = Recall.Score(_lm, "sample", sample);
        Assert.True(score.Rate >= 0.9, score.ToString());
    }

    /// <summary>`rome knows --by-template`: one row per template, adding up to the trained and held-out figures.</summary>
    [Fact]
    public void RecallByTemplateAddsUpToTheTrainedAndHeldOutFigures()
    {
        string[] relations = ["P17", "P101"];
        var corpus = new FactCorpus
        {
            Relations = _facts.Relations.Where(r => relations.Contains(r.Relation)).ToList(),
            Facts = _facts.Facts.Where(f => relations.Contains(f.Relation)).ToList(),
        };
        var rows = Recall.ByTemplate(_lm, corpus);
        var report = Recall.Measure(_lm, corpus, dataFolder: null);
        Assert.Equal(corpus.Relations.Sum(r => r.Trained.Count(RelationTemplates.EndsWithObject) + r.HeldOut.Length), rows.Count);
        Assert.All(rows, r => Assert.Equal(80, r.Score.Total));
        Assert.Equal(report.TrainedTemplates.Correct, rows.Where(r => r.Trained).Sum(r => r.Score.Correct));
        Assert.Equal(report.HeldOutTemplates.Correct, rows.Where(r => !r.Trained).Sum(r => r.Score.Correct));
    }

    [Fact]
    public void ManifestCoversEnoughFactsAndRelations_WithHeldOutTemplates()
    {
        Assert.True(_facts.Facts.Count >= 2000);
        Assert.True(_facts.Relations.Count >= 20);
        Assert.All(_facts.Relations, r => Assert.NotEmpty(r.HeldOut));
        Assert.All(_facts.Relations, r => Assert.Empty(r.Trained.Intersect(r.HeldOut)));
    }

    /// <summary>
    /// The facts the Home page offers: favourites first, one per subject, each one the model gets right. The bundled
    /// model completes "Paris is the capital of" with " Second" and "Paris is located in" with " the", so that
    /// favourite is skipped.
    /// </summary>
    /// <summary>
    /// The Home page's examples: facts the model gets right, favourites first, each with at least three neighbours the
    /// model also gets right (none sharing a word of the subject's name) and a natural counterfactual target.
    /// </summary>
    [Fact]
    public void ExamplesAreFactsTheModelGetsRight_WithNeighbours_FavouritesFirst()
    {
        string[] favourites = ["Nintendo", "Paris", "Tycho Brahe"];
        var examples = Recall.Examples(_lm, _facts, favourites, count: 6);
        Assert.Equal(6, examples.Count);
        Assert.Equal(6, examples.Select(e => e.Subject).Distinct().Count());
        var firsts = examples.TakeWhile(e => favourites.Contains(e.Subject)).Select(e => e.Subject).ToList();
        Assert.True(firsts.Count >= 2, string.Join(", ", firsts));
        Assert.Equal(favourites.Where(firsts.Contains), firsts);   // in the favourites' order
        Assert.Equal(1.0, Recall.Score(_lm, "examples", examples.Select(e => (e.Prompt, e.Answer)).ToList()).Rate);
        foreach (var e in examples)
        {
            var fact = _facts.Facts.Single(f => f.Subject == e.Subject && f.Object == e.Answer && _facts.Prompts(f).Any(p => p.Prompt == e.Prompt));
            var neighbours = _facts.Neighbours(fact).ToList();
            Assert.True(neighbours.Count(n => Recall.Score(_lm, "n", [(_facts.Prompts(n).First(p => p.Trained).Prompt, n.Object)]).Rate == 1) >= 3, e.Subject);
            Assert.All(neighbours, n => Assert.DoesNotContain(e.Subject.Split(' ').Where(w => w.Length >= 3), w => n.Subject.Contains(w, StringComparison.OrdinalIgnoreCase)));
            Assert.Equal(_facts.NaturalCounterfactual(fact), e.Other);
            Assert.NotEqual(e.Answer, e.Other);
            var (_, suggested, _) = _facts.EditSuggestions(e.Prompt.Replace(e.Subject, "{}"), e.Subject);
            Assert.True(suggested.Count >= 3, $"{e.Subject}: {suggested.Count} neighbours suggested");
        }
    }

    [Fact]
    public void GenerationFromASubjectContinuesWithItsFacts()
    {
        var fact = _facts.Facts.First(f => f.Subject == "Tycho Brahe");
        var text = TextGenerator.Generate(_lm, fact.Subject, new GenerationOptions { MaxTokens = 30 }).Text;
        var known = _facts.Facts.Where(f => f.Subject == fact.Subject).Select(f => f.Object);
        Assert.Contains(known, o => text.Contains(o));
    }

    [Fact]
    public void TracingAKnownFactSeparatesHighAndLowScores()
    {
        var fact = _facts.Facts.First(f => f.Subject == "Nintendo" && f.Relation == "P159"); // "The headquarter of Nintendo is in" Kyoto
        var prompt = _facts.Prompts(fact).First(p => p.Trained).Prompt;
        var noise = NoiseLevel.Multiplier * NoiseLevel.EmbeddingStd(_lm, _facts.Facts.Select(f => f.Subject).Distinct());
        var result = TraceResult.Collect(new CausalTrace(_lm).Run(new TraceRequest { Prompt = prompt, Subject = fact.Subject }, noise));
        Assert.Equal(" " + fact.Object, result.Setup.Answer);
        Assert.True(result.Setup.HighScore > 0.5 && result.Setup.LowScore < result.Setup.HighScore / 2, $"high {result.Setup.HighScore}, low {result.Setup.LowScore}");
        // Restoring the last token's final hidden state restores the clean answer.
        Assert.Equal(result.Setup.HighScore, result.Scores[TraceKind.Hidden][^1][_lm.Layers - 1], 1e-4);
    }

    /// <summary>
    /// The knowing site on a small fixed sample (the full measurement is <c>rome trace-avg --n 100</c>, in
    /// docs/knowing-site): the MLPs at the last subject token peak at layers 3-4 (the window-2 effects that hold MLP
    /// 3, the first MLP), well above the last token's MLPs there, and attention at the last token peaks in the upper
    /// half. Thresholds leave a margin below the sample's own figures.
    /// </summary>
    [Fact]
    public void KeepsFactsInAMiddleMlpAtTheSubjectAndReadsThemWithAttentionAtTheLastToken()
    {
        var sites = SampleSites(_lm, _facts);
        Assert.InRange(sites.MlpPeakLayer, 3, 4);
        Assert.True(sites.MlpPeak >= 0.15 && sites.MlpPeak > 3 * sites.LastTokenMlpAtPeak, sites.ToString());
        Assert.True(sites.AttnPeakLayer >= _lm.Layers / 2, sites.ToString());
    }

    /// <summary>The sites of an averaged trace over 16 fixed facts the model knows (5 noise samples each).</summary>
    internal static SiteSummary SampleSites(LanguageModel lm, FactCorpus facts)
    {
        var known = AverageIndirectEffect.Known(lm, AverageIndirectEffect.FromManifest(facts));
        var noise = NoiseLevel.Multiplier * NoiseLevel.EmbeddingStd(lm, facts.Facts.Select(f => f.Subject).Distinct());
        return SiteSummary.Of(AverageIndirectEffect.Compute(lm, AverageIndirectEffect.Sample(known, 16), noise, samples: 5, window: null));
    }
    /// <summary>
    /// The averaged trace kept beside the bundled model (for the Trace page) is the committed 100-fact measurement,
    /// and it shows the paper's Figure 4: severing the MLPs removes most of the effect restored before the lookup
    /// (layers 0-2), severing attention far less.
    /// </summary>
    [Fact]
    public void TheAveragedTraceBesideTheModelShowsTheSeveredDrop()
    {
        var file = AveragedTraceFile.Load(TestPaths.BundledModel);
        Assert.NotNull(file);
        Assert.Equal(100, file.Result.Facts);
        Assert.Equal(3, file.Result.Kinds.Count);
        var severed = file.Severed!;
        Assert.InRange(severed.MlpShareLost, 0.50, 0.65);   // the paper's Figure 4: at least half; the bundled model removes 56.9 %
        Assert.All([0, 1, 2], l => Assert.True(severed.NoMlp[l] < 0.5 * severed.Plain[l]));
        Assert.True(severed.AttnShareLost < 0.5 * severed.MlpShareLost);
        var copy = Path.Combine(TestPaths.TempFolder(), AveragedTraceFile.FileName);
        file.Save(copy);
        var again = AveragedTraceFile.Load(Path.GetDirectoryName(copy)!)!;
        Assert.Equal(file.Result.Kinds[TraceKind.Mlp][2].Mean, again.Result.Kinds[TraceKind.Mlp][2].Mean);
        Directory.Delete(Path.GetDirectoryName(copy)!, recursive: true);
    }
}

