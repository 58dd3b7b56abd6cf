using Rome.Model;
using Rome.Model.Modeling;
using Rome.Model.Training;

namespace Rome.Cli.Commands;

internal static class TrainCommands
{
    public static int Train(CliArgs a, CancellationToken cancel)
    {
        var defaults = new TrainingOptions();
        var outDir = Path.GetFullPath(a.Get("out", Path.Combine(Common.Settings.BaseDirectory, "runs", "rome-tiny")));
        var data = Common.DataFolder(a);
        var perRelation = a.Int("facts-per-relation", 80);
        var options = defaults with
        {
            Steps = a.Int("steps", defaults.Steps),
            Layers = a.Int("layers", defaults.Layers),
            Width = a.Int("width", defaults.Width),
            Heads = a.Int("heads", defaults.Heads),
            BatchSize = a.Int("batch", defaults.BatchSize),
            LearningRate = a.Double("lr", defaults.LearningRate),
            Seed = a.Int("seed", defaults.Seed),
            Softmax = a.Get("softmax", defaults.Softmax),
        };
        a.EnsureAllUsed();
        if (options.Layers < 1 || options.Width % options.Heads != 0) throw new RomeException("--width must be a multiple of --heads, and --layers at least 1.");

        Directory.CreateDirectory(outDir);
        var manifestPath = Path.Combine(outDir, FactCorpus.ManifestFile);
        var corpus = File.Exists(manifestPath) ? FactCorpus.Load(manifestPath) : FactCorpus.Build(data, perRelation, options.Seed);
        corpus.Save(manifestPath);
        Console.Error.WriteLine($"Training a {options.Layers}-layer, width-{options.Width} GPT-2 on {corpus.Facts.Count} facts over {corpus.Relations.Count} relations into {outDir}");
        Console.Error.WriteLine($"({options.Steps} steps of {options.BatchSize} x {options.Positions} tokens; softmax: {options.Softmax}; resumes from a checkpoint there; Ctrl-C keeps the last checkpoint)");

        var started = DateTime.UtcNow;
        var progress = new Progress<TrainingProgress>(p =>
            Out.Progress(p.Step / (double)p.TotalSteps, $"step {p.Step}/{p.TotalSteps} loss {p.Loss:F3}", p.Elapsed));
        var trainer = new Trainer(corpus, options);
        using var model = trainer.Train(outDir, progress, cancel);
        Console.Error.WriteLine($"\nDone in {DateTime.UtcNow - started:hh\\:mm\\:ss}. Model at {outDir}. Measure it with: rome knows --model {outDir}");
        return 0;
    }

    public static int Knows(CliArgs a, CancellationToken cancel)
    {
        var json = a.Flag("json");
        var unseen = a.Int("unseen", 500);
        var data = Common.DataFolder(a);
        using var lm = Common.LoadModel(a);
        a.EnsureAllUsed();
        var corpus = FactCorpus.ForModel(lm.Folder)
            ?? throw new RomeException($"{lm.Folder} has no {FactCorpus.ManifestFile}: 'knows' measures models trained by 'rome train'.");
        var report = Recall.Measure(lm, corpus, Directory.Exists(data) ? data : null, unseen, cancel: cancel);
        if (json) { Out.WriteJson(report); return 0; }
        Console.WriteLine($"Top-1 recall of the object's first token, {lm.Name}:");
        foreach (var s in new[] { report.TrainedTemplates, report.HeldOutTemplates, report.UnseenFacts, report.ChanceBaseline })
            Console.WriteLine($"  {s}");
        return 0;
    }
}
