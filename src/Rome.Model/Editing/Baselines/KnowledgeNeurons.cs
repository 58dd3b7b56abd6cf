using Rome.Model.Modeling;
using static TorchSharp.torch;

namespace Rome.Model.Editing.Baselines;

/// <summary>Settings of the knowledge-neurons baseline (the original's names in brackets; defaults are the paper's for GPT-2 XL).</summary>
public sealed record KnowledgeNeuronsHyperParameters
{
    /// <summary>Riemann steps of the integrated gradients [steps].</summary>
    public int Steps { get; init; } = 20;
    /// <summary>A neuron is a prompt's candidate when its attribution exceeds this share of the prompt's top one [adaptive_threshold].</summary>
    public double AdaptiveThreshold { get; init; } = 0.2;
    /// <summary>A candidate is kept when more than this share of the prompts agree on it [p].</summary>
    public double SharedBy { get; init; } = 0.4;
    /// <summary>The edit adds Scale x (e_new − e_old) to each kept neuron's output weights (the original's factor 2).</summary>
    public double Scale { get; init; } = 2;
}

/// <summary>
/// Knowledge neurons (Dai et al. 2022), the paper's KN baseline. A neuron is one coordinate of an MLP key k (the
/// input of <c>mlp.c_proj</c>) at the prompt's last token. Its attribution to the true object is the integrated
/// gradient of the object's probability as the neuron's activation a is scaled from 0 to a:
/// a · mean over α of ∂p/∂(αa). Each prompt (the rewrite prompt behind ROME's context prefixes) names its candidate
/// neurons (<see cref="KnowledgeNeuronsHyperParameters.AdaptiveThreshold"/>), the candidates most prompts share are
/// kept, and the edit moves each kept neuron's row of <c>mlp.c_proj</c> from the model's current answer's token
/// embedding e_old towards the new object's e_new. Objects of several tokens are attributed and written by their first
/// token. Unlike the original library, which scales GPT-2's pre-activation <c>c_fc</c> outputs, the neurons here
/// are the post-GELU keys that <c>c_proj</c> (the edited weight) multiplies.
/// </summary>
public static class KnowledgeNeurons
{
    /// <summary>Attribution of every neuron ([layers, inner]) to <paramref name="targetToken"/> being next after <paramref name="prompt"/>.</summary>
    public static Tensor Attribution(LanguageModel lm, string prompt, int targetToken, int steps, CancellationToken cancel = default)
    {
        if (steps < 1) throw new RomeException("Integrated gradients need at least 1 step.");
        var ids = lm.Ids(lm.Encode(prompt));
        var last = ids.shape[1] - 1;
        var keys = new Tensor[lm.Layers];
        var entering = new Tensor[lm.Layers];
        using var scope = NewDisposeScope();
        using (no_grad())
        {
            var points = Enumerable.Range(0, lm.Layers).SelectMany(l => new[] { HookPoint.MlpKey(l), HookPoint.Resid(l) }).Prepend(HookPoint.Embed);
            var cache = lm.Model.RunWithCache(ids, points);
            for (int l = 0; l < lm.Layers; l++)
            {
                keys[l] = cache[HookPoint.MlpKey(l)][0, last];
                entering[l] = cache[l == 0 ? HookPoint.Embed : HookPoint.Resid(l - 1)];
            }
        }

        using var alphas = linspace(0, 1, steps, dtype: keys[0].dtype, device: lm.Device).unsqueeze(1);
        var scores = new Tensor[lm.Layers];
        using var grad = enable_grad();
        for (int l = 0; l < lm.Layers; l++)
        {
            cancel.ThrowIfCancellationRequested();
            // The key at the last token, scaled by each α: one batch row per step.
            var scaled = (alphas * keys[l]).detach().requires_grad_(true);
            var iv = new Interventions().Hook(HookPoint.MlpKey(l), x => cat([x[.., ..(int)last], scaled.unsqueeze(1)], 1));
            var probs = lm.Model.Forward(entering[l].expand(steps, -1, -1), iv, lastOnly: true, startAtLayer: l)[.., -1].softmax(-1)[.., targetToken];
            probs.sum().backward();
            scores[l] = (scaled.grad!.mean([0]) * keys[l]).detach();
        }
        return stack(scores).MoveToOuterDisposeScope();
    }

    /// <summary>The neurons (layer, index) storing the fact, and the edit writing the new object into them (one overlay per layer).</summary>
    public static (List<(int Layer, int Neuron)> Neurons, List<DenseOverlay> Overlays) Compute(
        LanguageModel lm, EditRequest request, IReadOnlyList<string> contextTemplates, KnowledgeNeuronsHyperParameters hp,
        CancellationToken cancel = default)
    {
        if (string.IsNullOrWhiteSpace(request.OldTarget)) throw new RomeException("Knowledge neurons need the true object, to attribute it.");
        int TokenOf(string word) => lm.Tokenizer.Encode(" " + word.Trim())[0];
        var trueToken = TokenOf(request.OldTarget);
        var prompts = contextTemplates.Select(t => t.Replace("{}", request.Filled)).Distinct().ToList();

        var votes = new Dictionary<(int Layer, int Neuron), int>();
        foreach (var prompt in prompts)
        {
            using var scores = Attribution(lm, prompt, trueToken, hp.Steps, cancel);
            using var candidates = scores.gt(scores.max() * hp.AdaptiveThreshold).nonzero();
            var found = candidates.data<long>().ToArray();
            for (int i = 0; i < found.Length; i += 2)
                votes[((int)found[i], (int)found[i + 1])] = votes.GetValueOrDefault(((int)found[i], (int)found[i + 1])) + 1;
        }
        var neurons = votes.Where(v => v.Value > hp.SharedBy * prompts.Count).Select(v => v.Key).Order().ToList();

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var embeddings = lm.Model.TokenEmbedding;
        using var current = lm.NextTokenLogProbs(lm.Encode(request.Filled));
        var change = (embeddings[TokenOf(request.Target)] - embeddings[current.argmax().item<long>()]) * hp.Scale;
        var overlays = new List<DenseOverlay>();
        foreach (var layer in neurons.Select(n => n.Layer).Distinct())
        {
            var module = $"h.{layer}.mlp.c_proj";
            var delta = zeros_like(lm.Model.Linear(module).Weight);
            foreach (var (_, neuron) in neurons.Where(n => n.Layer == layer)) delta[neuron] = change;
            overlays.Add(new DenseOverlay(module, delta.DetachFromDisposeScope()));
        }
        return (neurons, overlays);
    }
}
