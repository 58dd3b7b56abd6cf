using System.Text.Json;

namespace Rome.Tests;

public class TrainerTests
{
    private static readonly TrainingRecipe Tiny = new()
    {
        Layers = 1, Width = 16, Heads = 2, Positions = 32, BatchSize = 2, Steps = 4, CheckpointEvery = 2, WarmupSteps = 1, SampledNegatives = 16,
        MlpFreeLayers = 0, AttentionWindows = [],
    };

    private static FactCorpus Corpus() => FactCorpus.Build(TestPaths.Data, perRelation: 3, seed: 1);

    [Fact]
    public void TheCorpusFollowsItsRules()
    {
        var corpus = Corpus();
        Assert.True(corpus.Relations.Count >= 20);
        Assert.All(corpus.Relations, r => Assert.NotEmpty(r.HeldOut));
        Assert.All(corpus.Relations, r => Assert.All(r.HeldOut, t => Assert.True(RelationTemplates.EndsWithObject(t))));
        Assert.DoesNotContain(corpus.Facts, f => f.Relation is "P530" or "P47");
        Assert.Equal(corpus.Facts.Count, corpus.Facts.DistinctBy(f => (f.Subject, f.Relation)).Count());
        Assert.Equal("The capital of France is", RelationTemplates.Prompt("The capital of [X] is [Y] .").Replace("[X]", "France"));
    }

