using Rome.Model;
using Rome.Model.Modeling;
using Rome.Model.Training;

namespace Rome.Cli.Commands;

internal static class TrainCommands
{
    public static int Train(CliArgs a, CancellationToken cancel)
    {
        var defaults = new TrainingOptions();
        var outDir = Path.GetFullPath(a.Get("out", Path.Combine(Common.Settings.BaseDirectory, "runs", "rome-knowing")));
        var data = Common.DataFolder(a);
        var perRelation = a.Int("facts-per-relation", 80);
        var people = a.Int("people", 1500);
        // People are named with real subjects' first and last words unless a name pool is given (0: any person's name).
        var namesFromSubjects = a.Flag("names-from-subjects") | !a.Has("name-pool");
        var namePool = namesFromSubjects ? 0 : a.Int("name-pool", 0);
        var nameParts = a.Int("name-parts", 2);
        var options = defaults with
        {
            Steps = a.Int("steps", defaults.Steps),
            Layers = a.Int("layers", defaults.Layers),
            Width = a.Int("width", defaults.Width),
            Heads = a.Int("heads", defaults.Heads),
            BatchSize = a.Int("batch", defaults.BatchSize),
            LearningRate = a.Double("lr", defaults.LearningRate),
            WeightDecay = a.Double("weight-decay", defaults.WeightDecay),
            Seed = a.Int("seed", defaults.Seed),
            Softmax = a.Get("softmax", defaults.Softmax),
            FullSoftmaxFraction = a.Double("full-softmax", defaults.FullSoftmaxFraction),
            Recipe = a.Get("recipe", defaults.Recipe),
            BiographyShare = a.Double("bio-share", defaults.BiographyShare),
            ListShare = a.Double("list-share", defaults.ListShare),
            WarmupSteps = a.Int("warmup", defaults.WarmupSteps),
            MlpFreeLayers = a.Int("mlp-free-layers", defaults.MlpFreeLayers),
            AttentionWindows = a.Has("local-attention") ? Windows(a.Get("local-attention", "")) : defaults.AttentionWindows,
        };
        var preview = a.Int("preview", 0);
        a.EnsureAllUsed();
        options.Validate();
        if (nameParts < 2) throw new RomeException("--name-parts must be at least 2 (a first and a last name).");

        Directory.CreateDirectory(outDir);
        var manifestPath = Path.Combine(outDir, FactCorpus.ManifestFile);
        var corpus = File.Exists(manifestPath) ? FactCorpus.Load(manifestPath) : FactCorpus.Build(data, perRelation, options.Seed, options.Recipe == "templates" ? 0 : people, namePool, namesFromSubjects, nameParts);
        corpus.Save(manifestPath);
        if (preview == 0) Console.Error.WriteLine($"Training a {options.Layers}-layer, width-{options.Width} GPT-2 on {corpus.Facts.Count} facts over {corpus.Relations.Count} relations and {corpus.People.Select(f => f.Subject).Distinct().Count()} fictional people ({corpus.People.Count} facts), recipe '{options.Recipe}', into {outDir}");
        Console.Error.WriteLine($"({options.Steps} steps of {options.BatchSize} x {options.Positions} tokens; softmax: {options.Softmax}; resumes from a checkpoint there; Ctrl-C keeps the last checkpoint)");

        if (preview > 0)
        {
            // The first sequences of step 0, as the model will see them.
            var (inputs, _) = new Trainer(corpus, options).Batch(0);
            var tokenizer = TextTokenizer.Gpt2();
            for (int b = 0; b < Math.Min(preview, options.BatchSize); b++)
                Console.WriteLine(tokenizer.Decode(inputs[b].data<long>().Select(i => (int)i).ToArray()) + "\n");
            return 0;
        }
        var started = DateTime.UtcNow;
        var progress = new Progress<TrainingProgress>(p =>
            Out.Progress(p.Step / (double)p.TotalSteps, $"step {p.Step}/{p.TotalSteps} loss {p.Loss:F3}", p.Elapsed));
        var trainer = new Trainer(corpus, options);
        using var model = trainer.Train(outDir, progress, cancel);
        Console.Error.WriteLine($"\nDone in {DateTime.UtcNow - started:hh\\:mm\\:ss}. Model at {outDir}. Measure it with: rome knows --model {outDir}");
        return 0;
    }

    /// <summary>"1,2,2": the first layers' attention windows (0: global).</summary>
    private static int[] Windows(string text) =>
        text.Split(',', StringSplitOptions.TrimEntries).Select(w => int.TryParse(w, out var n) && n >= 0 ? n
            : throw new RomeException($"--local-attention takes the first layers' windows, e.g. 1,2,2,2 (0: global); '{w}' is not one.")).ToArray();

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
