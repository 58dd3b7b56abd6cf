using System.Text.Json;

namespace Rome.Model.Training;

/// <summary>
/// Everything that makes a trained model: the training text, the architecture and the schedule. It is read from a
/// recipe file (<c>recipes/knowing.json</c> made the bundled model; <c>rome train --recipe FILE</c>), where every
/// setting is written out; a misspelt setting is an error, not a silent default. The defaults here are that recipe's.
/// </summary>
public sealed record TrainingRecipe
{
    // The training text (see TrainingText and FactCorpus.Build).
    /// <summary>The kind of text (<see cref="TrainingText.Kinds"/>): "knowing" or "templates".</summary>
    public string Text { get; init; } = "knowing";
    /// <summary>Real facts chosen per ParaRel relation.</summary>
    public int FactsPerRelation { get; init; } = 80;
    /// <summary>Fictional people added beside the real facts (0: none).</summary>
    public int People { get; init; } = 1500;
    /// <summary>Share of "knowing" documents that are biographies of the fictional people.</summary>
    public double BiographyShare { get; init; } = 0.2;
    /// <summary>Share of "knowing" documents that list a subject's objects right after its name.</summary>
    public double ListShare { get; init; } = 0.25;

    // The architecture: a GPT-2 (ModelConfig.Gpt2) with these changes.
    public int Layers { get; init; } = 8;
    public int Width { get; init; } = 128;
    public int Heads { get; init; } = 4;
    public int Positions { get; init; } = 64;
    /// <summary>
    /// The first blocks that have no MLP: their MLP weights are zero and never trained, so the model must look
    /// facts up in later MLPs, after its first attention layers have gathered a name into its last token.
    /// </summary>
    public int MlpFreeLayers { get; init; } = 3;
    /// <summary>
    /// The first layers' attention windows (<see cref="ModelConfig.AttentionWindows"/>; empty: every layer global).
    /// Local lower layers gather a name into its last token a piece per layer, as GPT-2's early layers mostly do, and
    /// keep the prompt's last token from reading the subject before the first global layer.
    /// </summary>
    public int[] AttentionWindows { get; init; } = [3, 3, 3, 3];

    // The schedule.
    public int Steps { get; init; } = 5500;
    public int BatchSize { get; init; } = 32;
    public double LearningRate { get; init; } = 2e-3;
    public int WarmupSteps { get; init; } = 200;
    public double WeightDecay { get; init; } = 0.0;
    public int Seed { get; init; } = 1234;
    public int CheckpointEvery { get; init; } = 500;
    /// <summary>
    /// Most steps compute the softmax over the tokens the corpus uses plus this many random other tokens (the
    /// 50,257-row output layer dominates the cost at this width).
    /// </summary>
    public int SampledNegatives { get; init; } = 1024;
    /// <summary>The last share of the steps that use the whole vocabulary, to calibrate (1: every step).</summary>
    public double FullSoftmaxFraction { get; init; } = 0.05;

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow,
    };

    /// <summary>Reads and checks a recipe file.</summary>
    public static TrainingRecipe Load(string path)
    {
        if (!File.Exists(path)) throw new RomeException($"Recipe {path} not found.");
        TrainingRecipe recipe;
        try { recipe = JsonSerializer.Deserialize<TrainingRecipe>(File.ReadAllText(path), Json) ?? throw new RomeException($"Recipe {path} is empty."); }
        catch (JsonException e) { throw new RomeException($"Recipe {path} is not valid: {e.Message}"); }
        recipe.Validate();
        return recipe;
    }

    public void Save(string path) => AtomicFile.WriteText(path, JsonSerializer.Serialize(this, Json));

    /// <summary>Refuses recipes no model can be built or trained with (the recipe's names in brackets).</summary>
    public void Validate()
    {
        if (!TrainingText.Kinds.Contains(Text)) throw new RomeException($"Unknown training text '{Text}' (text: {string.Join(" or ", TrainingText.Kinds)}).");
        if (Layers < 1 || Heads < 1 || Width % Heads != 0) throw new RomeException("The width must be a multiple of the heads, and the layers at least 1 (width, heads, layers).");
        if (MlpFreeLayers < 0 || MlpFreeLayers >= Layers) throw new RomeException($"The MLP-free layers must be between 0 and {Layers - 1} (mlpFreeLayers).");
        if (AttentionWindows.Length >= Layers) throw new RomeException($"{AttentionWindows.Length} attention windows for {Layers} layers: at most {Layers - 1} layers can be local (attentionWindows).");
        if (AttentionWindows.Any(w => w < 0)) throw new RomeException("An attention window is a number of tokens, or 0 for global (attentionWindows).");
        if (FullSoftmaxFraction is < 0 or > 1) throw new RomeException("The share of full-softmax steps must be between 0 and 1 (fullSoftmaxFraction).");
        if (BiographyShare < 0 || ListShare < 0 || BiographyShare + ListShare > 1) throw new RomeException("The biography and list shares must be at least 0 and add up to at most 1 (biographyShare, listShare).");
        if (Steps < 1 || BatchSize < 1 || FactsPerRelation < 1 || People < 0) throw new RomeException("steps, batchSize and factsPerRelation must be at least 1, and people at least 0.");
    }
}