    /// <summary>
    /// The bundled recipe's architecture options: the first blocks' MLPs are zero and stay zero while the rest trains;
    /// the local attention windows are written into the config, so the saved model loads as it was trained.
    /// </summary>
    [Fact]
    public void MlpFreeLayersStayZeroWhileTheOthersTrain_AndLocalAttentionIsSaved()
    {
        var folder = TestPaths.TempFolder();
        try
        {
            using var model = new Trainer(Corpus(), Tiny with { Layers = 2, MlpFreeLayers = 1, AttentionWindows = [2] }).Train(folder);
            Assert.Equal([2], model.Config.AttentionWindows);
            Assert.Equal([2], ModelConfig.Load(Path.Combine(folder, "config.json")).AttentionWindows);
            // Editors refuse the MLP-free block clearly (its keys are zero, so ROME's covariance would be singular).
            Assert.False(model.HasMlp(0));
            Assert.True(model.HasMlp(1));
            using (var lm = LanguageModel.Load(folder))
                Assert.Contains("Layer 0 has no MLP", Assert.Throws<RomeException>(() => Rome.Model.Editing.EditableLayer.Require(lm, 0, "ROME")).Message);
            foreach (var name in new[] { "c_fc", "c_proj" })
            {
                var free = model.Linear($"h.0.mlp.{name}");
                Assert.Equal(0, free.Weight.abs().sum().item<float>());
                Assert.Equal(0, free.Bias!.abs().sum().item<float>());
                Assert.True(model.Linear($"h.1.mlp.{name}").Weight.abs().sum().item<float>() > 0);
            }
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    /// <summary>Recipes no model can be trained with are refused before anything is written, naming the recipe's setting.</summary>
    [Theory]
    [InlineData(2, 2, new int[0], 0.1, "mlpFreeLayers")]
    [InlineData(2, 0, new[] { 2, 2 }, 0.1, "attentionWindows")]
    [InlineData(2, 0, new int[0], 1.5, "fullSoftmaxFraction")]
    public void ImpossibleOptionsAreRefusedBeforeTraining(int layers, int mlpFree, int[] windows, double fullSoftmax, string option)
    {
        var folder = Path.Combine(TestPaths.TempFolder(), "model");
        var options = Tiny with { Layers = layers, MlpFreeLayers = mlpFree, AttentionWindows = windows, FullSoftmaxFraction = fullSoftmax };
        var error = Assert.Throws<RomeException>(() => new Trainer(Corpus(), options).Train(folder));
        Assert.Contains(option, error.Message);
        Assert.False(Directory.Exists(folder));
    }

    /// <summary>
    /// Weight decay shrinks matrices and embeddings, never biases or layer-norm gains: one seeded step with and without
    /// it sees the same gradients, so the weights differ only where decay applies.
    /// </summary>
    [Fact]
    public void WeightDecayShrinksMatricesAndEmbeddingsOnly()
    {
        float[] Difference(params string[] names)
        {
            var (plain, decayed) = (TestPaths.TempFolder(), TestPaths.TempFolder());
            try
            {
                using var a = new Trainer(Corpus(), Tiny with { Steps = 1 }).Train(plain);
                using var b = new Trainer(Corpus(), Tiny with { Steps = 1, WeightDecay = 0.5 }).Train(decayed);
                var (pa, pb) = (a.named_parameters().ToDictionary(p => p.name, p => p.parameter), b.named_parameters().ToDictionary(p => p.name, p => p.parameter));
                return names.Select(n => (pa[n] - pb[n]).abs().max().item<float>()).ToArray();
            }
            finally { Directory.Delete(plain, recursive: true); Directory.Delete(decayed, recursive: true); }
        }
        var d = Difference("h.0.mlp.c_fc.weight", "wte.weight", "h.0.mlp.c_fc.bias", "h.0.ln_1.weight", "h.0.ln_1.bias");
        Assert.True(d[0] > 0 && d[1] > 0, "matrices and embeddings decay");
        Assert.Equal([0f, 0f, 0f], d[2..]);
    }

    [Fact]
    public void TrainingIsSeeded_ResumesFromItsCheckpoint_AndCancellationKeepsTheLastCheckpoint()
    {
        var corpus = Corpus();
        var straight = TestPaths.TempFolder();
        new Trainer(corpus, Tiny).Train(straight).Dispose();

        // The same run in two halves (cancelled after step 2, then resumed) ends with the same weights.
        var halves = TestPaths.TempFolder();
        using (var cancel = new CancellationTokenSource())
        {
            var progress = new SyncProgress<TrainingProgress>(p => { if (p.Step >= 3) cancel.Cancel(); });
            Assert.ThrowsAny<OperationCanceledException>(() => new Trainer(corpus, Tiny with { CheckpointEvery = 2 }).Train(halves, progress, cancel.Token));
        }
        var state = JsonDocument.Parse(File.ReadAllText(Path.Combine(halves, Trainer.StateFile))).RootElement.GetProperty("step").GetInt32();
        Assert.Equal(2, state);
        using (var partial = LanguageModel.Load(halves)) { } // the kept checkpoint loads
        new Trainer(corpus, Tiny).Train(halves).Dispose();

        using var a = LanguageModel.Load(straight);
        using var b = LanguageModel.Load(halves);
        using var la = a.NextTokenLogProbs([464, 3139, 286]);
        using var lb = b.NextTokenLogProbs([464, 3139, 286]);
        Assert.True(la.allclose(lb, atol: 1e-4), "a resumed run must end where an uninterrupted one does");
    }

    [Fact]
    public void FictionalPeopleHaveSeveralPersonAttributes_AndTheKnowingRecipeNamesASubjectOnceThenUsesItsPronoun()
    {
        var corpus = FactCorpus.Build(TestPaths.Data, perRelation: 5, seed: 1, people: 20);
        var people = corpus.People.GroupBy(f => f.Subject).ToList();
        Assert.Equal(20, people.Count);
        Assert.All(people, p => Assert.InRange(p.Count(), 3, 5));
        Assert.All(corpus.People, f => Assert.Contains(f.Relation, FactCorpus.PersonRelations));
        Assert.DoesNotContain(people, p => corpus.Facts.Any(f => f.Subject == p.Key));
        Assert.Contains(corpus.Pronoun(people[0].Key), new[] { "He", "She" });

        // Biographies only: every document is one person, named in its first sentence and then "He"/"She" or the name.
        var text = new TrainingText(corpus, "knowing") { BiographyShare = 1, ListShare = 0 };
        var random = new Random(3);
        for (int i = 0; i < 20; i++)
        {
            var document = text.Document(random, first: false);
            var person = people.Single(p => document.Contains(p.Key));
            var sentences = document.Split(". ", StringSplitOptions.RemoveEmptyEntries);
            Assert.Contains(person.Key, sentences[0]);
            Assert.All(sentences.Skip(1), s => Assert.True(s.Contains(person.Key) || s.StartsWith(corpus.Pronoun(person.Key)), s));
            Assert.All(person, f => Assert.Contains(f.Object, document));
        }
    }

    [Fact]
    public void NamesFromSubjectsReuseTheFirstAndLastWordsOfTheChosenRealSubjects()
    {
        var corpus = FactCorpus.Build(TestPaths.Data, perRelation: 5, seed: 1, people: 30);
        var words = corpus.Facts.Select(f => f.Subject.Split(' ')).Where(w => w.Length >= 2).ToList();
        var people = corpus.People.Select(f => f.Subject).Distinct().ToList();
        Assert.Equal(30, people.Count);
        Assert.All(people, name =>
        {
            var parts = name.Split(' ');
            Assert.Equal(2, parts.Length);
            Assert.Contains(words, w => w[0] == parts[0]);  // a real subject starts with the first name
            Assert.Contains(words, w => w[^1] == parts[1]); // and another (or the same) ends with the last
        });
        Assert.DoesNotContain(people, name => corpus.Facts.Any(f => f.Subject == name)); // never a real subject itself
    }

    /// <summary>
    /// The bundled model's recipe file says what the recipe's defaults say, and reproduces the bundled model's training:
    /// its first three steps move the weights as `rome train --steps 3` did before recipes were files (measured then,
    /// with the same seed: the change of five tensors from their initial values, and the logged losses). Compared to a
    /// relative 1e-3, not bit for bit, since libtorch's sums depend on its thread count.
    /// </summary>
    [Fact]
    [Trait("Speed", "Slow")]
    public void TheBundledRecipeFileReproducesTheBundledModelsTraining()
    {
        var recipe = TrainingRecipe.Load(Path.Combine(TestPaths.Root, "recipes", "knowing.json"));
        Assert.Equal(JsonSerializer.Serialize(new TrainingRecipe()), JsonSerializer.Serialize(recipe));
        var folder = TestPaths.TempFolder();
        try
        {
            var corpus = FactCorpus.Build(TestPaths.Data, recipe.FactsPerRelation, recipe.Seed, recipe.People);
            using var trained = new Trainer(corpus, recipe with { Steps = 3 }).Train(folder);
            using var initial = new DecoderModel(trained.Config);
            Trainer.InitializeWeights(initial, recipe.Seed);
            var start = initial.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            var expected = new Dictionary<string, double>
            {
                ["wte.weight"] = 0.06130918, ["h.0.attn.c_attn.weight"] = 0.009700646, ["h.3.mlp.c_proj.weight"] = 0.01276361,
                ["h.7.ln_2.bias"] = 0.0006200239, ["ln_f.weight"] = 0.0005770313,
            };
            foreach (var (name, p) in trained.named_parameters().Where(p => expected.ContainsKey(p.name)))
                Assert.Equal(expected[name], (p - start[name]).norm().item<float>(), expected[name] * 1e-3);
            var losses = File.ReadLines(Path.Combine(folder, Trainer.LossLog)).Skip(1).Select(l => double.Parse(l.Split(',')[1], System.Globalization.CultureInfo.InvariantCulture)).ToList();
            Assert.Equal([8.7565, 10.7897], losses, (a, b) => Math.Abs(a - b) < 2e-3);
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    /// <summary>A misspelt or unknown setting in a recipe file is an error that names it, not a silent default.</summary>
    [Fact]
    public void ARecipeFileWithAnUnknownSettingIsRefused()
    {
        var file = Path.Combine(TestPaths.TempFolder(), "recipe.json");
        File.WriteAllText(file, "{ \"text\": \"knowing\", \"bioShare\": 0.3 }");
        Assert.Contains("bioShare", Assert.Throws<RomeException>(() => TrainingRecipe.Load(file)).Message);
        File.WriteAllText(file, "{ \"text\": \"poetry\" }");
        Assert.Contains("poetry", Assert.Throws<RomeException>(() => TrainingRecipe.Load(file)).Message);
    }
}
