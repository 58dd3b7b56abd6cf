using Rome.Model.Modeling;
using static TorchSharp.torch;

namespace Rome.Model.Editing;

/// <summary>
/// k* and the bare prompt's own key k (both [MLP width]), and the MLP's output averaged over the same prompts
/// ([model width]; r-ROME's current value for k*).
/// </summary>
public sealed record Key(Tensor KStar, Tensor KPrompt, Tensor VMean);

/// <summary>
/// The key of an edit (the original's <c>compute_u.py</c>): k*, the input of the MLP's output projection at the
/// subject's last token averaged over the context templates, and the update's direction u = C⁻¹k*.
/// </summary>
public static class ComputeKey
{
    /// <summary>
    /// k* = (1/N) Σⱼ k(xⱼ + prompt) at <paramref name="layer"/>, over the <paramref name="rewriting"/> prompts (each
    /// context template filled with the prompt; the first is the bare prompt, whose key is returned too), on the model
    /// as <paramref name="previous"/> edits leave it. Both belong to the caller's dispose scope.
    /// </summary>
    public static Key KStar(LanguageModel lm, int layer, IReadOnlyList<(string Text, int LastSubjectToken)> rewriting, IReadOnlyList<WeightOverlay> previous)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (point, output) = (HookPoint.MlpKey(layer), HookPoint.Mlp(layer));
        var cache = lm.Model.RunWithCache(lm.Padded(rewriting.Select(p => lm.Encode(p.Text)).ToList()), [point, output], new Interventions { Overlays = previous });
        var (rows, positions) = (arange(rewriting.Count, device: lm.Device), tensor(rewriting.Select(p => (long)p.LastSubjectToken).ToArray(), device: lm.Device));
        var keys = cache[point][rows, positions];
        var values = cache[output][rows, positions];
        return new Key(keys.mean([0]).MoveToOuterDisposeScope(), keys[0].MoveToOuterDisposeScope(), values.mean([0]).MoveToOuterDisposeScope());
    }

    /// <summary>u = C⁻¹k*, solved rather than inverted (C = I when <paramref name="c"/> is null).</summary>
    public static Tensor U(Tensor? c, Tensor kStar)
    {
        using var noGrad = no_grad();
        return c is null ? kStar.clone() : linalg.solve(c.to(float64), kStar.to(float64)).to(kStar.dtype);
    }
}
