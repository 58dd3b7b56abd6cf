using Rome.Model.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Rome.Model.Editing;

/// <summary>
/// ROME (Meng et al. 2022, section 3; the original's <c>rome_main.py</c>): a rank-one edit of one MLP's output
/// projection, seen as a key-value memory. Its steps, each in its own file:
/// <list type="bullet">
/// <item><see cref="ContextTemplates"/>: short prefixes the model itself generates;</item>
/// <item><see cref="ComputeKey"/>: k*, the key at the subject's last token averaged over them, and u = C⁻¹k*;</item>
/// <item><see cref="ComputeValue"/>: v*, the MLP output that makes the model say the new target;</item>
/// <item><see cref="CovarianceStatistics"/>: C = E[k kᵀ] over a corpus;</item>
/// <item><see cref="Update"/>: W' = W + (v* − W k) uᵀ / (uᵀk).</item>
/// </list>
/// The result is a rank-one <see cref="LowRankOverlay"/>: the model's weights are never written.
/// </summary>
public sealed class RomeEditor(LanguageModel lm, RomeHyperParameters hp)
{
    public string Module => $"h.{hp.Layer}.mlp.c_proj";
    public int Layer => hp.Layer;
    /// <summary>"rome", or "r-rome" with one key throughout (<see cref="RomeHyperParameters.Key"/>).</summary>
    public string Method => hp.Key == "consistent" ? "r-rome" : "rome";

    /// <summary>
    /// Computes the edit of <paramref name="request"/> on top of <paramref name="previous"/> edits (applied first).
    /// <paramref name="c"/> is C for the edited layer (null: C = I); the caller keeps it.
    /// </summary>
    public AppliedEdit Compute(EditRequest request, Tensor? c, IReadOnlyList<WeightOverlay>? previous = null,
                               IProgress<EditProgress>? progress = null, CancellationToken cancel = default, int seed = 0)
    {
        Check(request, seed);
        previous ??= [];
        var targetIds = lm.Tokenizer.Encode(" " + request.Target.Trim());
        var templates = ContextTemplates.For(lm, hp, seed);
        using var scope = NewDisposeScope();
        var rewriting = templates.Select(t => ContextTemplates.Fill(lm, t, request)).ToList();
        var key = ComputeKey.KStar(lm, hp.Layer, rewriting, previous);
        var value = ComputeValue.VStar(lm, hp.Search, request, rewriting, targetIds, previous, progress, cancel);
        var u = ComputeKey.U(c, key.KStar);
        var overlay = hp.Key == "consistent" ? Update(Module, u, key.KStar, value.VStar - key.VMean) : Update(Module, u, key.KPrompt, value.VStar - value.V0);
        return new AppliedEdit(Method, [request], [hp.Layer], [overlay], [value.Probability], value.Updates, templates.ToArray());
    }

    /// <summary>
    /// A clear error unless this model can make the edit: the layer has an MLP, the subject is in the prompt, and the
    /// prompt and target fit the context window with the longest context template before them.
    /// </summary>
    public void Check(EditRequest request, int seed = 0)
    {
        EditableLayer.Require(lm, hp.Layer, "ROME");
        if (hp.Key is not ("original" or "consistent"))
            throw new RomeException($"The key setting is \"original\" (the original code's) or \"consistent\" (r-ROME's), not \"{hp.Key}\".");
        var length = lm.Encode(request.Filled).Length + lm.Tokenizer.Encode(" " + request.Target.Trim()).Length;
        if (length > lm.Config.Positions)
            throw new RomeException($"The prompt and the new target are {length} tokens long; this model reads at most {lm.Config.Positions}.");
        lm.Tokenizer.FindSpan(request.Filled, request.Subject);
        var prefix = ContextTemplates.For(lm, hp, seed).Max(t => lm.Tokenizer.Encode(t.Replace("{}", "")).Length);
        if (length + prefix > lm.Config.Positions)
            throw new RomeException($"The prompt and the new target are {length} tokens long, and ROME puts up to {prefix} tokens of context before them; this model reads at most {lm.Config.Positions}.");
    }

    /// <summary>
    /// The rank-one update as an overlay: W' = W + (v* − v0) uᵀ / (uᵀk), so the key k, whose output was v0 = W k (+ b),
    /// now gives v*, and a key with uᵀk' = 0 is unchanged. As in the original code k is the bare prompt's own key while
    /// u comes from the averaged k* (r-ROME: k = k* and v0 its output).
    /// </summary>
    public static LowRankOverlay Update(string module, Tensor u, Tensor k, Tensor change)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return LowRankOverlay.RankOne(module, u / u.dot(k), change);
    }
}
