using Rome.Model.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace Rome.Model.Editing;

/// <summary>One step of the v* optimisation, for a live loss curve.</summary>
public sealed record EditProgress(int Step, int Steps, double Nll, double Kl, double WeightDecay, double TargetProbability);

/// <summary>An edit made: the overlay, p(target) with its δ, the Adam updates that made δ and the context templates used.</summary>
public sealed record AppliedEdit(EditRequest Request, int Layer, RankOneOverlay Overlay, double TargetProbability, int Updates, string[] ContextTemplates) : IDisposable
{
    public void Dispose() => Overlay.Dispose();
}

/// <summary>
/// ROME (Meng et al. 2022, section 3): a rank-one edit of one MLP's output projection, seen as a key-value memory.
/// <list type="bullet">
/// <item><b>k*</b>, the key: the input of <c>mlp.c_proj</c> at the subject's last token, averaged over the
/// prompt preceded by short context prefixes the model itself generates.</item>
/// <item><b>v*</b>, the value: the MLP output that makes the model say the new target. v* = v0 + δ, where v0 is the
/// MLP output at the subject's last token of the bare prompt; δ is added to the MLP output at the subject's last token
/// in every rewriting prompt and optimised with Adam on NLL(target) + KL(current ‖ original) on "{subject} is a" +
/// weight decay; it is clamped to |δ| ≤ clamp x |v0|.</item>
/// <item><b>C</b> = E[k kᵀ] over a corpus (<see cref="CovarianceStatistics"/>).</item>
/// <item>The update: u = C⁻¹k* (solved, not inverted); W' = W + δ uᵀ / (uᵀk), where k is the bare prompt's own key
/// (as the original code does), so the edited prompt's MLP output becomes exactly v*, and the output for any other
/// key k' changes by δ (uᵀk')/(uᵀk). See <see cref="Update"/>.</item>
/// </list>
/// The result is a <see cref="RankOneOverlay"/>: the model's weights are never written.
/// </summary>
public sealed class RomeEditor(LanguageModel lm, RomeHyperParameters hp)
{
    public string Module => $"h.{hp.Layer}.mlp.c_proj";
    public int Layer => hp.Layer;

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(string, string, int), List<string>> TemplateCache = new();

    /// <summary>
    /// "{}" and a prefix "generated text. {}" for each of <see cref="RomeHyperParameters.ContextTemplateLengthParams"/>'s
    /// [length, count]: text the unedited model samples (top-k 5, seeded) after &lt;|endoftext|&gt;, the prompt token
    /// counted in the length, as the original's <c>get_context_templates</c> (or after the model's own
    /// <see cref="RomeHyperParameters.ContextTemplatePrompts"/>). Braces are removed from the samples (a
    /// generated "{" would break the template in the original). Cached per model fingerprint, lengths and seed.
    /// </summary>
    public List<string> ContextTemplates(int seed = 0) =>
        TemplateCache.GetOrAdd((lm.Fingerprint, string.Join(";", hp.ContextTemplateLengthParams.Select(c => string.Join(",", c))) + "|" + string.Join("|", hp.ContextTemplatePrompts), seed), _ => GenerateTemplates(seed));

    private List<string> GenerateTemplates(int seed)
    {
        var templates = new List<string> { "{}" };
        var i = 0;
        foreach (var spec in hp.ContextTemplateLengthParams)
        {
            if (spec is not [var length, var count] || length < 1 || count < 0)
                throw new RomeException("contextTemplateLengthParams holds [length, count] pairs with length ≥ 1, e.g. [[5, 10], [10, 10]].");
            for (int n = 0; n < count; n++, i++)
            {
                var start = hp.ContextTemplatePrompts[n % hp.ContextTemplatePrompts.Length];
                var (ids, text) = start == "<|endoftext|>" ? ([lm.StartOfText], "") : (lm.Encode(start), start);
                var options = new GenerationOptions { MaxTokens = Math.Max(1, length - ids.Length), TopK = 5, Seed = seed + i };
                var g = TextGenerator.Generate(lm, ids, text, options, Interventions.None);
                templates.Add(g.Text.Replace("{", "").Replace("}", "").Trim() + ". {}");
            }
        }
        return templates;
    }

