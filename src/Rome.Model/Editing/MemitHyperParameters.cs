using Rome.Model.Modeling;

namespace Rome.Model.Editing;

/// <summary>
/// MEMIT's and AlphaEdit's hyper-parameters (the originals' names in brackets; AlphaEdit adds the last two). Defaults are
/// MEMIT's for GPT-2 XL (<c>hparams/MEMIT/gpt2-xl.json</c>); a model folder carries its own in <c>memit-hparams.json</c>.
/// </summary>
public sealed record MemitHyperParameters
{
    public const string FileName = "memit-hparams.json";

    /// <summary>The edited layers, lowest first; z is optimised after the last [layers].</summary>
    public int[] Layers { get; init; } = [13, 14, 15, 16, 17];
    /// <summary>Adam steps for z [v_num_grad_steps].</summary>
    public int Steps { get; init; } = 20;
    /// <summary>[v_lr]</summary>
    public double LearningRate { get; init; } = 0.5;
    /// <summary>Weight decay on |δ| / |z0|² [v_weight_decay].</summary>
    public double WeightDecay { get; init; } = 0.5;
    /// <summary>|δ| ≤ ClampNormFactor x |z0|, z0 being the residual stream there [clamp_norm_factor].</summary>
    public double ClampNormFactor { get; init; } = 0.75;
    /// <summary>[kl_factor]</summary>
    public double KlFactor { get; init; } = 0.0625;
    /// <summary>Stop the z search early when its loss falls below this (the original's 5e-2).</summary>
    public double StopLoss { get; init; } = 0.05;
    /// <summary>
    /// λ in ΔW = R Kᵀ (λC + K Kᵀ)⁻¹: how much the keys the layer usually sees weigh against the new ones
    /// [mom2_update_weight]. C is the mean E[k kᵀ], so λ counts "tokens' worth" of preserved keys.
    /// </summary>
    public double MomentUpdateWeight { get; init; } = 20000;
    /// <summary>Context prefixes as [length, count] pairs (the original's one group of five 10-token texts).</summary>
    public int[][] ContextTemplateLengthParams { get; init; } = [[10, 5]];
    /// <summary>What the prefixes are sampled after, in turn (the original's five openings).</summary>
    public string[] ContextTemplatePrompts { get; init; } = ["The", "Therefore", "Because", "I", "You"];
    /// <summary>"corpus": C = E[k kᵀ] over text; "identity": C = I.</summary>
    public string Covariance { get; init; } = "corpus";
    /// <summary>How many corpus tokens C is estimated from.</summary>
    public int CovarianceTokens { get; init; } = 100_000;
    /// <summary>AlphaEdit: C's singular directions with singular values below this span the null space P projects onto [nullspace_threshold].</summary>
    public double NullspaceThreshold { get; init; } = 2e-2;
    /// <summary>AlphaEdit: the ridge term added to the normal equations [L2].</summary>
    public double L2 { get; init; } = 10;

    /// <summary>MEMIT's z search (the original's <c>compute_z</c>): δ after the last edited block, z0 the residual stream there.</summary>
    public ValueSearch Search => new(Layers[^1], HookPoint.Resid(Layers[^1]), Steps, LearningRate, WeightDecay, ClampNormFactor, KlFactor, StopLoss);

    public static MemitHyperParameters Load(string path) => HyperParameterFile.Load<MemitHyperParameters>(path);

    /// <summary>
    /// The model folder's <c>memit-hparams.json</c>, else the originals' files for the model's family: GPT-2 XL's (layers
    /// 13-17 of 48), GPT-J's (3-8 of 28, 25 steps, λ 15,000), AlphaEdit's Llama3-8B's for Llama, Mistral and Qwen2 (4-8 of
    /// 32, 25 steps, learning rate 0.1, λ 15,000). A model of another depth edits the layers at the same relative depth.
    /// </summary>
    public static MemitHyperParameters ForModel(string folder, ModelConfig config)
    {
        var path = Path.Combine(folder, FileName);
        if (File.Exists(path)) return Load(path);
        int[] Scaled(int first, int last, int of) => Enumerable.Range(first, last - first + 1)
            .Select(l => Math.Clamp((int)Math.Round(config.Layers * l / (double)of), 0, config.Layers - 1)).Distinct().ToArray();
        return config.Family switch
        {
            ModelFamily.GptJ => new MemitHyperParameters { Layers = Scaled(3, 8, 28), Steps = 25, MomentUpdateWeight = 15000 },
            ModelFamily.Llama or ModelFamily.Qwen2 => new MemitHyperParameters { Layers = Scaled(4, 8, 32), Steps = 25, LearningRate = 0.1, MomentUpdateWeight = 15000 },
            _ => new MemitHyperParameters { Layers = Scaled(13, 17, 48) },
        };
    }
}
