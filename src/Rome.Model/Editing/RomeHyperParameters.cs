using Rome.Model.Modeling;

namespace Rome.Model.Editing;

/// <summary>
/// ROME's hyper-parameters (the original's names in brackets). Defaults are the paper's for GPT-2 XL; a model folder
/// carries its own in <c>rome-hparams.json</c> (the bundled model's edits layer 3, the MLP that looks its facts up,
/// with 30 v* steps: see its model card).
/// </summary>
public sealed record RomeHyperParameters
{
    public const string FileName = "rome-hparams.json";

    /// <summary>The edited layer: its <c>mlp.c_proj</c> is the key-value memory [layers].</summary>
    public int Layer { get; init; } = 17;
    /// <summary>Adam steps for v* [v_num_grad_steps].</summary>
    public int Steps { get; init; } = 20;
    /// <summary>[v_lr]</summary>
    public double LearningRate { get; init; } = 0.5;
    /// <summary>Weight decay on |δ| / |v0|² [v_weight_decay].</summary>
    public double WeightDecay { get; init; } = 0.5;
    /// <summary>δ is projected onto the ball of radius ClampNormFactor x |v0| [clamp_norm_factor].</summary>
    public double ClampNormFactor { get; init; } = 4;
    /// <summary>[kl_factor]</summary>
    public double KlFactor { get; init; } = 0.0625;
    /// <summary>Stop early when the loss falls below this.</summary>
    public double StopLoss { get; init; } = 0.05;
    /// <summary>
    /// Context prefixes the model generates from &lt;|endoftext|&gt;, as [length in tokens, count] pairs, as the
    /// original's <c>context_template_length_params</c> (GPT-2 XL: [[5, 10], [10, 10]]: ten of 5 tokens, ten of 10).
    /// </summary>
    public int[][] ContextTemplateLengthParams { get; init; } = [[5, 10], [10, 10]];
    /// <summary>
    /// Not the original's: what the context prefixes are sampled after, in turn. The original's &lt;|endoftext|&gt;
    /// by default; a model trained without that token between documents samples poor text after it, so its file
    /// can name ordinary openings instead ("The", "Because", ...).
    /// </summary>
    public string[] ContextTemplatePrompts { get; init; } = ["<|endoftext|>"];
    /// <summary>
    /// Which key the update is solved for. "original", as the original code: u comes from k*, averaged over the context
    /// templates, but W' k = v* holds for the bare prompt's own key k. "consistent", r-ROME's (Gupta et al. 2024,
    /// arXiv 2403.07175; <c>rome edit --key consistent</c>): k* throughout, so W' k* = v*, with the MLP's output averaged
    /// over the same prompts as the value replaced; the mix of keys is what makes the original's "disabling edits".
    /// </summary>
    public string Key { get; init; } = "original";
    /// <summary>"corpus": C = E[k kᵀ] over text (the paper); "identity": C = I (no second-moment adjustment).</summary>
    public string Covariance { get; init; } = "corpus";
    /// <summary>How many corpus tokens C is estimated from [mom2_n_samples is in records there; here tokens].</summary>
    public int CovarianceTokens { get; init; } = 100_000;
    /// <summary>
    /// Not ROME's: the FT+L baseline's bound ε on each weight's change [norm_constraint], 5e-4 for GPT-2 XL. Kept
    /// here so a model folder carries every setting tuned for it.
    /// </summary>
    public double FineTuneConstraint { get; init; } = 5e-4;
    /// <summary>Not ROME's either: how strongly the knowledge-neurons baseline writes (the original library's factor 2).</summary>
    public double KnowledgeNeuronsScale { get; init; } = 2;

    /// <summary>ROME's v* search: δ after block <see cref="Layer"/>, v0 the MLP's output there.</summary>
    public ValueSearch Search => new(Layer, HookPoint.Mlp(Layer), Steps, LearningRate, WeightDecay, ClampNormFactor, KlFactor, StopLoss);

    /// <summary>The original settings for GPT-2 XL (48 layers).</summary>
    public static RomeHyperParameters Gpt2Xl => new();

    public static RomeHyperParameters Load(string path) => HyperParameterFile.Load<RomeHyperParameters>(path);

    /// <summary>
    /// The model folder's <c>rome-hparams.json</c>, else published values for the model's family: the paper's files
    /// for GPT-2 XL (layer 17 of 48) and GPT-J (layer 5 of 28, otherwise the same values); EasyEdit's Llama-2-7B file
    /// for Llama, Mistral and Qwen2 (layer 5 of 32, 25 steps, weight decay 1e-3). A model of another depth edits the
    /// layer at the same relative depth; its own traced site (<c>rome trace-avg</c>) is the better choice.
    /// </summary>
    public static RomeHyperParameters ForModel(string folder, ModelConfig config)
    {
        var path = Path.Combine(folder, FileName);
        if (File.Exists(path)) return Load(path);
        int Scaled(int layer, int of) => Math.Clamp((int)Math.Round(config.Layers * layer / (double)of), 0, config.Layers - 1);
        return config.Family switch
        {
            ModelFamily.GptJ => new RomeHyperParameters { Layer = Scaled(5, 28) },
            ModelFamily.Llama or ModelFamily.Qwen2 => new RomeHyperParameters { Layer = Scaled(5, 32), Steps = 25, WeightDecay = 1e-3 },
            _ => new RomeHyperParameters { Layer = Scaled(17, 48) },
        };
    }

}