    /// <summary>Computes the edit of <paramref name="request"/> on top of <paramref name="previous"/> edits (applied first).</summary>
    public AppliedEdit Compute(EditRequest request, Func<Tensor>? covariance, IReadOnlyList<RankOneOverlay>? previous = null,
                               IProgress<EditProgress>? progress = null, CancellationToken cancel = default, int seed = 0)
    {
        request.Validate();
        lm.Model.EnsureHasMlp(hp.Layer, "ROME");
        previous ??= [];
        var targetIds = lm.Tokenizer.Encode(" " + request.Target.Trim());
        var filled = request.Filled;
        var length = lm.Encode(filled).Length + targetIds.Length;
        if (length > lm.Config.Positions)
            throw new RomeException($"The prompt and the new target are {length} tokens long; this model reads at most {lm.Config.Positions}.");
        lm.Tokenizer.FindSpan(filled, request.Subject); // a clear error when the subject cannot be located

        var templates = ContextTemplates(seed);
        var prefix = templates.Max(t => lm.Tokenizer.Encode(t.Replace("{}", "")).Length);
        if (length + prefix > lm.Config.Positions)
            throw new RomeException($"The prompt and the new target are {length} tokens long, and ROME puts up to {prefix} tokens of context before them; this model reads at most {lm.Config.Positions}.");
        using var scope = NewDisposeScope();
        var rewriting = templates.Select(t => Fill(t, request)).ToList();
        var key = ComputeKey(rewriting, previous);
        var value = ComputeValue(request, rewriting, targetIds, previous, progress, cancel);
        var u = Direction(covariance?.Invoke(), key.KStar);
        var overlay = Update(Module, u, key.KPrompt, value.VStar - value.V0);
        return new AppliedEdit(request, hp.Layer, overlay, value.Probability, value.Updates, templates.ToArray());
    }

    /// <summary>k* and the bare prompt's own key k (both [MLP width]).</summary>
    public sealed record Key(Tensor KStar, Tensor KPrompt);

    /// <summary>v*, the MLP output read at the bare prompt's subject v0, p(target) with v*, and the Adam updates made.</summary>
    public sealed record Value(Tensor VStar, Tensor V0, double Probability, int Updates);

