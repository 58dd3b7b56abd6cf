using Rome.Model;
using Rome.Model.Modeling;
using Rome.Model.Facts;
using Rome.Model.Training;

namespace Rome.Cli.Commands;

internal static class TrainCommands
{
    /// <summary>
    /// Trains the model a recipe file describes (by default <c>recipes/knowing.json</c>, the bundled model's), into
    /// --out, resuming from a checkpoint there; the recipe is kept beside the weights.
    /// </summary>
    public static int Train(CliArgs a, CancellationToken cancel)
    {
        var recipePath = Path.GetFullPath(a.Get("recipe", Path.Combine(Common.Settings.BaseDirectory, "recipes", "knowing.json")));
        var outDir = Path.GetFullPath(a.Get("out", Path.Combine(Common.Settings.BaseDirectory, "runs", Path.GetFileNameWithoutExtension(recipePath))));
        var data = Common.DataFolder(a);
        var preview = a.Int("preview", 0);
        a.EnsureAllUsed();
        var recipe = TrainingRecipe.Load(recipePath);

        Directory.CreateDirectory(outDir);
        var manifestPath = Path.Combine(outDir, FactCorpus.ManifestFile);
        var corpus = File.Exists(manifestPath) ? FactCorpus.Load(manifestPath) : FactCorpus.Build(data, recipe.FactsPerRelation, recipe.Seed, recipe.People);
        corpus.Save(manifestPath);
        recipe.Save(Path.Combine(outDir, RecipeFile));
        if (preview > 0)
        {
            // The first sequences of step 0, as the model will see them.
            var (inputs, _) = new Trainer(corpus, recipe).Batch(0);
            var tokenizer = TextTokenizer.Gpt2();
            for (int b = 0; b < Math.Min(preview, recipe.BatchSize); b++)
                Console.WriteLine(tokenizer.Decode(inputs[b].data<long>().Select(i => (int)i).ToArray()) + "\n");
            return 0;
        }
        Console.Error.WriteLine($"Training a {recipe.Layers}-layer, width-{recipe.Width} GPT-2 on {corpus.Facts.Count} facts over {corpus.Relations.Count} relations and {corpus.People.Select(f => f.Subject).Distinct().Count()} fictional people ({corpus.People.Count} facts), text '{recipe.Text}', into {outDir}");
        Console.Error.WriteLine($"({recipe.Steps} steps of {recipe.BatchSize} x {recipe.Positions} tokens from {recipePath}; resumes from a checkpoint there; Ctrl-C keeps the last checkpoint)");
        var started = DateTime.UtcNow;
        var progress = new Progress<TrainingProgress>(p =>
            Out.Progress(p.Step / (double)p.TotalSteps, $"step {p.Step}/{p.TotalSteps} loss {p.Loss:F3}", p.Elapsed));
        using var model = new Trainer(corpus, recipe).Train(outDir, progress, cancel);
        Console.Error.WriteLine($"\nDone in {DateTime.UtcNow - started:hh\\:mm\\:ss}. Model at {outDir}. Measure it with: rome knows --model {outDir}");
        return 0;
    }

    /// <summary>The recipe a model was trained with, kept beside its weights.</summary>
    public const string RecipeFile = "recipe.json";

    public static int Knows(CliArgs a, CancellationToken cancel)
    {
        var json = a.Flag("json");
        var byTemplate = a.Flag("by-template");
        var unseen = a.Int("unseen", 500);
        var data = Common.DataFolder(a);
        using var lm = Common.LoadModel(a);
        a.EnsureAllUsed();
        var corpus = FactCorpus.ForModel(lm.Folder)
            ?? throw new RomeException($"{lm.Folder} has no {FactCorpus.ManifestFile}: 'knows' measures models trained by 'rome train'.");
        if (byTemplate)
        {
            var templates = Recall.ByTemplate(lm, corpus, cancel);
            if (json) { Out.WriteJson(templates); return 0; }
            Console.WriteLine($"Top-1 recall by template, {lm.Name} (held-out templates first, worst first):");
            foreach (var t in templates.OrderBy(t => t.Trained).ThenBy(t => t.Score.Rate))
                Console.WriteLine($"  {t.Relation,-6} {(t.Trained ? "trained " : "held-out")} {100 * t.Score.Rate,5:F1}%  {t.Template}");
            return 0;
        }
        var report = Recall.Measure(lm, corpus, Directory.Exists(data) ? data : null, unseen, cancel: cancel);
        if (json) { Out.WriteJson(report); return 0; }
        Console.WriteLine($"Top-1 recall of the object's first token, {lm.Name}:");
        foreach (var s in new[] { report.TrainedTemplates, report.HeldOutTemplates, report.UnseenFacts, report.ChanceBaseline })
            Console.WriteLine($"  {s}");
        return 0;
    }
}