    /// <summary>
    /// The key (the original's <c>compute_u</c>, first half): k* = (1/N) Σⱼ k(xⱼ + prompt), the input of the MLP's
    /// output projection at the subject's last token, averaged over the <paramref name="rewriting"/> prompts (each
    /// context template filled with the prompt; the first is the bare prompt, whose key is returned too).
    /// </summary>
    public Key ComputeKey(IReadOnlyList<(string Text, int LastSubjectToken)> rewriting, IReadOnlyList<RankOneOverlay> previous)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var cache = lm.Model.RunWithCache(lm.Padded(rewriting.Select(p => lm.Encode(p.Text)).ToList()), [HookPoint.MlpKey(hp.Layer)], new Interventions { Overlays = previous });
        var keys = cache[HookPoint.MlpKey(hp.Layer)][arange(rewriting.Count, device: lm.Device), tensor(rewriting.Select(p => (long)p.LastSubjectToken).ToArray(), device: lm.Device)];
        return new Key(keys.mean([0]).MoveToOuterDisposeScope(), keys[0].MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The direction of the update (the original's <c>compute_u</c>, second half): u = C⁻¹k*, solved rather than
    /// inverted (C = I when <paramref name="c"/> is null).
    /// </summary>
    public static Tensor Direction(Tensor? c, Tensor kStar)
    {
        using var noGrad = no_grad();
        return c is null ? kStar.clone() : linalg.solve(c.to(float64), kStar.to(float64)).to(kStar.dtype);
    }

    /// <summary>
    /// The rank-one update as an overlay: W' = W + (v* − v0) uᵀ / (uᵀk), so the bare prompt's key k, whose output was
    /// v0 = W k (+ b), now gives v*, and a key with uᵀk' = 0 is unchanged. As in the original code k is the bare
    /// prompt's own key while u comes from the averaged k*: with a subject at position 0 the bare prompt's key differs
    /// much from the prefixed prompts' keys, and dividing by uᵀk* instead would scale the edit down where it matters most.
    /// </summary>
    public static RankOneOverlay Update(string module, Tensor u, Tensor k, Tensor change)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return new RankOneOverlay(module, (u / u.dot(k)).DetachFromDisposeScope(), change.detach().clone().DetachFromDisposeScope());
    }

    /// <summary>
    /// The value (the original's <c>compute_v</c>): v* = v0 + δ, where δ is added to the MLP output at the subject's
    /// last token of every rewriting prompt and of the KL prompt "{subject} is a", and minimises, with Adam,
    /// <code>L(δ) = mean NLL(target | xⱼ + prompt) + λ_KL · KL(p(· | subject is a) ‖ p₀) + λ_decay · |δ| / |v0|²</code>
    /// with |δ| clamped to clamp · |v0| after each step.
    /// </summary>
    public Value ComputeValue(EditRequest request, IReadOnlyList<(string Text, int LastSubjectToken)> rewriting, int[] targetIds,
        IReadOnlyList<RankOneOverlay> previous, IProgress<EditProgress>? progress, CancellationToken cancel)
    {
        // Rewriting prompts + the target's tokens but the last (teacher forcing); then the KL prompt.
        var sequences = rewriting.Select(p => lm.Encode(p.Text).Concat(targetIds[..^1]).ToArray()).ToList();
        var promptLengths = rewriting.Select(p => lm.Encode(p.Text).Length).ToList();
        var klText = $"{request.Subject} is a";
        var klPosition = lm.Tokenizer.FindSpan(klText, request.Subject).Last;
        sequences.Add(lm.Encode(klText));

        var batch = sequences.Count;
        var lookup = rewriting.Select(p => (long)p.LastSubjectToken).Append(klPosition).ToArray();
        using var ids = lm.Padded(sequences);
        using var mask = nn.functional.one_hot(tensor(lookup, device: lm.Device), ids.shape[1]).unsqueeze(-1).to(float32);

        // Positions whose next token is a target token: (row, position, target id).
        var rows = new List<long>(); var positions = new List<long>(); var targets = new List<long>();
        for (int r = 0; r < rewriting.Count; r++)
            for (int j = 0; j < targetIds.Length; j++)
            {
                rows.Add(r); positions.Add(promptLengths[r] - 1 + j); targets.Add(targetIds[j]);
            }
        using var rowIndex = tensor(rows.ToArray(), device: lm.Device);
        using var positionIndex = tensor(positions.ToArray(), device: lm.Device);
        using var targetIndex = tensor(targets.ToArray(), device: lm.Device);

        // δ enters the residual stream additively after block L, so everything up to there is computed once
        // and each step runs only blocks L+1.. on (residual + δ at the subject's last token).
        var edits = new Interventions { Overlays = previous };
        Tensor v0, klInit, residual;
        using (var s0 = NewDisposeScope())
        using (no_grad())
        {
            var cache = lm.Model.RunWithCache(ids, [HookPoint.Mlp(hp.Layer), HookPoint.Resid(hp.Layer)], edits);
            v0 = cache[HookPoint.Mlp(hp.Layer)][0, lookup[0]].MoveToOuterDisposeScope(); // rewriting[0] is the bare prompt
            residual = cache[HookPoint.Resid(hp.Layer)].MoveToOuterDisposeScope();
            var klResid = lm.Model.Forward(residual[(batch - 1)..], edits, startAtLayer: hp.Layer + 1, stopAtLayer: lm.Layers);
            klInit = lm.Model.Unembed(klResid[0, klPosition]).log_softmax(-1).MoveToOuterDisposeScope();
        }

        var delta = new TorchSharp.Modules.Parameter(zeros(lm.Config.Embd, device: lm.Device), requires_grad: true);
        var optimizer = optim.Adam([delta], lr: hp.LearningRate);
        // δ and the loss are float32 whatever the model's dtype (δ is cast to it where it enters the residual stream).
        var v0Norm = v0.to(float32).norm().item<float>();
        var maxNorm = hp.ClampNormFactor * v0Norm;
        var v0NormSquared = v0Norm * v0Norm;
        // The original's loop: each iteration measures the loss of the current δ and stops there when the loss is
        // below the threshold or the iteration is the last one, so N configured steps make at most N − 1 updates
        // and what is reported (probability, updates) describes the δ that is returned.
        double probability = 0;
        int updates = 0;
        for (int step = 0; ; step++)
        {
            cancel.ThrowIfCancellationRequested();
            using var s = NewDisposeScope();
            var resid = lm.Model.Forward(residual + (mask * delta).to(residual.dtype), edits, startAtLayer: hp.Layer + 1, stopAtLayer: lm.Layers);
            var logProbs = lm.Model.Unembed(resid[rowIndex, positionIndex]).log_softmax(-1);
            var picked = logProbs.gather(1, targetIndex.unsqueeze(1)).squeeze(1);
            // Mean over prompts of the per-token mean NLL of the target.
            var nll = -picked.sum() / (rewriting.Count * targetIds.Length);
            var klCurrent = lm.Model.Unembed(resid[batch - 1, klPosition]).log_softmax(-1);
            var kl = hp.KlFactor * (klCurrent.exp() * (klCurrent - klInit)).sum();
            var decay = hp.WeightDecay * (delta.norm() / v0NormSquared);
            var loss = nll + kl + decay;
            // p(target) as everywhere in Rome: exp(−mean per-token NLL) per prompt (CounterFactMetrics.TargetProbabilities), averaged.
            probability = picked.detach().view(rewriting.Count, targetIds.Length).mean([1]).exp().mean().item<float>();
            progress?.Report(new EditProgress(step + 1, hp.Steps, nll.item<float>(), kl.item<float>(), decay.item<float>(), probability));
            if (loss.item<float>() < hp.StopLoss || step >= hp.Steps - 1) break;
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
            updates++;
            using (no_grad())
            {
                var norm = delta.norm().item<float>();
                if (norm > maxNorm) delta.mul_(maxNorm / norm);
            }
        }
        klInit.Dispose();
        residual.Dispose();
        // v* and v0 belong to the caller's dispose scope, like the key.
        return new Value((v0.to(float32) + delta.detach()).to(v0.dtype), v0, probability, updates);
    }

    /// <summary>A context template filled with the prompt, and the position of the subject's last token in it.</summary>
    public (string Text, int LastSubjectToken) Fill(string template, EditRequest request)
    {
        var text = template.Replace("{}", request.Filled);
        var subjectStart = template.IndexOf("{}", StringComparison.Ordinal) + request.Prompt.IndexOf("{}", StringComparison.Ordinal);
        return (text, lm.Tokenizer.FindSpan(text, request.Subject, subjectStart).Last);
    }

}
